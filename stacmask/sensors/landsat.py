"""The Landsat Collection 2 sensor (USGS / Planetary Computer / Earth Search asset keys).

The mask is the scene's own QA_PIXEL decoded (methods/landsat_qa.py), on the QA_PIXEL grid;
blue, green, red and nir08 give the preview and statistics. Reflectance = DN x scale + offset
from the asset's raster:bands, else the Collection 2 rule of the item's level. Landsat 4-9
TM, ETM+ and OLI scenes are supported; MSS (no blue band) and radiance assets are refused.
"""

from __future__ import annotations

import re
from typing import Final

import pystac

from stacmask.constants import LANDSAT_QA_PIXEL_ASSET
from stacmask.errors import ItemError
from stacmask.methods import MaskMethod
from stacmask.methods.landsat_qa import QaPixelConfig
from stacmask.methods.qa_pixel import QA_BAND, QaPixelMethod
from stacmask.sensors.inputs import (
    MAIN_BANDS,
    GridSpec,
    Provider,
    SceneInputs,
    SensorOptions,
)
from stacmask.sensors.registry import Sensor
from stacmask.sensors.stac import (
    band_ref,
    declared_scaling,
    kept_properties,
    require_assets,
    source_providers,
    sun_angles,
)

NAME: Final = "landsat-c2"
#: Asset keys of the blue, green, red and NIR bands (MAIN_BANDS order).
MAIN_ASSETS: Final = ("blue", "green", "red", "nir08")
#: Landsat Collection 2 DN to reflectance (USGS C2 product guides): Level-1 TOA reflectance
#: before the sun-angle correction, and Level-2 surface reflectance.
LANDSAT_L1_SCALING: Final = (2.0e-5, -0.1)
LANDSAT_L2_SCALING: Final = (2.75e-5, -0.2)
USGS: Final = Provider("USGS", ("producer", "licensor"), "https://www.usgs.gov/landsat-missions")
KEYWORDS: Final = ("Landsat", "Collection 2", "QA_PIXEL")
#: What this sensor reads (said in every refusal).
SUPPORTS: Final = (
    f"the {NAME} sensor reads Landsat 4-9 TM, ETM+ and OLI Collection 2 scenes (Level-1 TOA or "
    "Level-2 surface reflectance, with blue, green, red, nir08 and qa_pixel assets); MSS has "
    "no blue band and radiance assets are refused"
)
#: Landsat Collection 2 product ids of MSS scenes (LM01..LM05).
MSS_ID: Final = re.compile(r"^LM0[1-5]_")
#: Source properties kept on the mask item besides the common ones (WRS path and row, ...).
KEPT_PROPERTIES: Final = (
    "landsat:wrs_type",
    "landsat:wrs_path",
    "landsat:wrs_row",
    "landsat:collection_category",
    "landsat:collection_number",
    "landsat:correction",
)


def band_scaling(item: pystac.Item, key: str) -> tuple[float, float]:
    """(scale, offset) of asset `key`: its raster:bands, else the rule of the item's level."""
    declared = declared_scaling(item, key)
    if declared is not None:
        return declared
    level2 = "L2" in str(item.properties.get("landsat:correction", "")) or "-l2" in str(
        item.collection_id or ""
    )
    return LANDSAT_L2_SCALING if level2 else LANDSAT_L1_SCALING


def is_mss(item: pystac.Item) -> bool:
    """True for a Landsat 1-5 MSS scene (its instruments, else its LM0n product id)."""
    instruments = item.properties.get("instruments") or []
    named = isinstance(instruments, list) and "mss" in {str(i).lower() for i in instruments}
    return named or MSS_ID.match(item.id) is not None


def _check_supported(item: pystac.Item) -> None:
    if is_mss(item):
        raise ItemError(f"item {item.id}: a Landsat MSS scene; {SUPPORTS}")
    wanted = dict(zip(MAIN_ASSETS, MAIN_BANDS, strict=True))
    require_assets(item, {**wanted, LANDSAT_QA_PIXEL_ASSET: QA_BAND}, NAME, hint=f"; {SUPPORTS}")


def scene_inputs(item: pystac.Item, options: SensorOptions) -> SceneInputs:
    """blue, green, red, nir08 and QA_PIXEL of a Collection 2 item, on the QA_PIXEL grid."""
    _check_supported(item)
    bands = [
        band_ref(item, name, key, band_scaling(item, key))
        for name, key in zip(MAIN_BANDS, MAIN_ASSETS, strict=True)
    ]
    bands.append(band_ref(item, QA_BAND, LANDSAT_QA_PIXEL_ASSET, categorical=True))
    elevation, azimuth = sun_angles(item)
    return SceneInputs(
        scene_id=item.id,
        sensor=NAME,
        bands=tuple(bands),
        grid=GridSpec(reference=QA_BAND, warp=True),
        sun_elevation=elevation,
        sun_azimuth=azimuth,
        acquired=item.datetime,
        calibration="reflectance",
        properties=kept_properties(item, KEPT_PROPERTIES),
        providers=source_providers(item, (USGS,)),
        keywords=KEYWORDS,
        lineage=f"the Collection 2 QA_PIXEL band of {item.id}, decoded (fill, dilated cloud, "
        "cirrus, cloud, cloud shadow, snow, water bits)",
    )


def make_method(name: str, options: SensorOptions) -> MaskMethod:
    """The qa-pixel method (its table in methods/landsat_qa.py)."""
    return QaPixelMethod(QaPixelConfig())


SENSOR: Final = Sensor(
    name=NAME,
    title="Landsat Collection 2 Level-1 or Level-2 (USGS / Planetary Computer keys)",
    default_collection="landsat-c2-l2",
    methods=("qa-pixel",),
    supports=SUPPORTS,
    scene_inputs=scene_inputs,
    make_method=make_method,
)
