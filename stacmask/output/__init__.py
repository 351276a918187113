"""What a scene's mask becomes: the mask COG, the preview PNG and the mask STAC item."""
