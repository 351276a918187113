"""Class-coloured map tiles of the mask COGs (stacmask.serve.tiles, GET /tiles/z/x/y.png)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import rasterio
import requests

from stacmask.constants import CLASS_NAMES, NODATA
from stacmask.serve.tiles import PALETTE
from tests.conftest import ServerThread
from tests.serve_catalog import COLLECTION_ID, Scene


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_a_tile_has_the_mask_classes_in_their_colours(
    api_server: ServerThread, mask_catalog: Path, scenes: tuple[Scene, ...]
) -> None:
    scene = scenes[1]
    west, south, east, north = scene.bbox
    z = 14
    x, y = _tile_of((west + east) / 2, (south + north) / 2, z)
    mask = f"{api_server.url}/catalog/{COLLECTION_ID}/{scene.id}/{scene.id}_mask.tif"
    answer = requests.get(
        f"{api_server.url}/tiles/{z}/{x}/{y}.png", params={"href": mask}, timeout=30
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    with rasterio.open(io.BytesIO(answer.content)) as png:
        rgba = png.read().transpose(1, 2, 0)
    with rasterio.open(mask_catalog / COLLECTION_ID / scene.id / f"{scene.id}_mask.tif") as cog:
        present = {int(v) for v in np.unique(cog.read(1))} - {NODATA}
    colours = {tuple(int(c) for c in pixel) for pixel in rgba.reshape(-1, 4) if pixel[3] == 255}
    expected = {tuple(int(c) for c in PALETTE[code]) for code in present}
    assert colours and colours <= expected  # only class colours, and opaque only on the mask
    assert len(colours) >= 2, "a tile inside the scene shows several classes"
    far = requests.get(f"{api_server.url}/tiles/{z}/0/0.png", params={"href": mask}, timeout=30)
    with rasterio.open(io.BytesIO(far.content)) as png:
        assert png.read(4).max() == 0  # transparent away from the mask
    assert CLASS_NAMES[4][2] == "FFFFFF" and tuple(PALETTE[4]) == (255, 255, 255, 255)


def test_tiles_only_of_mask_cogs_inside_the_catalog(api_server: ServerThread) -> None:
    for href in [
        f"{api_server.url}/catalog/../secret_mask.tif",
        f"{api_server.url}/catalog/catalog.json",
        "http://example.invalid/x_mask.tif",
        f"{api_server.url}/catalog/.stacmask-index/items.parquet",
    ]:
        answer = requests.get(
            f"{api_server.url}/tiles/3/1/1.png", params={"href": href}, timeout=30
        )
        assert answer.status_code == 404, href
    assert requests.get(f"{api_server.url}/tiles/30/1/1.png", timeout=30).status_code in (400, 404)
