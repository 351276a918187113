"""Sensor profiles: which asset keys hold which bands, how to scale them, where metadata comes
from, and which mask methods apply. A frozen registry keyed by profile name.

==============  ====================  =====================================================
profile         source collection     bands (asset keys)                    method(s)
==============  ====================  =====================================================
cbers4a-wpm     CB4A-WPM-L4-DN-1      BAND1..BAND4 + BAND1_xml (INPE XML)   notebook (default)
sentinel2-l1c   sentinel-2-l1c        coastal, blue, ..., cirrus, swir16,   s2cloudless
                                      swir22 (Earth Search keys)
landsat-c2      landsat-c2-l2         blue, green, red, nir08, qa_pixel     qa-pixel
==============  ====================  =====================================================

Band scaling (DN to reflectance): an asset's own raster:bands scale/offset wins when declared;
otherwise the profile's rule (band_scaling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import pystac

from stacmask.constants import (
    BAND_KEY_PRESETS,
    DEFAULT_BAND_KEYS,
    DEFAULT_COLLECTION,
    LANDSAT_QA_PIXEL_ASSET,
    PROP_EARTHSEARCH_OFFSET_APPLIED,
    PROP_S2_BASELINE,
    S2_OFFSET_BASELINE,
    S2_QUANTIFICATION_VALUE,
    S2_RADIO_ADD_OFFSET,
    SENTINEL2_BANDS,
)
from stacmask.errors import ItemError, ProfileError

MetadataSource = Literal["inpe-xml", "stac-properties"]
ScalingRule = Literal["cbers-gains", "sentinel2-l1c", "landsat-c2"]

#: Landsat Collection 2 DN to reflectance (USGS C2 product guides): Level-1 TOA reflectance
#: before the sun-angle correction, and Level-2 surface reflectance.
LANDSAT_L1_SCALING: Final = (2.0e-5, -0.1)
LANDSAT_L2_SCALING: Final = (2.75e-5, -0.2)


@dataclass(frozen=True)
class SensorProfile:
    """How stacmask reads one sensor's items."""

    name: str
    title: str
    #: Source collection searched when none is given.
    default_collection: str
    #: (band name, default asset key) of every band the profile's methods may read.
    assets: tuple[tuple[str, str], ...]
    #: Band names of the blue, green, red and NIR bands (statistics and preview).
    rgbn: tuple[str, str, str, str]
    #: Where sun angles, gains and acquisition time come from.
    metadata: MetadataSource
    #: Asset key of a metadata document (INPE XML), when the profile reads one.
    metadata_asset: str | None
    scaling: ScalingRule
    #: Mask methods that apply; the first is the default.
    methods: tuple[str, ...]
    #: Keywords of the output collection.
    keywords: tuple[str, ...]

    @property
    def default_method(self) -> str:
        """The method used when none is asked for."""
        return self.methods[0]

    def asset_key(self, band: str) -> str:
        """Default asset key of band `band`."""
        for name, key in self.assets:
            if name == band:
                return key
        raise ProfileError(f"profile {self.name} has no band {band!r}")

    def href(self, item: pystac.Item, band: str) -> str:
        """Absolute href of band `band` in `item`; ItemError naming the missing asset key."""
        key = self.asset_key(band)
        asset = item.assets.get(key)
        if asset is None:
            raise ItemError(
                f"item {item.id}: no asset {key!r} ({band}) for profile {self.name} "
                f"(has: {', '.join(sorted(item.assets)) or 'none'})"
            )
        return asset.get_absolute_href() or asset.href


_CBERS_KEYS = BAND_KEY_PRESETS[DEFAULT_BAND_KEYS]

