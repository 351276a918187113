"""Small raster helpers for tests: write DN bands as tiled GeoTIFFs, make real-data DN scenes."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray

from stacmask.constants import DEFAULT_GAINS, ESUN_WPM
from stacmask.demo.samples import write_sample_scene
from stacmask.methods import MaskMethod
from stacmask.reading.band_source import ArrayBandSource, SceneInfo
from stacmask.reading.rasters import RasterBandSource
from stacmask.sensors.cbers4a.radiometry import Radiometry
from stacmask.sensors.local import band_files_inputs
from tests.conftest import shared_path

TRANSFORM = Affine(8.0, 0.0, 500_000.0, 0.0, -8.0, 8_500_000.0)


def write_bands(
    folder: Path,
    dn: NDArray[np.generic],
    *,
    name: str = "scene",
    blocksize: int = 256,
    nodata: float | None = 0,
    transform: Affine = TRANSFORM,
    epsg: int = 32723,
) -> list[Path]:
    """Write a (4, H, W) array as BAND1..BAND4 single-band tiled DEFLATE GeoTIFFs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for b in range(dn.shape[0]):
        path = folder / f"{name}_BAND{b + 1}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=dn.shape[2],
            height=dn.shape[1],
            count=1,
            dtype=dn.dtype,
            crs=f"EPSG:{epsg}",
            transform=transform,
            nodata=nodata,
            tiled=True,
            blockxsize=blocksize,
            blockysize=blocksize,
            compress="deflate",
        ) as dst:
            dst.write(dn[b], 1)
        paths.append(path)
    return paths


def scene_info(
    radiometry: Radiometry, width: int, height: int, transform: Affine = TRANSFORM
) -> SceneInfo:
    """SceneInfo of a `width` x `height` WPM scene with `radiometry` (for ArrayBandSource)."""
    return SceneInfo(
        width,
        height,
        transform,
        None,
        abs(transform.a),
        radiometry.sun_elevation,
        radiometry.sun_azimuth,
        radiometry.acquired,
        radiometry.gains,
        radiometry.calibration,
    )


def rotated_footprint(height: int, width: int, angle_deg: float = 9.0) -> NDArray[np.bool_]:
    """A rotated rectangle inside the raster, like the data area of a real L4 scene."""
    rows, cols = np.mgrid[0:height, 0:width]
    y = (rows - height / 2) / (height / 2)
    x = (cols - width / 2) / (width / 2)
    a = np.radians(angle_deg)
    u = x * np.cos(a) + y * np.sin(a)
    v = -x * np.sin(a) + y * np.cos(a)
    inside: NDArray[np.bool_] = (np.abs(u) < 0.86) & (np.abs(v) < 0.86)
    return inside


def dn_from_reflectance(reflectance: NDArray[np.floating]) -> NDArray[np.uint16]:
    """WPM DN from TOA reflectance, no-data corners (DN 0) around a rotated footprint.

    The inverse of stacmask's calibration with the default gains and no sun angles (sun at
    zenith, d = 1 AU): DN = rho * ESUN / (pi * gain), so a build reads the reflectance back.
    """
    factors = np.array([e / (np.pi * g) for e, g in zip(ESUN_WPM, DEFAULT_GAINS, strict=True)])[
        :, None, None
    ]
    dn = np.clip(np.round(reflectance * factors), 1, 4095).astype(np.uint16)
    inside = rotated_footprint(dn.shape[1], dn.shape[2])
    dn[:, ~inside] = 0
    return dn


def landsat8_clip() -> tuple[ArrayBandSource, NDArray[np.uint8]]:
    """The real Landsat-8 clip as TOA reflectance of blue, green, red, nir (its MTL rescaling
    and sun angles), and its BQA cloud confidence (bits 14-15: 0 none ... 3 high)."""
    folder = "data/landsat8-cloudy"
    dn = np.stack(
        [rasterio.open(shared_path(f"{folder}/l8_B{b}.tif")).read(1) for b in (2, 3, 4, 5)]
    )
    mtl = shared_path(f"{folder}/l8_MTL.txt").read_text()
    elevation = float(mtl.split("SUN_ELEVATION = ")[1].split()[0])
    azimuth = float(mtl.split("SUN_AZIMUTH = ")[1].split()[0])
    rho = (dn.astype(np.float32) * 2e-5 - 0.1) / math.sin(math.radians(elevation))
    with rasterio.open(shared_path(f"{folder}/l8_B2.tif")) as src:
        info = SceneInfo(
            src.width,
            src.height,
            src.transform,
            src.crs,
            30.0,
            elevation,
            azimuth,
            None,
            (1.0, 1.0, 1.0, 1.0),
            "reflectance",
        )
    with rasterio.open(shared_path(f"{folder}/l8_BQA.tif")) as src:
        confidence: NDArray[np.uint8] = ((src.read(1) >> 14) & 3).astype(np.uint8)
    return ArrayBandSource(rho, info, reflectance_scale=1.0), confidence


#: When the synthetic sweep scenes are acquired (their sun angles follow from it).
SWEEP_DATE = datetime(2021, 1, 10, 13, 30, tzinfo=timezone.utc)


def mask_synthetic_scene(
    folder: Path, fraction: float, method: MaskMethod, seed: int = 11
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Class codes of `method` on a 512 x 512 synthetic WPM scene with `fraction` cloud (read
    from its band files with the scene's sun angles and default gains), and its truth."""
    scene = write_sample_scene(
        folder,
        "CBERS_4A_WPM_20210110_221_116_L4",
        width=512,
        height=512,
        seed=seed,
        cloud_fraction=fraction,
        acquired=SWEEP_DATE,
    )
    radiometry = Radiometry(
        DEFAULT_GAINS, "default", scene.sun_elevation, scene.sun_azimuth, SWEEP_DATE
    )
    hrefs = [str(scene.bands[f"BAND{b}"]) for b in range(1, 5)]
    with RasterBandSource(
        band_files_inputs(hrefs, radiometry=radiometry), cache_bands=not method.reads_bands_once
    ) as source:
        classes = np.concatenate([s[1] for s in method.classify(source)])
    with rasterio.open(scene.truth) as src:
        truth: NDArray[np.uint8] = src.read(1)
    return classes, truth
