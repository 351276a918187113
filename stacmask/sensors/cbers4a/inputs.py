"""A scene's inputs: band hrefs from its STAC item, gains and sun angles from its XML."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pystac
from affine import Affine
from rasterio.crs import CRS

from stacmask.constants import DEFAULT_GAINS, BandKeys
from stacmask.errors import ItemError, StacmaskWarning
from stacmask.reading.band_source import Calibration, SceneInfo


@dataclass(frozen=True)
class Radiometry:
    """Gains and sun geometry of a scene, and where the gains came from."""

    gains: tuple[float, float, float, float]
    calibration: Calibration
    sun_elevation: float | None
    sun_azimuth: float | None
    acquired: datetime | None

    def scene_info(self) -> Callable[[int, int, Affine, CRS | None], SceneInfo]:
        """A SceneInfo factory for RasterBandSource (the raster gives size and grid)."""

        def make(width: int, height: int, transform: Affine, crs: CRS | None) -> SceneInfo:
            return SceneInfo(
                width=width,
                height=height,
                transform=transform,
                crs=crs,
                pixel_size=abs(transform.a),
                sun_elevation=self.sun_elevation,
                sun_azimuth=self.sun_azimuth,
                acquired=self.acquired,
                gains=self.gains,
                calibration=self.calibration,
            )

        return make


def band_hrefs(item: pystac.Item, keys: BandKeys) -> list[str]:
    """Absolute hrefs of the blue, green, red and NIR assets; ItemError naming missing keys."""
    missing = [key for key in keys.bands if key not in item.assets]
    if missing:
        raise ItemError(
            f"item {item.id}: missing band asset(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(item.assets)) or 'none'}); see --band-keys"
        )
    return [item.assets[key].get_absolute_href() or item.assets[key].href for key in keys.bands]


def metadata_href(item: pystac.Item, keys: BandKeys) -> str | None:
    """Href of the scene's XML metadata asset, or None when the layout or item has none."""
    if keys.metadata is None or keys.metadata not in item.assets:
        return None
    asset = item.assets[keys.metadata]
    return asset.get_absolute_href() or asset.href


def read_radiometry(
    xml_href: str | None, acquired: datetime | None, timeout: float = 60.0
) -> Radiometry:
    """Gains and sun angles from the XML at `xml_href`; the default gains when it has none."""
    if xml_href is None:
        warnings.warn(
            "no XML metadata: using the default gains and no sun angles",
            StacmaskWarning,
            stacklevel=2,
        )
        return Radiometry(DEFAULT_GAINS, "default", None, None, acquired)
    from stacmask.sensors.cbers4a.xml import SceneMetadata

    meta = SceneMetadata.read(xml_href, timeout=timeout)
    gains, source = meta.calibration_gains()
    return Radiometry(
        gains=gains,
        calibration=source,
        sun_elevation=meta.sun_elevation,
        sun_azimuth=meta.sun_azimuth,
        acquired=meta.acquired or acquired,
    )
