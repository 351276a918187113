"""STAC objects of the product: the mask item of a scene and the collection that holds them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.eo import EOExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension
from pystac.extensions.view import ViewExtension
from pystac.utils import datetime_to_str

from stacmask import __version__
from stacmask.constants import (
    CLASS_NAMES,
    COG_MEDIA_TYPE,
    MASK_ASSET,
    NODATA,
    PREVIEW_ASSET,
    PROCESSING_SCHEMA,
    PROP_BAND_MISMATCH,
    PROP_CALIBRATION,
    PROP_METHOD,
    PROP_SHADOW_COVER,
    PROP_VALID_PIXELS,
    PROP_WATER_COVER,
    STACMASK_URL,
)
from stacmask.methods import LayerSpec, MaskMethod
from stacmask.pipeline.masking import MaskResult
from stacmask.reading.band_source import SceneInfo
from stacmask.sensors.inputs import SceneInputs


def mask_classes() -> list[Classification]:
    """classification:classes of the mask asset, one per code the mask can hold."""
    return [
        Classification.create(value=code, name=name, description=text, color_hint=colour)
        for code, (name, text, colour) in CLASS_NAMES.items()
    ]


def multihash_sha256(path: Path) -> str:
    """file:checksum of a file: a SHA2-256 multihash in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "1220" + digest.hexdigest()


def mask_item(
    source: pystac.Item,
    inputs: SceneInputs,
    method: MaskMethod,
    result: MaskResult,
    info: SceneInfo,
    mask_path: Path,
    preview_path: Path | None,
    source_href: str | None,
) -> pystac.Item:
    """The mask item of `source`: same id, geometry, bbox and datetimes, the source properties
    its sensor keeps (`inputs`), covers, the method's settings, layers and provenance."""
    now = datetime_to_str(datetime.now(timezone.utc))
    properties: dict[str, Any] = dict(inputs.properties)
    properties.update(method.item_properties())
    properties.update(
        {
            PROP_SHADOW_COVER: result.shadow_cover,
            PROP_WATER_COVER: result.water_cover,
            PROP_VALID_PIXELS: result.valid_pixels,
            PROP_METHOD: result.method,
            PROP_BAND_MISMATCH: result.band_mismatch,
            PROP_CALIBRATION: result.calibration,
            "processing:software": {"stacmask": __version__},
            "processing:lineage": f"stacmask {method.describe()} on {inputs.lineage}",
            "created": now,
            "updated": now,
        }
    )
    if inputs.keywords:
        properties["keywords"] = list(inputs.keywords)
    item = pystac.Item(
        id=source.id,
        geometry=source.geometry,
        bbox=source.bbox,
        datetime=source.datetime,
        properties=properties,
        start_datetime=source.common_metadata.start_datetime,
        end_datetime=source.common_metadata.end_datetime,
    )
    item.stac_extensions.append(PROCESSING_SCHEMA)
    item.common_metadata.providers = [
        *(pystac.Provider.from_dict(asdict(p)) for p in inputs.providers),
        processor_provider(),
    ]
    EOExtension.ext(item, add_if_missing=True).cloud_cover = result.cloud_cover
    if info.sun_elevation is not None or info.sun_azimuth is not None:
        view = ViewExtension.ext(item, add_if_missing=True)
        view.sun_elevation = info.sun_elevation
        view.sun_azimuth = info.sun_azimuth
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    epsg = info.crs.to_epsg() if info.crs is not None else None
    if epsg is not None:
        proj.code = f"EPSG:{epsg}"
    elif info.crs is not None:
        proj.wkt2 = info.crs.to_wkt()
    proj.shape = [info.height, info.width]
    proj.transform = list(info.transform)[:6]
    t = info.transform
    xs = (t.c, t.c + t.a * info.width)
    ys = (t.f, t.f + t.e * info.height)
    proj.bbox = [min(xs), min(ys), max(xs), max(ys)]

    asset = pystac.Asset(
        href=f"./{mask_path.name}",
        media_type=COG_MEDIA_TYPE,
        title="Cloud, cloud-shadow and water mask",
        description="uint8 class codes: 0 clear, 1 water, 2 cloud shadow, 3 snow, 4 cloud, "
        "255 no data",
        roles=["data", "cloud", "cloud-shadow", "water-mask"],
    )
    item.add_asset(MASK_ASSET, asset)
    ClassificationExtension.ext(asset, add_if_missing=True).classes = mask_classes()
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata=NODATA, data_type=DataType.UINT8, spatial_resolution=info.pixel_size
        )
    ]
    _describe_file(asset, mask_path)
    specs = {spec.name: spec for spec in method.layers}
    for name, path in result.layers.items():
        add_layer_asset(item, specs[name], Path(path), info)
    if preview_path is not None:
        item.add_asset(
            PREVIEW_ASSET,
            pystac.Asset(
                href=f"./{preview_path.name}",
                media_type=pystac.MediaType.PNG,
                title="True colour with the mask classes drawn over it",
                roles=["thumbnail", "overview"],
            ),
        )
    if source_href:
        item.add_link(
            pystac.Link(
                rel="derived_from",
                target=source_href,
                media_type=pystac.MediaType.GEOJSON,
                title=f"Source scene {source.id}",
            )
        )
    return item


