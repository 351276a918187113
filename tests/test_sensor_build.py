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
from stacmask.pipeline.build import BuildOptions, build
from stacmask.sensors.inputs import SensorOptions
from tests.landsat_scene import landsat_item, landsat_truth, write_landsat_scene
from tests.sample_api import SampleStacApi
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


def _build(api: SampleStacApi, out: Path, profile: str, collection: str, **kwargs: Any) -> Any:
    """`build` of `collection` served by `api` into `out` with sensor `profile`; its report."""
    options = BuildOptions(
        out=out,
        keys=BAND_KEY_PRESETS["bdc"],
        stac_url=api.url,
        collection=collection,
        profile=profile,
        **kwargs,
    )
    return build(options, echo=lambda _: None, progress=False)


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
    sensor = SensorOptions(fmask_asset="fmask", dilation_size=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _build(
            api, out, "sentinel2-l1c", "sentinel-2-l1c", method="s2cloudless", sensor=sensor
        )
    assert report.ok, report.failed
    assert sorted(report.done) == sorted([NEW_BASELINE, OLD_BASELINE])
    said = [str(w.message) for w in caught]
    said += [text for texts in report.warnings.values() for text in texts]
    assert any("no Fmask asset 'fmask'" in text for text in said)
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
    report = _build(api, s2_catalog, "sentinel2-l1c", "sentinel-2-l1c", method="s2cloudless")
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


# --- the fixes of the one seam (issue 11) --------------------------------------------------
def _cut_footprint(scene: Any, columns: int) -> np.ndarray:
    """Write DN 0 into every band left of `columns` (60 m columns): a tile whose data covers
    only part of it, as L1C tiles at a swath edge. Returns the truth with that part NODATA."""
    for path in scene.files.values():
        with rasterio.open(path, "r+") as dst:
            factor = dst.width // scene.truth.shape[1]
            dn = dst.read(1)
            dn[:, : columns * factor] = 0
            dst.write(dn, 1)
    truth = scene.truth.copy()
    truth[:, :columns] = NODATA
    return truth


@pytest.mark.parametrize("declare", [True, False], ids=["raster-bands-nodata", "nothing-declared"])
def test_s2_partial_footprint_counts_only_its_data(
    tmp_path: Path, schema_map: Path, declare: bool
) -> None:
    """L1C files carry no nodata tag: DN 0 is no data (raster:bands nodata, else 0), never
    valid clear land, so covers are of the data footprint and valid pixels count it alone."""
    root = tmp_path / "api"
    scene_id = "S2B_33UUV_20230612_0_L1C"
    scene = write_scene(root / scene_id, scene_id, baseline="05.09", seed=2, nodata_tag=False)
    truth = _cut_footprint(scene, columns=22)
    with rasterio.open(scene.files["blue"]) as src:
        assert src.nodata is None
    with SampleStacApi(root) as api:
        api.add_collection("sentinel-2-l1c", **json.loads(json.dumps(S2_COLLECTION)))
        hrefs = {key: api.data_url(path) for key, path in scene.files.items()}
        _serve(api, sentinel2_item(scene, hrefs, declare_raster_scaling=declare))
        out = tmp_path / "out"
        sensor = SensorOptions(dilation_size=None)
        report = _build(api, out, "sentinel2-l1c", "sentinel-2-l1c", sensor=sensor)
    assert report.ok, report.failed
    assert validate_catalog(out, schema_map).ok
    classes = _read(out / "sentinel-2-l1c-mask" / scene_id / f"{scene_id}_mask.tif")
    np.testing.assert_array_equal(classes == NODATA, truth == NODATA)
    props = _item(out, "sentinel-2-l1c-mask", scene_id)["properties"]
    footprint = truth != NODATA
    assert props["stacmask:valid_pixels"] == int(footprint.sum()) < truth.size * 0.6
    true_cloud = 100.0 * float((truth[footprint] == CLOUD).mean())
    assert true_cloud > 10.0
    assert props["eo:cloud_cover"] == pytest.approx(true_cloud, abs=3.0)


@pytest.mark.parametrize("sensor", ["sentinel2-l1c", "landsat-c2"])
def test_timeout_reaches_the_band_reads(tmp_path: Path, sensor: str) -> None:
    """`--timeout` bounds every band read of every sensor (a band that never answers fails
    its scene within a few timeouts, naming the file), not only CBERS's."""
    import time

    root = tmp_path / "api"
    with SampleStacApi(root) as api:
        if sensor == "sentinel2-l1c":
            scene_id = "S2B_33UUV_20230613_0_L1C"
            scene = write_scene(root / scene_id, scene_id)
            files = {key: api.data_url(path) for key, path in scene.files.items()}
            item = sentinel2_item(scene, files)
            slow = "cirrus"  # an s2cloudless band, read strip by strip
            collection = "sentinel-2-l1c"
        else:
            scene_id = "LC09_L2SP_014032_20230703_02_T1"
            paths = write_landsat_scene(root / scene_id, landsat_truth(64))
            item = landsat_item(scene_id, {k: api.data_url(p) for k, p in paths.items()}, 64)
            slow = "qa_pixel"  # the grid and the mask
            collection = "landsat-c2-l2"
        api.add_collection(collection)
        _serve(api, item)
        api.faults.delay("/" + item["assets"][slow]["href"].split("/", 3)[3], 30.0)
        started = time.monotonic()
        report = _build(api, tmp_path / "out", sensor, collection, timeout=2)
        elapsed = time.monotonic() - started
    assert list(report.failed) == [scene_id]
    assert report.failed[scene_id].startswith("[read]")
    assert Path(item["assets"][slow]["href"]).name in report.failed[scene_id]
    assert elapsed < 25.0, f"the scene took {elapsed:.0f} s to fail with --timeout 2"


def test_landsat_catalog_never_lists_inpe(tmp_path: Path, schema_map: Path) -> None:
    """A source collection that names no provider nor keyword: the mask collection lists the
    sensor's own (USGS, Landsat), never CBERS's INPE."""
    root = tmp_path / "api"
    scene_id = "LC09_L2SP_014032_20230704_02_T1"
    with SampleStacApi(root) as api:
        paths = write_landsat_scene(root / scene_id, landsat_truth(64))
        api.add_collection(
            "landsat-c2-l2", title="Landsat C2 L2", license="proprietary", providers=[], keywords=[]
        )
        _serve(api, landsat_item(scene_id, {k: api.data_url(p) for k, p in paths.items()}, 64))
        out = tmp_path / "out"
        assert _build(api, out, "landsat-c2", "landsat-c2-l2").ok
    assert validate_catalog(out, schema_map).ok
    collection = json.loads((out / "landsat-c2-l2-mask" / "collection.json").read_text())
    names = {p["name"] for p in collection["providers"]}
    assert names == {"USGS", "stacmask"}
    assert not any("INPE" in name for name in names)
    assert "Landsat" in collection["keywords"] and "CBERS-4A" not in collection["keywords"]
    item = _item(out, "landsat-c2-l2-mask", scene_id)
    assert [p["name"] for p in item["properties"]["providers"]] == ["USGS", "stacmask"]
    assert "cbers:path" not in item["properties"]
