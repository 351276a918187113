"""Sensor profiles: registry, asset keys, reflectance scaling rules and sun angles."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pystac
import pytest

from stacmask.constants import S2CLOUDLESS_BANDS
from stacmask.errors import ItemError, ProfileError
from stacmask.sensors.profiles import (
    DEFAULT_PROFILE,
    LANDSAT_L1_SCALING,
    LANDSAT_L2_SCALING,
    PROFILES,
    band_scaling,
    get_profile,
    sentinel2_offset,
    sun_angles,
)


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


def test_registry() -> None:
    assert DEFAULT_PROFILE == "cbers4a-wpm"
    assert set(PROFILES) == {"cbers4a-wpm", "sentinel2-l1c", "landsat-c2"}
    cbers = get_profile("cbers4a-wpm")
    assert [cbers.asset_key(b) for b in cbers.rgbn] == ["BAND1", "BAND2", "BAND3", "BAND4"]
    assert cbers.metadata_asset == "BAND1_xml" and cbers.default_method == "notebook"
    s2 = get_profile("sentinel2-l1c")
    keys = [s2.asset_key(b) for b in S2CLOUDLESS_BANDS]
    assert keys == [
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
    ]
    assert get_profile("landsat-c2").asset_key("qa_pixel") == "qa_pixel"
    with pytest.raises(ProfileError, match="known profiles: cbers4a-wpm, landsat-c2"):
        get_profile("modis")
    with pytest.raises(ProfileError, match="no band"):
        s2.asset_key("B99")
    with pytest.raises(ItemError, match="no asset 'cirrus'"):
        s2.href(_item({}, {"blue": {}}), "B10")


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
    s2 = get_profile("sentinel2-l1c")
    declared = {"raster:bands": [{"scale": 0.0001, "offset": -0.05}]}
    item = _item({"s2:processing_baseline": "05.09"}, {"blue": declared, "red": {}})
    assert band_scaling(s2, item, "B02") == (0.0001, -0.05)
    assert band_scaling(s2, item, "B04") == pytest.approx((0.0001, -0.1))
    landsat = get_profile("landsat-c2")
    assert band_scaling(landsat, _item({"landsat:correction": "L2SP"}), "red") == LANDSAT_L2_SCALING
    assert band_scaling(landsat, _item({"landsat:correction": "L1TP"}), "red") == LANDSAT_L1_SCALING
    with pytest.raises(ProfileError, match="calibration gains"):
        band_scaling(get_profile("cbers4a-wpm"), _item({}), "blue")


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
