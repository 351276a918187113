"""Sensors: how a source STAC item (or local files) becomes the inputs of one scene."""
