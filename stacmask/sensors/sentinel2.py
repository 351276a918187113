"""The Sentinel-2 MSI Level-1C sensor (Earth Search-style asset keys): s2cloudless on 60 m.

Every band is warped onto a working grid over the blue band's extent (`--resolution`, 60 m by
default). Reflectance = DN x scale + offset from the asset's raster:bands, else 1/10000 and
the processing baseline's offset (-0.1 from baseline 04.00 on). No data is the asset's
raster:bands nodata, else 0: L1C JP2s carry no nodata tag, and DN 0 is never a measurement.
"""

from __future__ import annotations

import warnings
from typing import Final

import pystac

from stacmask.constants import (
    PROP_EARTHSEARCH_OFFSET_APPLIED,
    PROP_S2_BASELINE,
    S2_NODATA,
    S2_OFFSET_BASELINE,
    S2_QUANTIFICATION_VALUE,
    S2_RADIO_ADD_OFFSET,
    S2CLOUDLESS_BANDS,
    SENTINEL2_BANDS,
)
from stacmask.errors import ItemError, StacmaskWarning
from stacmask.methods import MaskMethod
from stacmask.methods.s2cloudless import FMASK_BAND, S2CloudlessConfig, S2CloudlessMethod
from stacmask.sensors.inputs import (
    MAIN_BANDS,
    BandRef,
    GridSpec,
    Provider,
    SceneInputs,
    SensorOptions,
)
from stacmask.sensors.registry import Sensor
from stacmask.sensors.stac import (
    asset_href,
    band_ref,
    declared_scaling,
    kept_properties,
    require_assets,
    source_providers,
    sun_angles,
)

NAME: Final = "sentinel2-l1c"
#: Band ids of the blue, green, red and NIR bands (MAIN_BANDS order).
MAIN_BAND_IDS: Final = ("B02", "B03", "B04", "B08")
#: Asset key of each band id (Earth Search / stactools keys).
ASSET_KEYS: Final = {band_id: key for band_id, key, _ in SENTINEL2_BANDS}
#: s2:product_type of Level-1C items; other products are refused.
L1C_PRODUCT: Final = "S2MSI1C"
ESA: Final = Provider("ESA", ("producer", "licensor"), "https://www.esa.int")
KEYWORDS: Final = ("Sentinel-2", "MSI", "Level-1C")
#: Source properties kept on the mask item besides the common ones and mgrs:* (the tile).
KEPT_PROPERTIES: Final = (PROP_S2_BASELINE, "grid:code", "s2:product_type", "s2:tile_id")
SUPPORTS: Final = (
    f"the {NAME} sensor reads Sentinel-2 Level-1C items ({L1C_PRODUCT}) with the B01-B12 and "
    "B8A band assets (Earth Search-style keys: coastal, blue, ..., swir22)"
)


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


def band_scaling(item: pystac.Item, key: str) -> tuple[float, float]:
    """(scale, offset) of asset `key`: its raster:bands, else 1/10000 and the baseline offset."""
    declared = declared_scaling(item, key)
    if declared is not None:
        return declared
    return (1.0 / S2_QUANTIFICATION_VALUE, sentinel2_offset(item))


def _band(item: pystac.Item, name: str, band_id: str) -> BandRef:
    key = ASSET_KEYS[band_id]
    return band_ref(item, name, key, band_scaling(item, key), nodata=S2_NODATA)


def _fmask(item: pystac.Item, key: str | None) -> BandRef | None:
    if key is None:
        return None
    href = asset_href(item, key)
    if href is None:
        warnings.warn(
            f"item {item.id}: no Fmask asset {key!r}; s2cloudless alone",
            StacmaskWarning,
            stacklevel=3,
        )
        return None
    return band_ref(item, FMASK_BAND, key, categorical=True)


def scene_inputs(item: pystac.Item, options: SensorOptions) -> SceneInputs:
    """The blue, green, red, NIR and s2cloudless bands (and an Fmask result) of an L1C item."""
    product = item.properties.get("s2:product_type")
    if product is not None and product != L1C_PRODUCT:
        raise ItemError(
            f"item {item.id}: s2:product_type is {product!r}; the {NAME} sensor reads "
            f"Level-1C TOA reflectance ({L1C_PRODUCT}) only"
        )
    needed = dict.fromkeys((*MAIN_BAND_IDS, *S2CLOUDLESS_BANDS))
    require_assets(item, {ASSET_KEYS[band_id]: band_id for band_id in needed}, NAME)
    bands = [
        _band(item, name, band_id) for name, band_id in zip(MAIN_BANDS, MAIN_BAND_IDS, strict=True)
    ]
    bands += [_band(item, band_id, band_id) for band_id in needed]
    fmask = _fmask(item, options.fmask_asset)
    if fmask is not None:
        bands.append(fmask)
    elevation, azimuth = sun_angles(item)
    fused = f", united with the Fmask result {options.fmask_asset}" if fmask else ""
    return SceneInputs(
        scene_id=item.id,
        sensor=NAME,
        bands=tuple(bands),
        grid=GridSpec(reference="blue", resolution=options.resolution, warp=True),
        sun_elevation=elevation,
        sun_azimuth=azimuth,
        acquired=item.datetime,
        calibration="reflectance",
        properties=kept_properties(item, KEPT_PROPERTIES, prefixes=("mgrs:",)),
        providers=source_providers(item, (ESA,)),
        keywords=KEYWORDS,
        lineage=f"the L1C bands {', '.join(S2CLOUDLESS_BANDS)} of {item.id} resampled to "
        f"{options.resolution:g} m{fused}",
    )


def make_method(name: str, options: SensorOptions) -> MaskMethod:
    """s2cloudless with the build's threshold, averaging, dilation and Fmask encoding."""
    config = S2CloudlessConfig(
        threshold=options.threshold,
        average_over=options.average_over,
        dilation_size=options.dilation_size,
        resolution=options.resolution,
    )
    return S2CloudlessMethod(
        config,
        fmask_encoding=options.fmask_encoding,
        fmask_adjacent_as_cloud=options.fmask_adjacent_as_cloud,
    )


SENSOR: Final = Sensor(
    name=NAME,
    title="Sentinel-2 MSI Level-1C (Earth Search-style asset keys)",
    default_collection="sentinel-2-l1c",
    methods=("s2cloudless",),
    supports=SUPPORTS,
    scene_inputs=scene_inputs,
    make_method=make_method,
)
