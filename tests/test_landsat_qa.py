"""Landsat QA decoding: hand-made bit patterns, published QA_PIXEL values and the real BQA band."""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, SNOW, WATER
from stacmask.errors import DecodeError
from stacmask.methods.classes import class_shares
from stacmask.methods.landsat_qa import (
    BqaConfig,
    Confidence,
    QaPixelConfig,
    decode_bqa_pre_collection,
    decode_qa_pixel,
)
from tests.conftest import shared_path


def qa_pixel(
    *,
    fill: int = 0,
    dilated: int = 0,
    cirrus: int = 0,
    cloud: int = 0,
    shadow: int = 0,
    snow: int = 0,
    clear: int = 0,
    water: int = 0,
    cloud_conf: int = 0,
    shadow_conf: int = 0,
    snow_conf: int = 0,
    cirrus_conf: int = 0,
) -> int:
    """One QA_PIXEL value from its fields (DFCB bit layout)."""
    flags = (fill, dilated, cirrus, cloud, shadow, snow, clear, water)
    value = sum(bit << i for i, bit in enumerate(flags))
    pairs = (cloud_conf, shadow_conf, snow_conf, cirrus_conf)
    return value + sum(level << (8 + 2 * i) for i, level in enumerate(pairs))


def test_field_builder_matches_published_values() -> None:
    # Values USGS lists for Landsat 8-9 C2 QA_PIXEL.
    low = {"cloud_conf": 1, "shadow_conf": 1, "snow_conf": 1, "cirrus_conf": 1}
    assert qa_pixel(clear=1, **low) == 21824
    assert qa_pixel(clear=1, water=1, **low) == 21952
    assert qa_pixel(fill=1) == 1


def test_published_qa_pixel_values() -> None:
    values = {
        1: NODATA,  # fill
        21824: CLEAR,  # clear land, low confidences
        21952: WATER,  # clear water
        23888: SHADOW,  # cloud shadow, high shadow confidence
        30048: SNOW,  # snow, high snow confidence
        22280: CLOUD,  # cloud, high cloud confidence
        55052: CLOUD,  # cloud + high-confidence cirrus
        21890: CLOUD,  # dilated cloud over water
    }
    qa = np.array([list(values)], dtype=np.uint16)
    assert decode_qa_pixel(qa).tolist() == [list(values.values())]


def test_each_flag_and_priority() -> None:
    cases = [
        (qa_pixel(), CLEAR),
        (qa_pixel(clear=1), CLEAR),
        (qa_pixel(water=1), WATER),
        (qa_pixel(snow=1), SNOW),
        (qa_pixel(snow=1, water=1), SNOW),  # snow over water
        (qa_pixel(cloud=1), CLOUD),
        (qa_pixel(cloud=1, snow=1), CLOUD),  # cloud over snow
        (qa_pixel(cloud=1, water=1), CLOUD),  # cloud over water
        (qa_pixel(shadow=1), SHADOW),
        (qa_pixel(shadow=1, cloud=1), SHADOW),  # shadow over cloud (project order)
        (qa_pixel(dilated=1), CLOUD),
        (qa_pixel(cirrus=1), CLOUD),
        (qa_pixel(fill=1, cloud=1), NODATA),
        (qa_pixel(cloud_conf=3), CLEAR),  # confidences off by default
        (qa_pixel(shadow_conf=3, snow_conf=3, cirrus_conf=3), CLEAR),
    ]
    qa = np.array([[value for value, _ in cases]], dtype=np.uint16)
    assert decode_qa_pixel(qa)[0].tolist() == [code for _, code in cases]


def test_config_switches() -> None:
    qa = np.array(
        [[qa_pixel(dilated=1), qa_pixel(cirrus=1), qa_pixel(cloud_conf=2), qa_pixel(cloud_conf=1)]],
        dtype=np.uint16,
    )
    strict = QaPixelConfig(dilated_cloud=False, cirrus=False)
    assert decode_qa_pixel(qa, strict)[0].tolist() == [CLEAR] * 4
    medium = QaPixelConfig(min_cloud_confidence=Confidence.MEDIUM)
    assert decode_qa_pixel(qa, medium)[0].tolist() == [CLOUD, CLOUD, CLOUD, CLEAR]
    pairs = np.array(
        [[qa_pixel(shadow_conf=3), qa_pixel(snow_conf=2), qa_pixel(cirrus_conf=3)]],
        dtype=np.uint16,
    )
    config = QaPixelConfig(
        min_shadow_confidence=Confidence.HIGH,
        min_snow_confidence=Confidence.MEDIUM,
        min_cirrus_confidence=Confidence.HIGH,
    )
    assert decode_qa_pixel(pairs, config)[0].tolist() == [SHADOW, SNOW, CLOUD]
    with pytest.raises(DecodeError, match="NONE"):
        decode_qa_pixel(pairs, QaPixelConfig(min_cloud_confidence=Confidence.NONE))