PROFILES: Final[dict[str, SensorProfile]] = {
    "cbers4a-wpm": SensorProfile(
        name="cbers4a-wpm",
        title="CBERS-4A WPM L4 DN (INPE Brazil Data Cube)",
        default_collection=DEFAULT_COLLECTION,
        assets=(
            ("blue", _CBERS_KEYS.blue),
            ("green", _CBERS_KEYS.green),
            ("red", _CBERS_KEYS.red),
            ("nir", _CBERS_KEYS.nir),
        ),
        rgbn=("blue", "green", "red", "nir"),
        metadata="inpe-xml",
        metadata_asset=_CBERS_KEYS.metadata,
        scaling="cbers-gains",
        methods=("notebook",),
        keywords=("cloud mask", "cloud shadow", "water", "CBERS-4A", "WPM"),
    ),
    "sentinel2-l1c": SensorProfile(
        name="sentinel2-l1c",
        title="Sentinel-2 MSI Level-1C (Earth Search-style asset keys)",
        default_collection="sentinel-2-l1c",
        assets=tuple((band_id, key) for band_id, key, _ in SENTINEL2_BANDS),
        rgbn=("B02", "B03", "B04", "B08"),
        metadata="stac-properties",
        metadata_asset=None,
        scaling="sentinel2-l1c",
        methods=("s2cloudless",),
        keywords=("cloud mask", "cloud shadow", "Sentinel-2", "MSI", "s2cloudless"),
    ),
    "landsat-c2": SensorProfile(
        name="landsat-c2",
        title="Landsat Collection 2 Level-1 or Level-2 (USGS / Planetary Computer keys)",
        default_collection="landsat-c2-l2",
        assets=(
            ("blue", "blue"),
            ("green", "green"),
            ("red", "red"),
            ("nir", "nir08"),
            ("qa_pixel", LANDSAT_QA_PIXEL_ASSET),
        ),
        rgbn=("blue", "green", "red", "nir"),
        metadata="stac-properties",
        metadata_asset=None,
        scaling="landsat-c2",
        methods=("qa-pixel",),
        keywords=("cloud mask", "cloud shadow", "water", "snow", "Landsat", "QA_PIXEL"),
    ),
}
DEFAULT_PROFILE: Final = "cbers4a-wpm"


def get_profile(name: str) -> SensorProfile:
    """The profile called `name`; ProfileError naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ProfileError(f"unknown sensor profile {name!r}; known profiles: {known}") from None


# --- metadata from STAC properties ------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def sun_angles(item: pystac.Item) -> tuple[float | None, float | None]:
    """Sun elevation and azimuth in degrees from view:* (or s2:mean_solar_*); None when absent."""
    props = item.properties
    elevation = _number(props.get("view:sun_elevation"))
    azimuth = _number(props.get("view:sun_azimuth"))
    if elevation is None:
        zenith = _number(props.get("s2:mean_solar_zenith"))
        elevation = None if zenith is None else 90.0 - zenith
    if azimuth is None:
        azimuth = _number(props.get("s2:mean_solar_azimuth"))
    return elevation, azimuth


def _declared_scaling(asset: pystac.Asset) -> tuple[float, float] | None:
    bands = asset.extra_fields.get("raster:bands")
    if not isinstance(bands, list) or not bands or not isinstance(bands[0], dict):
        return None
    scale, offset = _number(bands[0].get("scale")), _number(bands[0].get("offset"))
    if scale is None and offset is None:
        return None
    return (1.0 if scale is None else scale, 0.0 if offset is None else offset)


def sentinel2_offset(item: pystac.Item) -> float:
    """Reflectance offset of an L1C item: -0.1 from processing baseline 04.00 on, else 0.

    An item that says the provider already removed the offset
    (earthsearch:boa_offset_applied true) gets 0; an item with no baseline gets 0.
    """
    props = item.properties
    if props.get(PROP_EARTHSEARCH_OFFSET_APPLIED) is True:
        return 0.0
    baseline = props.get(PROP_S2_BASELINE)
    if not isinstance(baseline, str) or not baseline:
        return 0.0
    try:
        newer = tuple(int(p) for p in baseline.split(".")) >= tuple(
            int(p) for p in S2_OFFSET_BASELINE.split(".")
        )
    except ValueError as exc:
        raise ItemError(f"item {item.id}: unreadable {PROP_S2_BASELINE} {baseline!r}") from exc
    return S2_RADIO_ADD_OFFSET / S2_QUANTIFICATION_VALUE if newer else 0.0


def band_scaling(profile: SensorProfile, item: pystac.Item, band: str) -> tuple[float, float]:
    """(scale, offset) with reflectance = DN * scale + offset for band `band` of `item`."""
    asset = item.assets.get(profile.asset_key(band))
    if asset is not None:
        declared = _declared_scaling(asset)
        if declared is not None:
            return declared
    if profile.scaling == "sentinel2-l1c":
        return (1.0 / S2_QUANTIFICATION_VALUE, sentinel2_offset(item))
    if profile.scaling == "landsat-c2":
        level2 = "L2" in str(item.properties.get("landsat:correction", "")) or "-l2" in str(
            item.collection_id or ""
        )
        return LANDSAT_L2_SCALING if level2 else LANDSAT_L1_SCALING
    raise ProfileError(
        f"profile {profile.name} scales bands with calibration gains from its metadata, "
        "not per asset"
    )
