"""Builds over real INPE XML metadata and real CBERS-4A WPM DN clips, served on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer

from stacmask.constants import DEFAULT_GAINS
from stacmask.demo.sample_api import SampleStacApi
from tests.conftest import shared_path
from tests.notebook_oracle import notebook_oracle
from tests.test_build import COLLECTION, assert_valid, build, item_json, make_scenes

WPM_XML = "data/inpe-xml/stars/CBERS_4A_WPM_20200730_209_139_L4_BAND1.xml"
AMAZONIA_XML = "data/inpe-xml/AMAZONIA_1_WFI_20220811_036_018_L4_BAND2.xml"


@pytest.mark.parametrize(
    ("xml", "calibration", "elevation", "azimuth"),
    [
        (WPM_XML, "default", 44.3213, 32.9762),  # 2020 WPM files carry no gains
        (AMAZONIA_XML, "xml", None, None),  # gains for bands 1-4 (sun angles: two cameras)
    ],
)
def test_real_inpe_xml_gives_gains_and_sun_angles(
    tmp_path: Path,
    schema_map: Path,
    xml: str,
    calibration: str,
    elevation: float | None,
    azimuth: float | None,
) -> None:
    root = tmp_path / "served"
    scene = make_scenes(root, 1, size=256)[0]
    shutil.copy(shared_path(xml), scene.xml["BAND1"])
    with SampleStacApi(root) as api:
        api.add_scene(scene)
        out = tmp_path / "cat"
        result = build(out, api)
        assert result.exit_code == 0, result.output
    props = item_json(out, scene.scene_id)["properties"]
    assert props["stacmask:calibration"] == calibration
    if elevation is not None:
        assert props["view:sun_elevation"] == pytest.approx(elevation)
        assert props["view:sun_azimuth"] == pytest.approx(azimuth)
    else:
        assert 0 < props["view:sun_elevation"] < 90
    assert_valid(out, schema_map)


def test_real_cbers_clips_through_the_api(tmp_path: Path, schema_map: Path) -> None:
    """Real WPM DN (int16, nodata 0). The clips have no NIR band: red stands in for it."""
    root = tmp_path / "served"
    template = make_scenes(root, 1, size=256)[0]
    clip_dir = root / "clips"
    clip_dir.mkdir()
    for key, name in (
        ("BAND1", "BAND1"),
        ("BAND2", "BAND2"),
        ("BAND3", "BAND3"),
        ("BAND4", "BAND3"),
    ):
        shutil.copy(shared_path(f"data/cbers4a-wpm-clips/{name}.tif"), clip_dir / f"{key}.tif")
    shutil.copy(shared_path(WPM_XML), clip_dir / "BAND1.xml")
    with rasterio.open(clip_dir / "BAND1.tif") as src:
        bounds, crs = src.bounds, src.crs
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    corners = [
        to_lonlat.transform(x, y)
        for x, y in (
            (bounds.left, bounds.top),
            (bounds.left, bounds.bottom),
            (bounds.right, bounds.bottom),
            (bounds.right, bounds.top),
            (bounds.left, bounds.top),
        )
    ]
    with SampleStacApi(root) as api:
        item = api.add_scene(template)
        item["id"] = "CBERS_4A_WPM_20200730_209_139_L4"
        for key in ("cbers:path", "cbers:row"):
            item["properties"].pop(key, None)
        for key in ("BAND1", "BAND2", "BAND3", "BAND4"):
            item["assets"][key]["href"] = api.data_url(clip_dir / f"{key}.tif")
        item["assets"]["BAND1_xml"]["href"] = api.data_url(clip_dir / "BAND1.xml")
        item["geometry"] = {"type": "Polygon", "coordinates": [[list(c) for c in corners]]}
        xs, ys = zip(*corners, strict=True)
        item["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
        del api.items[template.scene_id]
        api.add_item(item)
        out = tmp_path / "cat"
        result = build(out, api, "--method", "notebook")
        assert result.exit_code == 0, result.output
    assert_valid(out, schema_map)
    mask = out / COLLECTION / item["id"] / f"{item['id']}_mask.tif"
    with rasterio.open(mask) as src:
        ours = src.read(1)
        assert src.crs == crs
    dn = np.stack([rasterio.open(clip_dir / f"BAND{b}.tif").read(1) for b in (1, 2, 3, 4)])
    expected = notebook_oracle(dn, DEFAULT_GAINS).classes()
    assert np.mean(ours == expected) >= 0.999
    props = json.loads((out / COLLECTION / item["id"] / f"{item['id']}.json").read_text())[
        "properties"
    ]
    assert props["view:sun_elevation"] == pytest.approx(44.3213)
    assert props["proj:code"] == "EPSG:32720"
    assert (props["cbers:path"], props["cbers:row"]) == (209, 139)  # from the scene id
