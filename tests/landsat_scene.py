"""A synthetic Landsat Collection 2 Level-2 scene (QA_PIXEL + blue, green, red, nir08 at 30 m)
and its item in the Planetary Computer / USGS layout, for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, SNOW, WATER

#: Published Landsat 8-9 C2 QA_PIXEL values per class (dilated cloud: 21824 - clear + dilated).
QA_VALUE = {CLEAR: 21824, WATER: 21952, SHADOW: 23888, SNOW: 30048, CLOUD: 22280, NODATA: 1}
DILATED = 21824 - 64 + 2
#: Surface reflectance of blue, green, red, nir08 per class.
SR = {
    CLEAR: (0.04, 0.07, 0.05, 0.30),
    WATER: (0.05, 0.06, 0.04, 0.02),
    SHADOW: (0.02, 0.03, 0.02, 0.08),
    SNOW: (0.80, 0.80, 0.78, 0.70),
    CLOUD: (0.45, 0.45, 0.46, 0.48),
}
TRANSFORM = Affine(30.0, 0.0, 600000.0, 0.0, -30.0, 4600020.0)


def landsat_truth(size: int = 64) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size]
    truth = np.full((size, size), CLEAR, dtype=np.uint8)
    truth[rows > 0.75 * size] = WATER
    truth[(rows < 0.2 * size) & (cols < 0.3 * size)] = SNOW
    cloud = (rows - 0.4 * size) ** 2 + (cols - 0.6 * size) ** 2 < (0.15 * size) ** 2
    shadow = (rows - 0.55 * size) ** 2 + (cols - 0.45 * size) ** 2 < (0.15 * size) ** 2
    truth[shadow & ~cloud] = SHADOW
    truth[cloud] = CLOUD
    truth[cols - rows > 0.8 * size] = NODATA
    return truth


def write_landsat_scene(directory: Path, truth: np.ndarray) -> dict[str, Path]:
    """QA_PIXEL (one dilated ring around the cloud) and four L2 SR bands, nodata 0."""
    directory.mkdir(parents=True, exist_ok=True)
    qa = np.zeros(truth.shape, dtype=np.uint16)
    for code, value in QA_VALUE.items():
        qa[truth == code] = value
    profile = {
        "driver": "GTiff",
        "width": truth.shape[1],
        "height": truth.shape[0],
        "count": 1,
        "crs": "EPSG:32618",
        "transform": TRANSFORM,
    }
    files = {}
    with rasterio.open(directory / "QA_PIXEL.TIF", "w", dtype="uint16", nodata=1, **profile) as dst:
        dst.write(qa, 1)
    files["qa_pixel"] = directory / "QA_PIXEL.TIF"
    for index, key in enumerate(("blue", "green", "red", "nir08")):
        rho = np.zeros(truth.shape)
        for code, values in SR.items():
            rho[truth == code] = values[index]
        dn = np.rint((rho + 0.2) / 2.75e-5).astype(np.uint16)
        dn[truth == NODATA] = 0
        path = directory / f"SR_{key}.TIF"
        with rasterio.open(path, "w", dtype="uint16", nodata=0, **profile) as dst:
            dst.write(dn, 1)
        files[key] = path
    return files


def landsat_item(scene_id: str, hrefs: dict[str, str], size: int) -> dict[str, Any]:
    bbox = [-74.0, 41.3, -73.97, 41.32]
    assets = {
        key: {
            "href": href,
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"] if key != "qa_pixel" else ["cloud", "cloud-shadow", "snow-ice"],
            "proj:shape": [size, size],
            "proj:transform": list(TRANSFORM)[:6],
        }
        for key, href in hrefs.items()
    }
    for key in ("blue", "green", "red", "nir08"):
        assets[key]["raster:bands"] = [
            {"nodata": 0, "data_type": "uint16", "scale": 2.75e-5, "offset": -0.2}
        ]
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": scene_id,
        "collection": "landsat-c2-l2",
        "bbox": bbox,
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [
                    [bbox[0], bbox[1]],
                    [bbox[2], bbox[1]],
                    [bbox[2], bbox[3]],
                    [bbox[0], bbox[3]],
                    [bbox[0], bbox[1]],
                ]
            ],
        },
        "properties": {
            "datetime": "2023-07-02T15:40:12.345000Z",
            "platform": "landsat-9",
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": 12.0,
            "view:sun_elevation": 61.5,
            "view:sun_azimuth": 128.3,
            "landsat:correction": "L2SP",
        },
        "links": [],
        "assets": assets,
    }
