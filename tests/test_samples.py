"""Synthetic WPM scenes: deterministic, realistic DN, truth cover as asked, INPE XML and item."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import rasterio
from defusedxml import ElementTree as DefusedET

from stacmask.constants import CLEAR, CLOUD, DEFAULT_GAINS, NODATA, SHADOW, WATER, XML_NAMESPACE
from stacmask.demo.samples import (
    BAND_KEYS,
    SampleScene,
    inpe_data_path,
    parse_scene_id,
    sample_item,
    write_sample_scene,
)
from tests.conftest import shared_path

SCENE_ID = "CBERS_4A_WPM_20210805_213_132_L4"
NS = {"x": XML_NAMESPACE}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(scene: SampleScene) -> tuple[np.ndarray, np.ndarray]:
    bands = []
    for key in BAND_KEYS:
        with rasterio.open(scene.bands[key]) as ds:
            bands.append(ds.read(1))
    with rasterio.open(scene.truth) as ds:
        truth = ds.read(1)
    return np.stack(bands), truth


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> SampleScene:
    out = tmp_path_factory.mktemp("scene")
    return write_sample_scene(out, SCENE_ID, width=512, height=448, seed=3, cloud_fraction=0.3)


def test_deterministic_for_a_seed(tmp_path: Path, scene: SampleScene) -> None:
    again = write_sample_scene(
        tmp_path / "a", SCENE_ID, width=512, height=448, seed=3, cloud_fraction=0.3
    )
    for key in BAND_KEYS:
        assert _digest(again.bands[key]) == _digest(scene.bands[key])
        assert _digest(again.xml[key]) == _digest(scene.xml[key])
    assert _digest(again.truth) == _digest(scene.truth)
    other = write_sample_scene(
        tmp_path / "b", SCENE_ID, width=512, height=448, seed=4, cloud_fraction=0.3
    )
    assert _digest(other.bands["BAND1"]) != _digest(scene.bands["BAND1"])


def test_pixels_do_not_depend_on_blocksize(tmp_path: Path, scene: SampleScene) -> None:
    other = write_sample_scene(
        tmp_path, SCENE_ID, width=512, height=448, seed=3, cloud_fraction=0.3, blocksize=128
    )
    with rasterio.open(other.bands["BAND4"]) as ds:
        assert ds.block_shapes[0] == (128, 128)
    bands, truth = _read(scene)
    other_bands, other_truth = _read(other)
    assert np.array_equal(bands, other_bands) and np.array_equal(truth, other_truth)


def test_geotiffs_are_tiled_deflate_utm(scene: SampleScene) -> None:
    for key in BAND_KEYS:
        with rasterio.open(scene.bands[key]) as ds:
            assert ds.count == 1
            assert (ds.width, ds.height) == (512, 448)
            assert ds.dtypes[0] == "uint16"
            assert ds.nodata == 0
            assert ds.block_shapes[0] == (256, 256)
            assert ds.compression is not None and ds.compression.value == "DEFLATE"
            assert ds.crs.to_epsg() == 32723
            assert ds.res == (8.0, 8.0)
            assert ds.transform == scene.transform
    with rasterio.open(scene.truth) as ds:
        assert ds.dtypes[0] == "uint8"
        assert ds.nodata == NODATA


def test_footprint_nodata_is_zero_in_all_bands(scene: SampleScene) -> None:
    bands, truth = _read(scene)
    outside = truth == NODATA
    # rotated footprint: every corner is outside, the centre inside
    for row, col in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert outside[row, col]
    assert not outside[224, 256]
    assert 0.03 < outside.mean() < 0.4
    assert (bands[:, outside] == 0).all()
    assert (bands[:, ~outside] > 0).all()  # no band has holes inside the footprint
    assert scene.class_counts[NODATA] == int(outside.sum())


def test_dn_are_realistic(scene: SampleScene) -> None:
    bands, truth = _read(scene)
    assert bands.max() <= 1023  # 10-bit
    clear = truth == CLEAR
    medians = [float(np.median(b[clear])) for b in bands]
    assert all(50 < m < 500 for m in medians), medians  # clear land: low hundreds
    water = truth == WATER
    assert water.any()
    assert np.median(bands[3][water]) < 0.3 * medians[3]  # water is dark in NIR
    cloud = truth == CLOUD
    cloud_med = [float(np.median(b[cloud])) for b in bands]
    assert all(c > 1.8 * m for c, m in zip(cloud_med[:3], medians[:3], strict=True))
    assert cloud_med[3] > medians[3]  # vegetation is bright in NIR too
    assert max(cloud_med) / min(cloud_med) < 1.6  # roughly flat spectrum in DN terms


def test_shadows_darken_nir_most(tmp_path: Path, scene: SampleScene) -> None:
    unshaded = write_sample_scene(
        tmp_path, SCENE_ID, width=512, height=448, seed=3, cloud_fraction=0.3, shadow=False
    )
    bands, truth = _read(scene)
    lit, _ = _read(unshaded)
    shadow = truth == SHADOW
    assert shadow.mean() > 0.02
    ratio = [
        float(np.median(b[shadow] / np.maximum(a[shadow], 1)))
        for b, a in zip(bands, lit, strict=True)
    ]
    assert all(r < 0.9 for r in ratio), ratio
    assert ratio[3] == min(ratio), ratio
    outside_shadow = (truth == CLEAR) | (truth == WATER)
    # only the soft shadow edges (< half opacity, truth clear) differ outside truth shadows
    same = (bands[:, outside_shadow] == lit[:, outside_shadow]).all(axis=0)
    assert same.mean() > 0.9


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.5, 0.9])
def test_truth_cloud_cover_follows_cloud_fraction(tmp_path: Path, fraction: float) -> None:
    scene = write_sample_scene(
        tmp_path, SCENE_ID, width=320, height=320, seed=11, cloud_fraction=fraction
    )
    _, truth = _read(scene)
    valid = truth != NODATA
    cover = float((truth[valid] == CLOUD).mean())
    assert abs(cover - fraction) < 0.03
    assert abs(scene.cover(CLOUD) - 100 * cover) < 1e-9
    if fraction == 0.0:
        assert not (truth == SHADOW).any()


def test_shadows_follow_the_sun(tmp_path: Path) -> None:
    """A shadow pixel sees a cloud cloud_height up towards the sun (azimuth 90: to the east)."""
    scene = write_sample_scene(
        tmp_path,
        SCENE_ID,
        width=384,
        height=384,
        cloud_fraction=0.15,
        sun_azimuth=90.0,
        sun_elevation=45.0,
        water=False,
        cloud_height=800.0,
    )
    _, truth = _read(scene)
    reach = round(800.0 / 1.0 / 8.0)  # height / tan(45 deg) / pixel size
    rows, cols = np.nonzero(truth[:, : 384 - reach] == SHADOW)
    towards_sun = truth[rows, cols + reach]
    seen = towards_sun != NODATA
    assert seen.sum() > 500
    assert (towards_sun[seen] == CLOUD).mean() > 0.95
    none = write_sample_scene(
        tmp_path / "n", SCENE_ID, width=256, height=256, shadow=False, water=False
    )
    _, truth = _read(none)
    assert not (truth == SHADOW).any() and not (truth == WATER).any()


def test_int16_and_gains(tmp_path: Path) -> None:
    scene = write_sample_scene(
        tmp_path, SCENE_ID, width=128, height=128, dtype="int16", with_gains=True, blocksize=64
    )
    with rasterio.open(scene.bands["BAND4"]) as ds:
        assert ds.dtypes[0] == "int16" and ds.block_shapes[0] == (64, 64)
    root = DefusedET.parse(scene.xml["BAND2"]).getroot()
    gains = {
        b.get("name"): float(b.text or "nan")
        for b in root.findall("x:image/x:absoluteCalibrationCoefficient/x:band", NS)
    }
    assert gains == {str(n): pytest.approx(g, abs=1e-6) for n, g in enumerate(DEFAULT_GAINS, 1)}


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cloud_fraction"):
        write_sample_scene(tmp_path, SCENE_ID, cloud_fraction=1.0)
    with pytest.raises(ValueError, match="dtype"):
        write_sample_scene(tmp_path, SCENE_ID, dtype="float32")


def _text(root: object, path: str) -> str:
    element = root.find(path, NS)  # type: ignore[attr-defined]
    assert element is not None, path
    return str(element.text)


def test_xml_matches_the_real_inpe_structure(scene: SampleScene) -> None:
    real = DefusedET.parse(shared_path("data/inpe-xml/CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml"))
    ours = DefusedET.parse(scene.xml["BAND2"])
    paths = [
        "x:image/x:columns",
        "x:image/x:lines",
        "x:image/x:verticalPixelSize",
        "x:image/x:horizontalPixelSize",
        "x:image/x:path",
        "x:image/x:row",
        "x:image/x:level",
        "x:image/x:orbitDirection",
        "x:image/x:processingTime",
        "x:image/x:timeStamp/x:center",
        "x:image/x:sunPosition/x:elevation",
        "x:image/x:sunPosition/x:sunAzimuth",
        "x:image/x:boundingBox/x:UL/x:latitude",
        "x:image/x:boundingBox/x:LR/x:longitude",
        "x:image/x:imageData/x:CT/x:easting",
        "x:viewing/x:center",
    ]
    for path in paths:
        _text(real.getroot(), path)  # the real file has it ...
        _text(ours.getroot(), path)  # ... and so do we
    root = ours.getroot()
    assert root.tag == f"{{{XML_NAMESPACE}}}prdf"
    assert _text(root, "x:image/x:columns") == "512"
    assert _text(root, "x:image/x:lines") == "448"
    assert (_text(root, "x:image/x:path"), _text(root, "x:image/x:row")) == ("213", "132")
    assert float(_text(root, "x:image/x:sunPosition/x:elevation")) == scene.sun_elevation
    assert _text(root, "x:image/x:timeStamp/x:center").startswith("2021-08-05T13:30:24")
    assert root.find("x:image/x:absoluteCalibrationCoefficient", NS) is None
    assert real.getroot().find("x:image/x:absoluteCalibrationCoefficient", NS) is None
    lat = float(_text(root, "x:image/x:boundingBox/x:UL/x:latitude"))
    assert scene.bbox[1] - 0.01 < lat < scene.bbox[3] + 0.01


def test_item_in_bdc_layout(scene: SampleScene) -> None:
    item = sample_item(scene, "http://example.test/bdc/")
    assert item["id"] == SCENE_ID
    assert parse_scene_id(item["id"]) is not None
    assert item["collection"] == "CB4A-WPM-L4-DN-1"
    props = item["properties"]
    assert props["datetime"] == "2021-08-05T13:30:24Z"
    assert props["start_datetime"] < props["datetime"] < props["end_datetime"]
    assert props["platform"] == "CBERS-4A" and props["instruments"] == ["WPM"]
    assert props["eo:cloud_cover"] == 0
    assert set(item["assets"]) == {
        *BAND_KEYS,
        *(f"{k}_xml" for k in BAND_KEYS),
        "thumbnail",
    }
    href = item["assets"]["BAND1"]["href"]
    assert href == (
        "http://example.test/bdc/data/CB4A-WPM-L4-DN/2021_08/"
        "CBERS_4A_WPM_RAW_2021_08_05.13_25_00_ETC2/213_132_0/4_BC_UTM_WGS84/"
        f"{SCENE_ID}_BAND1.tif"
    )
    assert inpe_data_path(scene) in href
    assert item["assets"]["BAND3_xml"]["type"] == "application/xml"
    ring = item["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    west, south, east, north = item["bbox"]
    assert all(west <= x <= east and south <= y <= north for x, y in ring)
    # counter-clockwise exterior ring (GeoJSON right-hand rule): positive shoelace area
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
    assert area > 0
    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert rels["self"] == f"http://example.test/bdc/collections/CB4A-WPM-L4-DN-1/items/{SCENE_ID}"
    assert rels["root"] == "http://example.test/bdc/"
