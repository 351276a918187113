"""`stacmask build --profile sentinel2-l1c|landsat-c2` against a STAC API on 127.0.0.1."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from typer.testing import CliRunner

from stacmask.catalog.validate import validate_catalog
from stacmask.cli import app
from stacmask.constants import (
    BAND_KEY_PRESETS,
    CLEAR,
    CLOUD,
    MASK_ASSET,
    NODATA,
    PROBABILITY_ASSET,
    SHADOW,
    SNOW,
    WATER,
)
from stacmask.demo.sample_api import SampleStacApi
from stacmask.pipeline.build import BuildOptions, build
from stacmask.sensors.sensor_scene import SensorOptions
from tests.landsat_scene import landsat_item, landsat_truth, write_landsat_scene
from tests.sample_sentinel2 import sentinel2_item, write_scene

S2_COLLECTION = {
    "title": "Sentinel-2 Level-1C",
    "description": "Synthetic Sentinel-2 L1C scenes in Earth Search's layout",
    "license": "proprietary",
    "keywords": ["sentinel", "copernicus"],
    "providers": [
        {"name": "ESA", "roles": ["producer", "licensor"], "url": "https://www.esa.int"},
        {"name": "AWS", "roles": ["host"]},
    ],
}


def _serve(api: SampleStacApi, item: dict[str, Any]) -> None:
    """Add an item with the self link a STAC API gives it (derived_from points there)."""
    cid = item["collection"]
    item["links"] = [
        {"rel": "self", "href": f"{api.url}collections/{cid}/items/{item['id']}"},
        {"rel": "collection", "href": f"{api.url}collections/{cid}"},
    ]
    api.add_item(item)


NEW_BASELINE = "S2B_33UUV_20230611_0_L1C"  # 05.09, raster:bands declared, Fmask asset
OLD_BASELINE = "S2A_33UUV_20210611_0_L1C"  # 03.01, no declared scaling, no Fmask


def _write_fmask(path: Path, truth: np.ndarray) -> None:
    """A categorical Fmask at 20 m that knows shadow and water but missed half the cloud."""
    fmask = truth.copy()
    fmask[(truth == CLOUD) & (np.arange(truth.shape[1]) % 2 == 0)] = CLEAR
    fmask = np.repeat(np.repeat(fmask, 3, axis=0), 3, axis=1)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=fmask.shape[1],
        height=fmask.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        nodata=255,
        transform=rasterio.Affine(20.0, 0.0, 399960.0, 0.0, -20.0, 5900040.0),
    ) as dst:
        dst.write(fmask, 1)


@pytest.fixture(scope="module")
def s2_api(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SampleStacApi, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("s2-api")
    with SampleStacApi(root) as api:
        api.add_collection("sentinel-2-l1c", **json.loads(json.dumps(S2_COLLECTION)))
        scenes = {}
        for scene_id, baseline, declare in (
            (NEW_BASELINE, "05.09", True),
            (OLD_BASELINE, "03.01", False),
        ):
            scene = write_scene(root / scene_id, scene_id, baseline=baseline, seed=1)
            hrefs = {key: api.data_url(path) for key, path in scene.files.items()}
            item = sentinel2_item(scene, hrefs, declare_raster_scaling=declare)
            if declare:
                _write_fmask(root / scene_id / "fmask.tif", scene.truth)
                item["assets"]["fmask"] = {
                    "href": api.data_url(root / scene_id / "fmask.tif"),
                    "type": "image/tiff; application=geotiff",
                    "roles": ["cloud", "cloud-shadow"],
                }
            _serve(api, item)
            scenes[scene_id] = scene
        yield api, scenes


@pytest.fixture(scope="module")
def s2_catalog(
    s2_api: tuple[SampleStacApi, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    api, _ = s2_api
    out = tmp_path_factory.mktemp("s2-out") / "s2cat"
    options = BuildOptions(
        out=out,
        keys=BAND_KEY_PRESETS["bdc"],
        stac_url=api.url,
        collection="sentinel-2-l1c",
        profile="sentinel2-l1c",
        method="s2cloudless",
        sensor=SensorOptions(fmask_asset="fmask", dilation_size=None),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build(options, echo=lambda _: None, progress=False)
    assert report.ok, report.failed
    assert sorted(report.done) == sorted([NEW_BASELINE, OLD_BASELINE])
    assert any("no Fmask asset 'fmask'" in str(w.message) for w in caught)
    return out


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _item(out: Path, collection: str, scene_id: str) -> dict[str, Any]:
    return json.loads((out / collection / scene_id / f"{scene_id}.json").read_text())


def test_s2_catalog_is_valid_and_linked(
    s2_catalog: Path, s2_api: tuple[SampleStacApi, dict[str, Any]], schema_map: Path
) -> None:
    api, _ = s2_api
    report = validate_catalog(s2_catalog, schema_map)
    assert report.ok, [str(p) for p in report.problems]
    collection = json.loads((s2_catalog / "sentinel-2-l1c-mask" / "collection.json").read_text())
    assert {"ESA", "stacmask"} == {p["name"] for p in collection["providers"]}
    assert "sentinel" in collection["keywords"]
    item = _item(s2_catalog, "sentinel-2-l1c-mask", NEW_BASELINE)
    derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
    assert derived == [f"{api.url}collections/sentinel-2-l1c/items/{NEW_BASELINE}"]
    props = item["properties"]
    assert props["stacmask:method"] == "s2cloudless"
    assert props["stacmask:calibration"] == "reflectance"
    assert props["stacmask:probability_threshold"] == 0.4
    assert props["view:sun_elevation"] == 58.2
    assert props["proj:shape"] == [40, 40] and props["proj:transform"][0] == 60.0
    assert "fmask" in props["processing:lineage"]
    assert {MASK_ASSET, PROBABILITY_ASSET, "thumbnail"} <= set(item["assets"])


def test_s2_mask_is_the_union_of_s2cloudless_and_fmask(
    s2_catalog: Path, s2_api: tuple[SampleStacApi, dict[str, Any]]
) -> None:
    _, scenes = s2_api
    truth = scenes[NEW_BASELINE].truth
    folder = s2_catalog / "sentinel-2-l1c-mask" / NEW_BASELINE
    classes = _read(folder / f"{NEW_BASELINE}_mask.tif")
    assert classes.shape == truth.shape
    assert (classes[truth == NODATA] == NODATA).all()
    assert (classes[truth == CLOUD] == CLOUD).all()  # Fmask missed half; s2cloudless has it
    assert (classes[truth == SHADOW] == SHADOW).all()  # from Fmask
    assert (classes[truth == WATER] == WATER).all()  # from Fmask
    assert (classes == truth).mean() > 0.95
    item = _item(s2_catalog, "sentinel-2-l1c-mask", NEW_BASELINE)
    valid = truth != NODATA
    true_cloud = 100.0 * (truth[valid] == CLOUD).mean()
    assert abs(item["properties"]["eo:cloud_cover"] - true_cloud) < 5.0
    assert item["properties"]["stacmask:shadow_cover"] > 0.0


def test_s2_without_fmask_and_old_baseline(
    s2_catalog: Path, s2_api: tuple[SampleStacApi, dict[str, Any]]
) -> None:
    _, scenes = s2_api
    truth = scenes[OLD_BASELINE].truth
    folder = s2_catalog / "sentinel-2-l1c-mask" / OLD_BASELINE
    classes = _read(folder / f"{OLD_BASELINE}_mask.tif")
    assert (classes[truth == CLOUD] == CLOUD).all()
    assert not np.isin(classes, [SHADOW, WATER]).any()  # s2cloudless alone
    # Both baselines give the same probabilities: the -1000 DN offset was undone only where
    # the baseline says so (05.09: declared raster:bands; 03.01: none).
    old = _read(folder / f"{OLD_BASELINE}_{PROBABILITY_ASSET}.tif")
    new_folder = s2_catalog / "sentinel-2-l1c-mask" / NEW_BASELINE
    new = _read(new_folder / f"{NEW_BASELINE}_{PROBABILITY_ASSET}.tif")
    assert (old == 255).sum() == (truth == NODATA).sum()
    assert np.abs(old.astype(int) - new.astype(int))[truth != NODATA].max() <= 2
    assert old[truth == CLOUD].min() >= 90 and old[truth == CLEAR].max() <= 20


def test_s2_rebuild_skips_present_scenes(
    s2_catalog: Path, s2_api: tuple[SampleStacApi, dict[str, Any]]
) -> None:
    api, _ = s2_api
    options = BuildOptions(
        out=s2_catalog,
        keys=BAND_KEY_PRESETS["bdc"],
        stac_url=api.url,
        collection="sentinel-2-l1c",
        profile="sentinel2-l1c",
        method="s2cloudless",
    )
    report = build(options, echo=lambda _: None, progress=False)
    assert report.skipped and not report.done and report.ok


# --- Landsat through the CLI ----------------------------------------------------------------------
def test_landsat_build_from_the_cli(tmp_path: Path, schema_map: Path) -> None:
    size = 64
    truth = landsat_truth(size)
    (tmp_path / "api").mkdir()
    with SampleStacApi(tmp_path / "api") as api:
        scene_id = "LC09_L2SP_014032_20230702_02_T1"
        files = write_landsat_scene(tmp_path / "api" / scene_id, truth)
        # The dilated-cloud ring around the cloud, written into QA_PIXEL.
        with rasterio.open(files["qa_pixel"], "r+") as dst:
            qa = dst.read(1)
            grown = np.zeros_like(truth, dtype=bool)
            cloud = truth == CLOUD
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                grown |= np.roll(cloud, (dy, dx), axis=(0, 1))
            ring = grown & ~cloud & (truth == CLEAR)
            qa[ring] = 21824 - 64 + 2
            dst.write(qa, 1)
        api.add_collection(
            "landsat-c2-l2",
            title="Landsat Collection 2 Level-2",
            description="Synthetic Landsat C2 L2",
            license="proprietary",
            providers=[{"name": "USGS", "roles": ["producer", "licensor"]}],
        )
        _serve(api, landsat_item(scene_id, {k: api.data_url(p) for k, p in files.items()}, size))
        out = tmp_path / "landsat"
        result = CliRunner().invoke(
            app,
            [
                "build",
                "--out",
                str(out),
                "--stac-url",
                api.url,
                "--profile",
                "landsat-c2",
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        bad = CliRunner().invoke(
            app,
            [
                "build",
                "--out",
                str(out),
                "--stac-url",
                api.url,
                "--profile",
                "landsat-c2",
                "--method",
                "s2cloudless",
            ],
        )
        assert bad.exit_code != 0 and "does not apply" in bad.output
    assert validate_catalog(out, schema_map).ok
    folder = out / "landsat-c2-l2-mask" / scene_id
    classes = _read(folder / f"{scene_id}_mask.tif")
    expected = truth.copy()
    expected[ring] = CLOUD
    np.testing.assert_array_equal(classes, expected)
    item = _item(out, "landsat-c2-l2-mask", scene_id)
    assert item["properties"]["stacmask:method"] == "qa-pixel"
    valid = expected != NODATA
    assert item["properties"]["eo:cloud_cover"] == pytest.approx(
        100.0 * (expected[valid] == CLOUD).mean(), abs=1e-3
    )
    assert (classes == SNOW).any()
    assert "derived_from" in {link["rel"] for link in item["links"]}
    with rasterio.open(folder / f"{scene_id}_mask.tif") as src:
        assert src.overviews(1) is not None
        assert src.read(1, out_shape=(8, 8), resampling=Resampling.nearest).dtype == np.uint8
