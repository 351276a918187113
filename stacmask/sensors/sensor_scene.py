"""One Sentinel-2 L1C or Landsat C2 scene through the shared engine: source, method, COG, item.

The same mask COG, preview and mask item as a CBERS scene (masking.mask_scene, item.mask_item);
Sentinel-2 scenes may add the cloud probability as a second COG asset.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.constants import (
    COG_MEDIA_TYPE,
    PROBABILITY_ASSET,
    PROBABILITY_NODATA,
    PROP_PROBABILITY_THRESHOLD,
    S2CLOUDLESS_BANDS,
)
from stacmask.errors import ProfileError, StacmaskWarning
from stacmask.methods.fmask import FmaskEncoding
from stacmask.methods.landsat_qa import QaPixelConfig
from stacmask.methods.qa_pixel import QaPixelMethod
from stacmask.methods.s2cloudless import (
    S2CloudlessConfig,
    S2CloudlessMethod,
    probability_percent,
)
from stacmask.output.cog import MaskWriter
from stacmask.output.item import mask_item
from stacmask.pipeline.masking import MaskResult, mask_scene
from stacmask.reading.band_source import SceneInfo
from stacmask.reading.grid import Grid, grid_of
from stacmask.reading.warped import LandsatSource, Sentinel2Source
from stacmask.sensors.profiles import SensorProfile, band_scaling, sun_angles


@dataclass(frozen=True)
class SensorOptions:
    """Options of the Sentinel-2 and Landsat profiles (`stacmask build --profile ...`)."""

    #: s2cloudless threshold, averaging and dilation radii, working grid (S2CloudlessConfig).
    threshold: float = 0.4
    average_over: int | None = 4
    dilation_size: int | None = 2
    resolution: float = 60.0
    #: Asset key of a per-scene Fmask result in the source item, and its encoding (fmask.py).
    fmask_asset: str | None = None
    fmask_encoding: FmaskEncoding = "categorical"
    fmask_adjacent_as_cloud: bool = False
    #: Write the s2cloudless probability (uint8 percent) as a second asset.
    probability_asset: bool = True

    @property
    def s2cloudless(self) -> S2CloudlessConfig:
        """The s2cloudless configuration these options describe."""
        return S2CloudlessConfig(
            threshold=self.threshold,
            average_over=self.average_over,
            dilation_size=self.dilation_size,
            resolution=self.resolution,
        )


def scene_info(item: pystac.Item, grid: Grid) -> SceneInfo:
    """SceneInfo of a STAC-described scene on `grid` (sun angles from the item's properties)."""
    elevation, azimuth = sun_angles(item)
    return SceneInfo(
        width=grid.width,
        height=grid.height,
        transform=grid.transform,
        crs=grid.crs,
        pixel_size=grid.resolution,
        sun_elevation=elevation,
        sun_azimuth=azimuth,
        acquired=item.datetime,
        gains=(1.0, 1.0, 1.0, 1.0),
        calibration="reflectance",
    )


def _fmask_href(item: pystac.Item, options: SensorOptions) -> str | None:
    if options.fmask_asset is None:
        return None
    asset = item.assets.get(options.fmask_asset)
    if asset is None:
        warnings.warn(
            f"item {item.id}: no Fmask asset {options.fmask_asset!r}; s2cloudless alone",
            StacmaskWarning,
            stacklevel=3,
        )
        return None
    return asset.get_absolute_href() or asset.href


def _write_probability(path: Path, info: SceneInfo, probability: NDArray[np.float32]) -> None:
    """The probability as a uint8 percent COG (MaskWriter: DEFLATE, nodata 255)."""
    with MaskWriter(path, info.width, info.height, info.transform, info.crs) as writer:
        writer.write(Window(0, 0, info.width, info.height), probability_percent(probability))
        writer.finish()


def mask_sensor_scene(
    profile: SensorProfile,
    source: pystac.Item,
    item_dir: Path,
    source_href: str | None,
    options: SensorOptions | None = None,
    method: str | None = None,
) -> tuple[pystac.Item, MaskResult]:
    """Mask one scene of a sentinel2-l1c or landsat-c2 profile into `item_dir`; its mask item."""
    options = options or SensorOptions()
    method = method or profile.default_method
    if method not in profile.methods:
        raise ProfileError(
            f"method {method!r} does not apply to profile {profile.name} "
            f"(use {', '.join(profile.methods)})"
        )
    mask_path = item_dir / f"{source.id}_mask.tif"
    preview_path = item_dir / f"{source.id}_preview.png"
    rgbn = [profile.href(source, band) for band in profile.rgbn]
    rgbn_scaling = [band_scaling(profile, source, band) for band in profile.rgbn]
    if profile.scaling == "sentinel2-l1c":
        config = options.s2cloudless
        grid = grid_of(rgbn[0], config.resolution)
        info = scene_info(source, grid)
        fmask_href = _fmask_href(source, options)
        s2_method = S2CloudlessMethod(config)
        with Sentinel2Source(
            rgbn,
            rgbn_scaling,
            [profile.href(source, band) for band in S2CLOUDLESS_BANDS],
            [band_scaling(profile, source, band) for band in S2CLOUDLESS_BANDS],
            grid,
            info,
            fmask_href=fmask_href,
            fmask_encoding=options.fmask_encoding,
            fmask_adjacent_as_cloud=options.fmask_adjacent_as_cloud,
        ) as bands:
            result = mask_scene(bands, s2_method, mask_path, preview_path)
        fused = f", united with the Fmask result {options.fmask_asset}" if fmask_href else ""
        lineage = (
            f"stacmask s2cloudless method (threshold {config.threshold}, average over "
            f"{config.average_over} px, dilation {config.dilation_size} px) on the L1C bands "
            f"{', '.join(S2CLOUDLESS_BANDS)} of {source.id} resampled to {config.resolution:g} m"
            f"{fused}"
        )
    elif profile.scaling == "landsat-c2":
        qa_href = profile.href(source, "qa_pixel")
        grid = grid_of(qa_href)
        info = scene_info(source, grid)
        with LandsatSource(rgbn, rgbn_scaling, qa_href, grid, info) as bands:
            result = mask_scene(bands, QaPixelMethod(QaPixelConfig()), mask_path, preview_path)
        lineage = (
            f"stacmask qa-pixel method: the Collection 2 QA_PIXEL band of {source.id} decoded "
            "(fill, dilated cloud, cirrus, cloud, cloud shadow, snow, water bits)"
        )
    else:
        raise ProfileError(f"profile {profile.name} is processed by the CBERS pipeline")
    item = mask_item(source, result, info, mask_path, preview_path, source_href, lineage)
    if profile.scaling == "sentinel2-l1c":
        item.properties[PROP_PROBABILITY_THRESHOLD] = options.threshold
        if options.probability_asset and s2_method.probability is not None:
            path = item_dir / f"{source.id}_{PROBABILITY_ASSET}.tif"
            _write_probability(path, info, s2_method.probability)
            _add_probability_asset(item, path, info)
    return item, result


def _add_probability_asset(item: pystac.Item, path: Path, info: SceneInfo) -> None:
    from pystac.extensions.file import FileExtension
    from pystac.extensions.raster import DataType, RasterBand, RasterExtension

    from stacmask.output.item import multihash_sha256

    asset = pystac.Asset(
        href=f"./{path.name}",
        media_type=COG_MEDIA_TYPE,
        title="s2cloudless cloud probability",
        description="uint8 percent 0-100 (before averaging and dilation); 255 no data",
        roles=["data", "cloud"],
    )
    item.add_asset(PROBABILITY_ASSET, asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata=PROBABILITY_NODATA,
            data_type=DataType.UINT8,
            spatial_resolution=info.pixel_size,
            unit="percent",
        )
    ]
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.size = path.stat().st_size
    file_ext.checksum = multihash_sha256(path)
