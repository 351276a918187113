"""Helpers for sensors that read STAC items: asset hrefs, raster:bands, sun angles, providers."""

from __future__ import annotations

from typing import Any, Final

import pystac

from stacmask.errors import ItemError
from stacmask.sensors.inputs import BandRef, Provider

#: Source item properties every mask item keeps when present.
COMMON_PROPERTIES: Final = (
    "start_datetime",
    "end_datetime",
    "platform",
    "constellation",
    "instruments",
    "gsd",
)
#: Provider roles of the source imagery the mask item and collection carry.
SOURCE_ROLES: Final = ("producer", "licensor")


def number(value: Any) -> float | None:
    """`value` as a float when it is a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def asset_href(item: pystac.Item, key: str) -> str | None:
    """Absolute href of asset `key` of `item`, None when the item has no such asset."""
    asset = item.assets.get(key)
    if asset is None:
        return None
    return asset.get_absolute_href() or asset.href


def require_assets(item: pystac.Item, keys: dict[str, str], sensor: str, hint: str = "") -> None:
    """ItemError naming the item and every missing asset (`keys`: asset key -> what it is)."""
    missing = [f"{key!r} ({what})" for key, what in keys.items() if key not in item.assets]
    if missing:
        raise ItemError(
            f"item {item.id}: no asset {', '.join(missing)} for sensor {sensor} "
            f"(has: {', '.join(sorted(item.assets)) or 'none'}){hint}"
        )


def raster_band(item: pystac.Item, key: str) -> dict[str, Any]:
    """The first `raster:bands` entry of asset `key` ({} when it declares none)."""
    asset = item.assets.get(key)
    bands = None if asset is None else asset.extra_fields.get("raster:bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        return bands[0]
    return {}


#: raster:bands units that say a band is radiance, not reflectance (Landsat C2 L1 MSS, ...).
RADIANCE_UNITS: Final = ("watt", "w/m", "w m", "radiance")


def declared_scaling(item: pystac.Item, key: str) -> tuple[float, float] | None:
    """(scale, offset) that asset `key` declares in raster:bands, None when it declares none.

    ItemError naming the item and asset when its `unit` says radiance: every sensor here turns
    stored values into reflectance with the declared scale, which radiance is not.
    """
    band = raster_band(item, key)
    unit = str(band.get("unit", "")).lower()
    if any(word in unit for word in RADIANCE_UNITS):
        raise ItemError(
            f"item {item.id}: asset {key!r} is radiance ({unit[:60]}); stacmask reads "
            "reflectance (TOA or surface) or DN with known gains"
        )
    scale, offset = number(band.get("scale")), number(band.get("offset"))
    if scale is None and offset is None:
        return None
    return (1.0 if scale is None else scale, 0.0 if offset is None else offset)


def declared_nodata(item: pystac.Item, key: str) -> float | None:
    """The no-data value asset `key` declares in raster:bands (nan allowed), else None."""
    value = raster_band(item, key).get("nodata")
    if value == "nan":
        return float("nan")
    return number(value)


def band_ref(
    item: pystac.Item,
    name: str,
    key: str,
    scaling: tuple[float, float] = (1.0, 0.0),
    *,
    nodata: float | None = None,
    categorical: bool = False,
) -> BandRef:
    """Band `name` from asset `key`: (scale, offset) `scaling`, the asset's raster:bands nodata
    (else `nodata`); ItemError naming the item when it has no such asset."""
    href = asset_href(item, key)
    if href is None:
        raise ItemError(f"item {item.id}: no asset {key!r} ({name})")
    declared = declared_nodata(item, key)
    return BandRef(
        name,
        href,
        scale=scaling[0],
        offset=scaling[1],
        nodata=nodata if declared is None else declared,
        categorical=categorical,
    )


def sun_angles(item: pystac.Item) -> tuple[float | None, float | None]:
    """Sun elevation and azimuth in degrees from view:* (or s2:mean_solar_*); None when absent."""
    props = item.properties
    elevation = number(props.get("view:sun_elevation"))
    azimuth = number(props.get("view:sun_azimuth"))
    if elevation is None:
        zenith = number(props.get("s2:mean_solar_zenith"))
        elevation = None if zenith is None else 90.0 - zenith
    if azimuth is None:
        azimuth = number(props.get("s2:mean_solar_azimuth"))
    return elevation, azimuth


def kept_properties(
    item: pystac.Item, names: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()
) -> tuple[tuple[str, Any], ...]:
    """The COMMON_PROPERTIES, `names` and properties starting with one of `prefixes` (e.g.
    "mgrs:") that `item` has, as (name, value) pairs, so masks can be filtered as sources are."""
    wanted = (*COMMON_PROPERTIES, *names)
    return tuple(
        (name, value)
        for name, value in item.properties.items()
        if name in wanted or name.startswith(prefixes or ("\0",))
    )


def source_providers(item: pystac.Item, default: tuple[Provider, ...]) -> tuple[Provider, ...]:
    """The item's own producers and licensors (its `providers`), else the sensor's `default`."""
    kept = []
    for entry in item.properties.get("providers") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        roles = tuple(str(r) for r in entry.get("roles") or [] if r in SOURCE_ROLES)
        if roles:
            url = entry.get("url")
            kept.append(Provider(str(entry["name"]), roles, str(url) if url else None))
    return tuple(kept) or default
