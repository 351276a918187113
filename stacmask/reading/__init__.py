"""Band reading: what a mask method sees of a scene (SceneInfo, BandSource) and the reader."""
