"""Landsat quality bands (Collection 2 QA_PIXEL, pre-collection Landsat-8 BQA) to stacmask classes.

Numpy in, numpy out. Both decoders return uint8 class codes (constants.py: 0 clear, 1 water,
2 shadow, 3 snow, 4 cloud, 255 fill) composed in CLASS_PRIORITY order: shadow, cloud, snow,
water, clear.

Collection 2 QA_PIXEL (USGS Landsat 8-9 OLI/TIRS C2 Level-1 and Level-2 Data Format Control
Book, identical bits for Landsat 4-7 except cirrus):

====  ==========================  =======================================================
bits  flag                        stacmask use
====  ==========================  =======================================================
0     fill                        NODATA
1     dilated cloud               cloud when QaPixelConfig.dilated_cloud (default)
2     cirrus (high confidence)    cloud when QaPixelConfig.cirrus (default; L8-9 only)
3     cloud                       cloud
4     cloud shadow                shadow
5     snow                        snow
6     clear                       not read (it is "none of 1-5 and no dilated cloud")
7     water                       water
8-9   cloud confidence            cloud when >= min_cloud_confidence (off by default)
10-11 cloud shadow confidence     shadow when >= min_shadow_confidence (off by default)
12-13 snow/ice confidence         snow when >= min_snow_confidence (off by default)
14-15 cirrus confidence           cloud when >= min_cirrus_confidence (off by default)
====  ==========================  =======================================================

Confidence pairs: 0 none, 1 low, 2 medium, 3 high.

Pre-collection Landsat-8 BQA (USGS "Landsat 8 Quality Assessment Band", before Collection 1):
bit 0 designated fill, 1 dropped frame, 2 terrain occlusion, 3 reserved, 4-5 water confidence,
6-7 reserved (cloud shadow, never populated), 8-9 reserved (vegetation), 10-11 snow/ice
confidence, 12-13 cirrus confidence, 14-15 cloud confidence. Confidence pairs: 0 not determined,
1 no (0-33 %), 2 maybe (34-66 %), 3 yes (67-100 %). It has no cloud shadow: the decoded raster
never holds SHADOW.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from stacmask.errors import DecodeError
from stacmask.methods.classes import compose_classes


class Confidence(IntEnum):
    """Two-bit confidence levels (C2 names; pre-collection: not determined, no, maybe, yes)."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


# --- Collection 2 QA_PIXEL bit positions (DFCB) ----------------------------------------------
QA_FILL = 0
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_SNOW = 5
QA_CLEAR = 6
QA_WATER = 7
QA_CLOUD_CONFIDENCE = 8
QA_SHADOW_CONFIDENCE = 10
QA_SNOW_CONFIDENCE = 12
QA_CIRRUS_CONFIDENCE = 14

# --- Pre-collection Landsat-8 BQA bit positions -----------------------------------------------
BQA_FILL = 0
BQA_WATER_CONFIDENCE = 4
BQA_SNOW_CONFIDENCE = 10
BQA_CIRRUS_CONFIDENCE = 12
BQA_CLOUD_CONFIDENCE = 14


@dataclass(frozen=True)
class QaPixelConfig:
    """Which Collection 2 QA_PIXEL flags make a class.

    Defaults read the decision bits (1-5, 7) and count dilated cloud and high-confidence cirrus
    as cloud, the flags users commonly mask; the confidence pairs are off.
    """

    #: Count the dilated-cloud bit (1) as cloud (USGS unsets the clear bit for it).
    dilated_cloud: bool = True
    #: Count the high-confidence cirrus bit (2) as cloud (Landsat 8-9 only; 0 elsewhere).
    cirrus: bool = True
    #: Also count pixels whose confidence pair reaches this level; None reads the flag bit only.
    min_cloud_confidence: Confidence | None = None
    min_shadow_confidence: Confidence | None = None
    min_snow_confidence: Confidence | None = None
    min_cirrus_confidence: Confidence | None = None


@dataclass(frozen=True)
class BqaConfig:
    """Confidence levels at which pre-collection BQA pairs make a class ("yes" by default)."""

    min_cloud_confidence: Confidence = Confidence.HIGH
    #: Cirrus counts as cloud from this level; None (default) ignores the cirrus pair: on the real
    #: clip in ../shared/data/landsat8-cloudy it says "yes" for 31 % of the pixels, where the
    #: cloud pair says 6 % and the scene's CLOUD_COVER is 11 %.
    min_cirrus_confidence: Confidence | None = None
    min_snow_confidence: Confidence = Confidence.HIGH
    min_water_confidence: Confidence = Confidence.HIGH


