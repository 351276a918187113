"""Synthetic Sentinel-2 L1C scenes in the public catalogs' layout, for tests and demos.

A scene is a known class map (clear vegetation, bare soil, water, cloud, cloud shadow, no-data
corner) on a 60 m grid, painted with typical TOA reflectance spectra and written as one uint16
JPEG 2000 per band at its native 10, 20 or 60 m grid without a nodata tag (as Earth Search's L1C
JP2s), DN = reflectance * 10000 - offset (offset -1000 from processing baseline 04.00 on), 0
outside the footprint. `sentinel2_item` describes it as an item
of an Earth Search-style `sentinel-2-l1c` collection (asset keys coastal, blue, ..., swir22).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

from stacmask.constants import (
    CLEAR,
    CLOUD,
    NODATA,
    PROP_S2_BASELINE,
    S2_NODATA,
    S2_OFFSET_BASELINE,
    S2_QUANTIFICATION_VALUE,
    S2_RADIO_ADD_OFFSET,
    SENTINEL2_BANDS,
    SHADOW,
    WATER,
)

#: Typical TOA reflectance of B01..B12 (SENTINEL2_BANDS order) per surface; the cloud and
#: vegetation spectra give s2cloudless probabilities of ~1.0 and ~0.02.
SPECTRA: Final[dict[str, tuple[float, ...]]] = {
    #            B01   B02   B03   B04   B05   B06   B07   B08   B8A   B09   B10    B11   B12
    "vegetation": (0.12, 0.09, 0.08, 0.05, 0.10, 0.22, 0.28, 0.30, 0.32, 0.10, 0.002, 0.18, 0.09),
    "soil": (0.14, 0.12, 0.15, 0.18, 0.21, 0.24, 0.26, 0.26, 0.28, 0.09, 0.003, 0.32, 0.25),
    "water": (0.11, 0.08, 0.06, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01, 0.001, 0.01, 0.005),
    "cloud": (0.45, 0.45, 0.45, 0.45, 0.46, 0.47, 0.48, 0.48, 0.48, 0.20, 0.02, 0.35, 0.22),
    "shadow": (0.09, 0.05, 0.04, 0.03, 0.04, 0.07, 0.09, 0.10, 0.10, 0.03, 0.001, 0.06, 0.03),
}
CRS_CODE: Final = "EPSG:32633"
ORIGIN: Final = (399960.0, 5900040.0)  # upper-left corner, as MGRS tile 33UUV
BASE_GRID: Final = 60


@dataclass(frozen=True)
class SyntheticS2Scene:
    """A written synthetic scene: its id, band files by asset key and its 60 m truth."""

    scene_id: str
    directory: Path
    #: Band file per asset key (coastal, blue, ...).
    files: dict[str, Path]
    #: stacmask class codes on the 60 m grid (CLEAR for vegetation and soil).
    truth: NDArray[np.uint8]
    baseline: str
    acquired: datetime
    transform60: Affine


def truth_layout(size: int) -> tuple[NDArray[np.uint8], NDArray[np.str_]]:
    """Class codes and surface names of a size x size 60 m scene.

    Vegetation with a soil strip and a lake; a round cloud in the upper right with its shadow
    shifted down-left; a no-data triangle in the lower-left corner.
    """
    rows, cols = np.mgrid[0:size, 0:size]
    surface = np.full((size, size), "vegetation", dtype="<U10")
    surface[:, : size // 5] = "soil"
    lake = (rows - 0.7 * size) ** 2 + (cols - 0.65 * size) ** 2 < (0.12 * size) ** 2
    surface[lake] = "water"
    cy, cx, r = 0.3 * size, 0.62 * size, 0.17 * size
    cloud = (rows - cy) ** 2 + (cols - cx) ** 2 < r**2
    dy, dx = int(0.22 * size), -int(0.22 * size)
    shadow = (rows - cy - dy) ** 2 + (cols - cx - dx) ** 2 < r**2
    shadow &= ~cloud & ~lake
    surface[shadow] = "shadow"
    surface[cloud] = "cloud"
    truth = np.full((size, size), CLEAR, dtype=np.uint8)
    truth[lake] = WATER
    truth[shadow] = SHADOW
    truth[cloud] = CLOUD
    nodata = rows - cols > 0.75 * size
    truth[nodata] = NODATA
    surface[nodata] = ""
    return truth, surface


def _dn_offset(baseline: str) -> float:
    return S2_RADIO_ADD_OFFSET if baseline >= S2_OFFSET_BASELINE else 0.0


def write_scene(
    directory: Path,
    scene_id: str = "S2B_33UUV_20230611_0_L1C",
    *,
    size: int = 40,
    baseline: str = "05.09",
    acquired: datetime | None = None,
    seed: int = 0,
    nodata_tag: bool = False,
) -> SyntheticS2Scene:
    """Write the 13 bands of a synthetic scene (size x size at 60 m) under `directory` as Earth
    Search's L1C are: lossless JPEG 2000 that say nothing about no data (DN 0 is still written
    outside the footprint). With `nodata_tag`, DEFLATE GeoTIFFs with nodata 0."""
    directory.mkdir(parents=True, exist_ok=True)
    truth, surface = truth_layout(size)
    rng = np.random.default_rng(seed)
    offset = _dn_offset(baseline)
    files: dict[str, Path] = {}
    for index, (band_id, key, gsd) in enumerate(SENTINEL2_BANDS):
        factor = BASE_GRID // gsd
        rho60 = np.zeros((size, size), dtype=np.float64)
        for name, spectrum in SPECTRA.items():
            rho60[surface == name] = spectrum[index]
        rho = np.repeat(np.repeat(rho60, factor, axis=0), factor, axis=1)
        rho *= 1.0 + 0.03 * rng.standard_normal(rho.shape)
        dn = np.clip(np.rint(rho * S2_QUANTIFICATION_VALUE - offset), 1, 65535).astype(np.uint16)
        empty = np.repeat(np.repeat(truth == NODATA, factor, axis=0), factor, axis=1)
        dn[empty] = S2_NODATA
        path = directory / f"{band_id}.{'tif' if nodata_tag else 'jp2'}"
        transform = Affine(gsd, 0.0, ORIGIN[0], 0.0, -gsd, ORIGIN[1])
        options: dict[str, Any] = (
            {"driver": "GTiff", "nodata": S2_NODATA, "compress": "deflate"}
            if nodata_tag
            else {"driver": "JP2OpenJPEG", "QUALITY": "100", "REVERSIBLE": "YES"}
        )
        with rasterio.open(
            path,
            "w",
            width=dn.shape[1],
            height=dn.shape[0],
            count=1,
            dtype="uint16",
            crs=CRS.from_string(CRS_CODE),
            transform=transform,
            **options,
        ) as dst:
            dst.write(dn, 1)
        files[key] = path
    return SyntheticS2Scene(
        scene_id=scene_id,
        directory=directory,
        files=files,
        truth=truth,
        baseline=baseline,
        acquired=acquired or datetime(2023, 6, 11, 10, 15, 59, tzinfo=timezone.utc),
        transform60=Affine(60.0, 0.0, ORIGIN[0], 0.0, -60.0, ORIGIN[1]),
    )


def sentinel2_item(
    scene: SyntheticS2Scene,
    href_of: dict[str, str],
    *,
    collection: str = "sentinel-2-l1c",
    declare_raster_scaling: bool = False,
) -> dict[str, Any]:
    """The scene as an Earth Search-style L1C item dict; `href_of` maps asset key to URL.

    With `declare_raster_scaling`, each band asset carries raster:bands scale 0.0001 and the
    baseline's offset, as Earth Search v1 items do; without, only s2:processing_baseline tells.
    """
    size = scene.truth.shape[0]
    west, north = ORIGIN
    east, south = west + size * BASE_GRID, north - size * BASE_GRID
    lon0, lat0, lon1, lat1 = _lonlat_bbox(west, south, east, north)
    offset = _dn_offset(scene.baseline) / S2_QUANTIFICATION_VALUE
    valid = scene.truth != NODATA
    cloud_cover = round(100.0 * float((scene.truth[valid] == CLOUD).mean()), 2)
    assets: dict[str, Any] = {}
    for band_id, key, gsd in SENTINEL2_BANDS:
        asset: dict[str, Any] = {
            "href": href_of[key],
            "type": "image/jp2" if href_of[key].endswith(".jp2") else "image/tiff",
            "title": f"{band_id} ({key}) - {gsd}m",
            "roles": ["data"],
            "gsd": gsd,
            "eo:bands": [{"name": band_id, "common_name": key}],
            "proj:shape": [size * BASE_GRID // gsd] * 2,
            "proj:transform": [gsd, 0.0, west, 0.0, -gsd, north],
        }
        if declare_raster_scaling:
            asset["raster:bands"] = [
                {
                    "nodata": S2_NODATA,
                    "data_type": "uint16",
                    "spatial_resolution": gsd,
                    "scale": 1.0 / S2_QUANTIFICATION_VALUE,
                    "offset": offset,
                }
            ]
        assets[key] = asset
    extensions = [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    ]
    if declare_raster_scaling:
        extensions.append("https://stac-extensions.github.io/raster/v1.1.0/schema.json")
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": extensions,
        "id": scene.scene_id,
        "collection": collection,
        "bbox": [lon0, lat0, lon1, lat1],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]],
        },
        "properties": {
            "datetime": scene.acquired.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "platform": "sentinel-2b",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": int(CRS_CODE.split(":")[1]),  # Earth Search v1 (projection 1.x)
            "view:sun_elevation": 58.2,
            "view:sun_azimuth": 152.4,
            "s2:mean_solar_zenith": 31.8,
            "s2:mean_solar_azimuth": 152.4,
            PROP_S2_BASELINE: scene.baseline,
            "s2:product_type": "S2MSI1C",
            "mgrs:utm_zone": 33,
            "mgrs:latitude_band": "U",
            "mgrs:grid_square": "UV",
        },
        "links": [],
        "assets": assets,
    }


def _lonlat_bbox(
    west: float, south: float, east: float, north: float
) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    bounds = transform_bounds(
        CRS.from_string(CRS_CODE), CRS.from_epsg(4326), west, south, east, north
    )
    west84, south84, east84, north84 = (round(v, 6) for v in bounds)
    return west84, south84, east84, north84