def test_bad_input_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="integers"):
        decode_qa_pixel(np.zeros((2, 2), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="2-D"):
        decode_qa_pixel(np.zeros((1, 2, 2), dtype=np.uint16))
    with pytest.raises(DecodeError, match="16 bits"):
        decode_qa_pixel(np.array([[70000]], dtype=np.int32))
    with pytest.raises(ValueError):  # DecodeError is also a ValueError
        decode_bqa_pre_collection(np.array([[-1]], dtype=np.int32))


def bqa(*, fill: int = 0, water: int = 0, snow: int = 0, cirrus: int = 0, cloud: int = 0) -> int:
    """One pre-collection BQA value from its fields."""
    return fill | water << 4 | snow << 10 | cirrus << 12 | cloud << 14


def test_bqa_hand_made_patterns() -> None:
    cases = [
        (bqa(fill=1), NODATA),
        (bqa(), CLEAR),  # all "not determined"
        (bqa(cloud=1, cirrus=1), CLEAR),  # "no"
        (bqa(cloud=2), CLEAR),  # "maybe" is not enough by default
        (bqa(cloud=3), CLOUD),
        (bqa(cirrus=3), CLEAR),  # cirrus pair ignored by default
        (bqa(water=3), WATER),
        (bqa(water=2), CLEAR),
        (bqa(snow=3), SNOW),
        (bqa(snow=3, water=3), SNOW),
        (bqa(cloud=3, snow=3), CLOUD),
        (bqa(fill=1, cloud=3), NODATA),
    ]
    values = np.array([[value for value, _ in cases]], dtype=np.uint16)
    assert decode_bqa_pre_collection(values)[0].tolist() == [code for _, code in cases]
    # The real clip's most frequent values (checked against the USGS table by hand).
    assert bqa(cloud=1, cirrus=1) == 20480 and bqa(cloud=3, cirrus=3) == 61440
    loose = BqaConfig(min_cloud_confidence=Confidence.MEDIUM, min_cirrus_confidence=Confidence.HIGH)
    got = decode_bqa_pre_collection(
        np.array([[bqa(cloud=2), bqa(cirrus=3)]], dtype=np.uint16), loose
    )
    assert got.tolist() == [[CLOUD, CLOUD]]


# --- the real pre-collection BQA band -----------------------------------------------------------
def _mtl_value(text: str, key: str) -> float:
    match = re.search(rf"^\s*{key}\s*=\s*(\S+)", text, re.MULTILINE)
    assert match, key
    return float(match.group(1))


def _toa(folder: str, band: int, mtl: str) -> np.ndarray:
    with rasterio.open(shared_path(f"{folder}/l8_B{band}.tif")) as src:
        dn = src.read(1).astype(np.float64)
    mult = _mtl_value(mtl, f"REFLECTANCE_MULT_BAND_{band}")
    add = _mtl_value(mtl, f"REFLECTANCE_ADD_BAND_{band}")
    sun = np.sin(np.radians(_mtl_value(mtl, "SUN_ELEVATION")))
    return (dn * mult + add) / sun


def test_real_bqa_cover_is_plausible_against_a_reflectance_test() -> None:
    folder = "data/landsat8-cloudy"
    with rasterio.open(shared_path(f"{folder}/l8_BQA.tif")) as src:
        raw = src.read(1)
    mtl = shared_path(f"{folder}/l8_MTL.txt").read_text()
    classes = decode_bqa_pre_collection(raw)
    shares = class_shares(classes)
    blue = _toa(folder, 2, mtl)
    nir = _toa(folder, 5, mtl)

    assert (classes != NODATA).all()  # the clip is inside the scene: no fill
    # Broken cumulus: a few percent of high-confidence cloud, less than the loose reading.
    loose = class_shares(
        decode_bqa_pre_collection(raw, BqaConfig(min_cloud_confidence=Confidence.MEDIUM))
    )
    assert 1.0 < shares[CLOUD] < 30.0
    assert shares[CLOUD] < loose[CLOUD]
    # A plain brightness test agrees on the cover and on where clouds are.
    bright = blue > 0.15
    assert abs(shares[CLOUD] - 100.0 * bright.mean()) < 3.0
    cloud = classes == CLOUD
    assert bright[cloud].mean() > 0.6
    assert bright[classes == CLEAR].mean() < 0.05
    assert blue[cloud].mean() > blue[classes == CLEAR].mean() + 0.05
    # No open water in the clip (NIR reflectance is never dark): none decoded either.
    assert shares[WATER] < 1.0 and (nir < 0.05).mean() < 0.01
    assert shares[SHADOW] == 0.0  # BQA has no shadow flag