def _as_qa(qa: NDArray[np.integer], name: str) -> NDArray[np.uint16]:
    if not np.issubdtype(qa.dtype, np.integer):
        raise DecodeError(f"{name} must hold integers (uint16 bit flags), got {qa.dtype}")
    if qa.ndim != 2:
        raise DecodeError(f"{name} must be one 2-D band, got shape {qa.shape}")
    if qa.size and (int(qa.min()) < 0 or int(qa.max()) > 0xFFFF):
        raise DecodeError(f"{name} values must fit 16 bits, got {qa.min()}..{qa.max()}")
    return qa.astype(np.uint16, copy=False)


def bit_flag(qa: NDArray[np.uint16], bit: int) -> NDArray[np.bool_]:
    """True where bit `bit` of `qa` is set."""
    return np.not_equal(np.bitwise_and(qa, np.uint16(1 << bit)), 0)


def bit_pair(qa: NDArray[np.uint16], offset: int) -> NDArray[np.uint16]:
    """The two-bit field that starts at bit `offset` (values 0-3)."""
    return (qa >> np.uint16(offset)) & np.uint16(0b11)


def _at_least(
    qa: NDArray[np.uint16], offset: int, level: Confidence | None
) -> NDArray[np.bool_] | None:
    if level is None:
        return None
    if level == Confidence.NONE:
        raise DecodeError("a minimum confidence of NONE would select every pixel; use LOW..HIGH")
    return np.greater_equal(bit_pair(qa, offset), int(level))


def _union(*layers: NDArray[np.bool_] | None) -> NDArray[np.bool_]:
    present = [layer for layer in layers if layer is not None]
    out = present[0].copy()
    for layer in present[1:]:
        out |= layer
    return out


def decode_qa_pixel(
    qa: NDArray[np.integer], config: QaPixelConfig | None = None
) -> NDArray[np.uint8]:
    """Collection 2 QA_PIXEL to class codes (table in the module docstring)."""
    config = config or QaPixelConfig()
    qa16 = _as_qa(qa, "QA_PIXEL")
    cloud = _union(
        bit_flag(qa16, QA_CLOUD),
        bit_flag(qa16, QA_DILATED_CLOUD) if config.dilated_cloud else None,
        bit_flag(qa16, QA_CIRRUS) if config.cirrus else None,
        _at_least(qa16, QA_CLOUD_CONFIDENCE, config.min_cloud_confidence),
        _at_least(qa16, QA_CIRRUS_CONFIDENCE, config.min_cirrus_confidence),
    )
    shadow = _union(
        bit_flag(qa16, QA_CLOUD_SHADOW),
        _at_least(qa16, QA_SHADOW_CONFIDENCE, config.min_shadow_confidence),
    )
    snow = _union(
        bit_flag(qa16, QA_SNOW),
        _at_least(qa16, QA_SNOW_CONFIDENCE, config.min_snow_confidence),
    )
    return compose_classes(
        ~bit_flag(qa16, QA_FILL),
        cloud=cloud,
        shadow=shadow,
        snow=snow,
        water=bit_flag(qa16, QA_WATER),
    )


def decode_bqa_pre_collection(
    bqa: NDArray[np.integer], config: BqaConfig | None = None
) -> NDArray[np.uint8]:
    """Pre-collection Landsat-8 BQA to class codes (no shadow; table in the module docstring)."""
    config = config or BqaConfig()
    q = _as_qa(bqa, "BQA")
    levels = (
        config.min_cloud_confidence,
        config.min_snow_confidence,
        config.min_water_confidence,
        config.min_cirrus_confidence,
    )
    if Confidence.NONE in levels:
        raise DecodeError("a minimum confidence of NONE would select every pixel; use LOW..HIGH")
    cloud = _union(
        np.greater_equal(bit_pair(q, BQA_CLOUD_CONFIDENCE), int(config.min_cloud_confidence)),
        _at_least(q, BQA_CIRRUS_CONFIDENCE, config.min_cirrus_confidence),
    )
    return compose_classes(
        ~bit_flag(q, BQA_FILL),
        cloud=cloud,
        snow=np.greater_equal(bit_pair(q, BQA_SNOW_CONFIDENCE), int(config.min_snow_confidence)),
        water=np.greater_equal(bit_pair(q, BQA_WATER_CONFIDENCE), int(config.min_water_confidence)),
    )