def item_assets(item: dict[str, Any] | None = None) -> dict[str, Any]:
    """item_assets of the mask collection (core field in STAC 1.1): the mask and the preview,
    and the optional layers (a cloud probability) that its first `item` carries."""
    layers = {
        name: _asset_template(asset)
        for name, asset in ((item or {}).get("assets") or {}).items()
        if name not in (MASK_ASSET, PREVIEW_ASSET) and isinstance(asset, dict)
    }
    return {
        MASK_ASSET: {
            "type": COG_MEDIA_TYPE,
            "title": "Cloud, cloud-shadow and water mask",
            "roles": ["data", "cloud", "cloud-shadow", "water-mask"],
            "classification:classes": [c.to_dict() for c in mask_classes()],
            "raster:bands": [{"nodata": NODATA, "data_type": "uint8"}],
        },
        PREVIEW_ASSET: {
            "type": pystac.MediaType.PNG,
            "title": "True colour with the mask classes drawn over it",
            "roles": ["thumbnail", "overview"],
        },
        **layers,
    }


def _asset_template(asset: dict[str, Any]) -> dict[str, Any]:
    """What every item's asset of this name shares: its href and file facts left out."""
    template = {k: v for k, v in asset.items() if k != "href" and not k.startswith("file:")}
    if isinstance(template.get("raster:bands"), list):
        template["raster:bands"] = [
            {k: v for k, v in band.items() if k != "spatial_resolution"}
            for band in template["raster:bands"]
            if isinstance(band, dict)
        ]
    return template


def _describe_file(asset: pystac.Asset, path: Path) -> None:
    """file:size and file:checksum of an asset's file."""
    file_ext = FileExtension.ext(asset, add_if_missing=True)
    file_ext.size = path.stat().st_size
    file_ext.checksum = multihash_sha256(path)


def add_layer_asset(item: pystac.Item, spec: LayerSpec, path: Path, info: SceneInfo) -> None:
    """Asset `spec.name`: an optional layer's COG (uint8, nodata 255), described by its spec."""
    asset = pystac.Asset(
        href=f"./{path.name}",
        media_type=COG_MEDIA_TYPE,
        title=spec.title,
        description=spec.description,
        roles=list(spec.roles),
    )
    item.add_asset(spec.name, asset)
    RasterExtension.ext(asset, add_if_missing=True).bands = [
        RasterBand.create(
            nodata=NODATA,
            data_type=DataType.UINT8,
            spatial_resolution=info.pixel_size,
            unit=spec.unit,
        )
    ]
    _describe_file(asset, path)


def processor_provider() -> pystac.Provider:
    """stacmask as processor of the masks."""
    return pystac.Provider(
        name="stacmask",
        roles=[pystac.ProviderRole.PROCESSOR],
        url=STACMASK_URL,
        description=f"Cloud, shadow and water masks computed by stacmask {__version__}",
    )
