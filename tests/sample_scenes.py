"""Test scenes served by a STAC API on 127.0.0.1: four real-data quadrants and a broken one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine

from stacmask.constants import BAND_KEY_PRESETS
from stacmask.demo.sample_api import SampleStacApi
from stacmask.pipeline.build import BuildOptions
from tests.conftest import shared_path
from tests.rasters import TRANSFORM, dn_from_reflectance, write_bands

COLLECTION = "TEST-WPM-L4-DN"
MASK_COLLECTION = f"{COLLECTION}-mask"
KEYS = BAND_KEY_PRESETS["bdc"]
#: Four 256 x 256 scenes: the quadrants of the real labelled scene (row, column offsets).
QUADRANTS = {
    "TEST_WPM_20210105_001_001_L4": (0, 0),
    "TEST_WPM_20210105_001_002_L4": (0, 256),
    "TEST_WPM_20210105_002_001_L4": (256, 0),
    "TEST_WPM_20210105_002_002_L4": (256, 256),
}
FIRST = next(iter(QUADRANTS))
#: A scene whose red and NIR bands are missing on the server: it fails at the read stage.
BROKEN = "TEST_WPM_20210105_003_001_L4"
#: Degrees per 256 pixels in the items' footprints.
STEP = 0.02


def scene_item(
    api: SampleStacApi, scene_id: str, bands: list[str], xml: str, row: int, col: int
) -> dict[str, Any]:
    """A source item like INPE's: BAND1..BAND4 and BAND1_xml assets served by `api`."""
    west, north = -47.0 + STEP * col / 256, -15.0 - STEP * row / 256
    bbox = [west, north - STEP, west + STEP, north]
    ring = [[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]]]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": scene_id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        "bbox": bbox,
        "properties": {"datetime": "2021-01-05T13:20:00Z", "platform": "test"},
        "assets": {
            **{
                key: {
                    "href": api.data_url(api.root / name),
                    "type": "image/tiff; application=geotiff",
                }
                for key, name in zip(KEYS.bands, bands, strict=True)
            },
            "BAND1_xml": {"href": api.data_url(api.root / xml), "type": "application/xml"},
        },
        "links": [],
    }


@contextmanager
def serve_scenes(files: Path) -> Iterator[SampleStacApi]:
    """Write the scenes' bands into `files` and serve them with their items."""
    with rasterio.open(shared_path("data/labelled/sentinel2_reflectance.tif")) as src:
        reflectance = src.read()
    xml = shared_path("data/inpe-xml/CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml")
    shutil.copy(xml, files / xml.name)
    with SampleStacApi(files) as api:
        api.add_collection(COLLECTION)
        for scene_id, (row, col) in QUADRANTS.items():
            dn = dn_from_reflectance(reflectance[:, row : row + 256, col : col + 256])
            transform = TRANSFORM @ Affine.translation(col, row)
            paths = write_bands(files, dn, name=scene_id, blocksize=128, transform=transform)
            api.add_item(scene_item(api, scene_id, [p.name for p in paths], xml.name, row, col))
        broken = [f"{FIRST}_BAND{b}.tif" for b in (1, 2)] + ["gone.tif", "gone.tif"]
        api.add_item(scene_item(api, BROKEN, broken, xml.name, 512, 0))
        yield api


def build_options(api: SampleStacApi, out: Path, **kwargs: Any) -> BuildOptions:
    """Options of a build of the served scenes into `out`."""
    return BuildOptions(
        out=out, keys=KEYS, stac_url=api.url, collection=COLLECTION, timeout=10, **kwargs
    )
