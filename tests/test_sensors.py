"""Sensors: the registry, asset keys, reflectance scaling rules, no data and sun angles."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pystac
import pytest

from stacmask.constants import BAND_KEY_PRESETS, S2CLOUDLESS_BANDS
from stacmask.errors import ItemError, ProfileError
from stacmask.methods.registry import DEFAULT_METHOD
from stacmask.sensors import landsat, sentinel2
from stacmask.sensors.inputs import MAIN_BANDS, SensorOptions
from stacmask.sensors.landsat import LANDSAT_L1_SCALING, LANDSAT_L2_SCALING
from stacmask.sensors.registry import DEFAULT_SENSOR, get_sensor, sensor_names
from stacmask.sensors.sentinel2 import sentinel2_offset
from stacmask.sensors.stac import sun_angles


def _item(
    properties: dict[str, Any], assets: dict[str, dict[str, Any]] | None = None
) -> pystac.Item:
    item = pystac.Item(
        "X",
        {"type": "Point", "coordinates": [0.0, 0.0]},
        [0.0, 0.0, 0.0, 0.0],
        datetime(2023, 1, 1, tzinfo=timezone.utc),
        properties,
    )
    for key, extra in (assets or {}).items():
        item.add_asset(key, pystac.Asset(f"https://example.test/{key}.tif", extra_fields=extra))
    return item


def _s2_item(missing: str | None = None, **properties: Any) -> pystac.Item:
    """An L1C item with every band asset (but `missing`), no raster:bands."""
    keys = [key for _, key, _ in sentinel2.SENTINEL2_BANDS if key != missing]
    return _item(properties, {key: {} for key in keys})


def test_registry() -> None:
    assert DEFAULT_SENSOR == "cbers4a-wpm"
    assert {"cbers4a-wpm", "sentinel2-l1c", "landsat-c2"} <= set(sensor_names())
    cbers = get_sensor("cbers4a-wpm")
    assert cbers.default_method == DEFAULT_METHOD == "hybrid"
    assert set(cbers.methods) == {"hybrid", "physical", "notebook", "csmask", "ensemble"}
    keys = BAND_KEY_PRESETS["bdc"]
    inputs = cbers.scene_inputs(_item({}, {key: {} for key in keys.bands}), SensorOptions())
    assert [inputs.band(b).href.rsplit("/", 1)[1] for b in MAIN_BANDS] == [
        f"{key}.tif" for key in keys.bands
    ]
    assert inputs.calibration == "default"
    s2 = get_sensor("sentinel2-l1c")
    assert s2.methods == ("s2cloudless",)
    inputs = s2.scene_inputs(_s2_item(), SensorOptions())
    hrefs = [inputs.band(b).href.rsplit("/", 1)[1] for b in S2CLOUDLESS_BANDS]
    assert hrefs == [
        f"{key}.tif"
        for key in (
            "coastal",
            "blue",
            "red",
            "rededge1",
            "nir",
            "nir08",
            "nir09",
            "cirrus",
            "swir16",
            "swir22",
        )
    ]
    assert inputs.band("nir").href == inputs.band("B08").href
    landsat_item = _item({}, {key: {} for key in ("blue", "green", "red", "nir08", "qa_pixel")})
    qa = get_sensor("landsat-c2").scene_inputs(landsat_item, SensorOptions()).band("qa_pixel")
    assert qa.categorical and qa.href.endswith("qa_pixel.tif")
    with pytest.raises(ProfileError, match="known profiles: cbers4a-wpm, landsat-c2"):
        get_sensor("modis")
    with pytest.raises(ProfileError, match="does not apply to sensor landsat-c2"):
        get_sensor("landsat-c2").method("s2cloudless", SensorOptions())
    with pytest.raises(ItemError, match="no asset 'cirrus' \\(B10\\)"):
        s2.scene_inputs(_s2_item(missing="cirrus"), SensorOptions())


@pytest.mark.parametrize(
    ("properties", "offset"),
    [
        ({"s2:processing_baseline": "05.09"}, -0.1),
        ({"s2:processing_baseline": "04.00"}, -0.1),
        ({"s2:processing_baseline": "03.01"}, 0.0),
        ({"s2:processing_baseline": "02.14"}, 0.0),
        ({}, 0.0),
        ({"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}, 0.0),
    ],
)
def test_sentinel2_offset_follows_the_baseline(properties: dict[str, Any], offset: float) -> None:
    assert sentinel2_offset(_item(properties)) == pytest.approx(offset)


def test_sentinel2_bad_baseline_is_an_item_error() -> None:
    with pytest.raises(ItemError, match="processing_baseline"):
        sentinel2_offset(_item({"s2:processing_baseline": "N0509"}))


def test_declared_raster_scaling_wins() -> None:
    declared = {"raster:bands": [{"scale": 0.0001, "offset": -0.05}]}
    item = _item({"s2:processing_baseline": "05.09"}, {"blue": declared, "red": {}})
    assert sentinel2.band_scaling(item, "blue") == (0.0001, -0.05)
    assert sentinel2.band_scaling(item, "red") == pytest.approx((0.0001, -0.1))
    l2, l1 = _item({"landsat:correction": "L2SP"}), _item({"landsat:correction": "L1TP"})
    assert landsat.band_scaling(l2, "red") == LANDSAT_L2_SCALING
    assert landsat.band_scaling(l1, "red") == LANDSAT_L1_SCALING
    # CBERS DN are scaled by their gains, sun and date, one factor per band, no offset.
    keys = BAND_KEY_PRESETS["bdc"]
    cbers = get_sensor("cbers4a-wpm").scene_inputs(
        _item({}, {key: {} for key in keys.bands}), SensorOptions()
    )
    assert all(cbers.band(b).offset == 0.0 and cbers.band(b).scale > 0 for b in MAIN_BANDS)


def test_sentinel2_no_data_is_zero_unless_declared() -> None:
    """L1C JP2s carry no nodata tag: DN 0 is no data unless raster:bands says otherwise."""
    s2 = get_sensor("sentinel2-l1c")
    inputs = s2.scene_inputs(_s2_item(), SensorOptions())
    assert {inputs.band(b).nodata for b in (*MAIN_BANDS, *S2CLOUDLESS_BANDS)} == {0.0}
    item = _s2_item()
    item.assets["blue"].extra_fields["raster:bands"] = [{"nodata": 65535}]
    assert s2.scene_inputs(item, SensorOptions()).band("B02").nodata == 65535


def test_unsupported_items_are_refused_naming_the_item() -> None:
    s2 = get_sensor("sentinel2-l1c")
    with pytest.raises(ItemError, match="item X: s2:product_type is 'S2MSI2A'"):
        s2.scene_inputs(_s2_item(**{"s2:product_type": "S2MSI2A"}), SensorOptions())
    mss = _item({}, {key: {} for key in ("green", "red", "nir08", "qa_pixel")})
    with pytest.raises(ItemError, match=r"item X: no asset 'blue'.*MSS has no blue band"):
        get_sensor("landsat-c2").scene_inputs(mss, SensorOptions())
    radiance = _item({}, {key: {} for key in ("blue", "green", "red", "nir08", "qa_pixel")})
    radiance.assets["red"].extra_fields["raster:bands"] = [
        {"unit": "watt/steradian/square_meter/micrometer", "scale": 0.01}
    ]
    with pytest.raises(ItemError, match="item X: asset 'red' is radiance"):
        get_sensor("landsat-c2").scene_inputs(radiance, SensorOptions())
    with pytest.raises(ItemError, match=r"item X: missing band asset.*BAND4"):
        get_sensor("cbers4a-wpm").scene_inputs(
            _item({}, {key: {} for key in ("BAND1", "BAND2", "BAND3")}), SensorOptions()
        )


def test_landsat_mss_is_refused_saying_what_the_sensor_reads() -> None:
    """MSS items (Landsat C2 L1, radiance-free DN, no blue band) fail with the sensor's scope,
    not a bare "no asset 'blue'"."""
    assets = {key: {} for key in ("green", "red", "nir08", "qa_pixel")}
    mss = _item({"instruments": ["mss"]}, assets)
    with pytest.raises(ItemError) as refused:
        get_sensor("landsat-c2").scene_inputs(mss, SensorOptions())
    assert str(refused.value).startswith("item X: a Landsat MSS scene; the landsat-c2 sensor")
    assert "TM, ETM+ and OLI" in str(refused.value)
    assert get_sensor("landsat-c2").supports in str(refused.value)


def test_radiance_units_are_refused_by_every_sensor() -> None:
    s2 = _s2_item()
    s2.assets["red"].extra_fields["raster:bands"] = [{"unit": "W/m2/sr/um", "scale": 0.1}]
    with pytest.raises(ItemError, match="item X: asset 'red' is radiance"):
        get_sensor("sentinel2-l1c").scene_inputs(s2, SensorOptions())


def test_sun_angles_from_view_or_s2_properties() -> None:
    assert sun_angles(_item({"view:sun_elevation": 40.0, "view:sun_azimuth": 120.0})) == (
        40.0,
        120.0,
    )
    assert sun_angles(_item({"s2:mean_solar_zenith": 30.0, "s2:mean_solar_azimuth": 150.0})) == (
        60.0,
        150.0,
    )
    assert sun_angles(_item({"view:sun_elevation": "high"})) == (None, None)
