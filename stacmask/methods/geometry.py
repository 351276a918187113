"""Ground size of a scene's pixels in metres, whatever its CRS (methods measure in metres).

A projected CRS gives its pixel size in its linear unit (metres for UTM); a geographic CRS
(EPSG:4326, as Sentinel Hub and many users deliver) gives it in degrees, and a method that took
degrees for metres would find no cloud object big enough and search shadows over thousands of
"metres" of cells (issue 12, bug 2). Here a geographic pixel is measured on the WGS 84
ellipsoid at the scene centre: a degree of latitude is M(lat) pi / 180 metres and a degree of
longitude N(lat) cos(lat) pi / 180, with M and N the meridional and prime-vertical radii of
curvature (the first-order geodesic length, exact for lengths as small as a pixel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rasterio.errors import CRSError

from stacmask.reading.band_source import SceneInfo

#: WGS 84 semi-major axis (m) and first eccentricity squared (NIMA TR8350.2).
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3


@dataclass(frozen=True)
class PixelGeometry:
    """Ground length (m) of one column step (across) and one row step (down) of the grid."""

    across: float
    down: float

    @property
    def size(self) -> float:
        """The side of a square pixel of the same area (m): what distances and areas use."""
        return math.sqrt(self.across * self.down)

    @property
    def area(self) -> float:
        """Ground area of one pixel (m^2)."""
        return self.across * self.down


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at `latitude` on WGS 84."""
    phi = math.radians(latitude)
    w = 1.0 - WGS84_E2 * math.sin(phi) ** 2
    meridional = WGS84_A * (1.0 - WGS84_E2) / w**1.5
    prime_vertical = WGS84_A / math.sqrt(w)
    return (
        math.radians(1.0) * prime_vertical * math.cos(phi),
        math.radians(1.0) * meridional,
    )


def pixel_geometry(info: SceneInfo) -> PixelGeometry:
    """Ground size of `info`'s pixels: from a geographic CRS at the scene centre, from a
    projected CRS in its linear unit, and `info.pixel_size` when there is no CRS."""
    t, crs = info.transform, info.crs
    if crs is None:
        return PixelGeometry(info.pixel_size, info.pixel_size)
    if crs.is_geographic:
        _, lat = t * (info.width / 2.0, info.height / 2.0)
        per_lon, per_lat = metres_per_degree(max(-89.9, min(89.9, lat)))
        across = math.hypot(t.a * per_lon, t.d * per_lat)
        down = math.hypot(t.b * per_lon, t.e * per_lat)
        return PixelGeometry(across, down)
    try:
        factor = crs.linear_units_factor[1] if crs.is_projected else 1.0
    except CRSError:  # no linear unit known: take the grid as metres
        factor = 1.0
    return PixelGeometry(math.hypot(t.a, t.d) * factor, math.hypot(t.b, t.e) * factor)
