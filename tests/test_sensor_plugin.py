"""A sensor registered from outside stacmask (its own distribution's entry point) builds a
valid catalog through `stacmask build` against a STAC API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from stacmask.catalog.validate import validate_catalog
from stacmask.errors import ProfileError
from stacmask.evaluate import evaluate_files
from stacmask.sensors import registry
from tests.conftest import REPO, shared_path
from tests.sample_api import SampleStacApi

#: The whole plugin: one module and a registration (docs/sensors.md shows the same).
PLUGIN = '''
"""Example-1: four-band uint16 reflectance COGs (blue, green, red, nir; DN x 1e-4)."""

import pystac

from stacmask.sensors.inputs import (
    MAIN_BANDS, BandRef, Provider, SceneInputs, SensorOptions,
)
from stacmask.sensors.registry import Sensor
from stacmask.sensors.stac import (
    asset_href, declared_nodata, declared_scaling, kept_properties, require_assets, sun_angles,
)

NAME = "example-4band"
AGENCY = Provider("Example Space Agency", ("producer", "licensor"), "https://example.org")


def scene_inputs(item: pystac.Item, options: SensorOptions) -> SceneInputs:
    require_assets(item, {"reflectance": "blue, green, red, nir"}, NAME)
    href = asset_href(item, "reflectance")
    scale, offset = declared_scaling(item, "reflectance") or (1e-4, 0.0)
    bands = tuple(
        BandRef(name, href, index=number, scale=scale, offset=offset,
                nodata=declared_nodata(item, "reflectance"))
        for number, name in enumerate(MAIN_BANDS, start=1)
    )
    elevation, azimuth = sun_angles(item)
    return SceneInputs(
        scene_id=item.id, sensor=NAME, bands=bands,
        sun_elevation=elevation, sun_azimuth=azimuth, acquired=item.datetime,
        properties=kept_properties(item), providers=(AGENCY,), keywords=("Example-1",),
        lineage=f"the four reflectance bands of {item.id}",
    )


SENSOR = Sensor(
    name=NAME, title="Example-1 four-band reflectance", default_collection="example-l2",
    methods=("physical", "notebook"), scene_inputs=scene_inputs,
)
'''


def write_plugin(folder: Path, body: str = PLUGIN, target: str = "example_sensor:SENSOR") -> Path:
    """The plugin as an installed distribution would leave it: its module and a dist-info
    folder with entry_points.txt, in `folder` (to put on sys.path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "example_sensor.py").write_text(textwrap.dedent(body))
    info = folder / "example_sensor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: example-sensor\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[stacmask.sensors]\nexample-4band = {target}\n")
    return folder


def _scene_item(api: SampleStacApi, scene_id: str, path: Path) -> dict[str, Any]:
    bbox = [15.0, 45.0, 15.2, 45.14]
    ring = [[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]]]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
        "id": scene_id,
        "collection": "example-l2",
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
        "bbox": bbox,
        "properties": {"datetime": "2021-06-01T10:00:00Z", "platform": "example-1"},
        "assets": {
            "reflectance": {
                "href": api.data_url(path),
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 1e-4}] * 4,
            }
        },
        "links": [],
    }


def _run(plugin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(REPO)])}
    return subprocess.run(
        [sys.executable, "-m", "stacmask", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_plugin_sensor_builds_a_valid_catalog(tmp_path: Path, schema_map: Path) -> None:
    plugin = write_plugin(tmp_path / "site")
    root = tmp_path / "api"
    root.mkdir()
    # The real labelled scene as the plugin's four-band uint16 product.
    with rasterio.open(shared_path("data/labelled/sentinel2_reflectance.tif")) as src:
        profile = src.profile
        dn = np.clip(np.rint(src.read() * 1e4), 1, 65535).astype(np.uint16)
    path = root / "EX1_20210601_L2.tif"
    with rasterio.open(path, "w", **{**profile, "dtype": "uint16", "nodata": 0}) as dst:
        dst.write(dn)
    with SampleStacApi(root) as api:
        api.add_collection("example-l2", title="Example-1 L2", providers=[], keywords=[])
        api.add_item(_scene_item(api, "EX1_20210601_L2", path))
        out = tmp_path / "catalog"
        command = ["build", "--out", str(out), "--stac-url", api.url, "--profile"]
        built = _run(plugin, *command, "example-4band", "--quiet")
        assert built.returncode == 0, built.stdout + built.stderr
        wrong = _run(plugin, *command, "example-4band", "--method", "s2cloudless")
        assert wrong.returncode != 0 and "does not apply" in wrong.stderr
    unknown = _run(plugin, "build", "--out", str(out), "--profile", "modis")
    assert unknown.returncode != 0 and "example-4band" in unknown.stderr
    report = validate_catalog(out, schema_map)
    assert report.ok, [str(p) for p in report.problems]
    folder = out / "example-l2-mask"
    collection = json.loads((folder / "collection.json").read_text())
    assert {p["name"] for p in collection["providers"]} == {"Example Space Agency", "stacmask"}
    assert "Example-1" in collection["keywords"]
    item = json.loads((folder / "EX1_20210601_L2" / "EX1_20210601_L2.json").read_text())
    props = item["properties"]
    assert props["stacmask:method"] == "physical" and props["platform"] == "example-1"
    assert props["processing:lineage"] == (
        "stacmask physical method on the four reflectance bands of EX1_20210601_L2"
    )
    # The mask is the physical method's on real data: its labelled-scene scores.
    scores = evaluate_files(
        folder / "EX1_20210601_L2" / "EX1_20210601_L2_mask.tif",
        shared_path("data/labelled/sentinel2_truth.tif"),
    )
    assert scores.kappa >= 0.86 and scores.cloud_f1 >= 0.89


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No plugin module or loaded sensor left over from another test."""
    monkeypatch.delitem(sys.modules, "example_sensor", raising=False)
    registry._load.cache_clear()


def test_plugins_are_found_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh: None
) -> None:
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path / "site")))
    assert "example-4band" in registry.sensor_names()
    sensor = registry.get_sensor("example-4band")
    assert sensor.methods == ("physical", "notebook") and sensor.default_method == "physical"


@pytest.mark.parametrize(
    ("body", "target", "message"),
    [
        ("raise ImportError('no numpy here')\n", "example_sensor:SENSOR", "cannot be loaded"),
        ("SENSOR = 'not a sensor'\n", "example_sensor:SENSOR", "is a str, not a"),
        (
            PLUGIN.replace('NAME = "example-4band"', 'NAME = "other"'),
            "example_sensor:SENSOR",
            "holds the sensor 'other'",
        ),
    ],
)
def test_a_broken_plugin_is_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh: None,
    body: str,
    target: str,
    message: str,
) -> None:
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path / "site", body, target)))
    with pytest.raises(ProfileError, match="example-4band") as error:
        registry.get_sensor("example-4band")
    assert message in str(error.value)
    assert registry.get_sensor("landsat-c2").name == "landsat-c2"  # the others still load


def test_builtins_are_declared_in_pyproject() -> None:
    """pyproject's entry points and the registry's built-ins are the same three."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][registry.ENTRY_POINT_GROUP] == registry.BUILTIN_SENSORS
    for name in registry.BUILTIN_SENSORS:
        assert registry.get_sensor(name).name == name
