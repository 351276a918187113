"""The CBERS-4A WPM sensor: four DN bands and INPE's XML (BDC, INPE and AWS key layouts).

Band asset keys come from `--band-keys` (constants.BAND_KEY_PRESETS: bdc, inpe, aws, or four
or five keys); the XML asset gives the calibration gains and sun angles (the default gains,
recorded as `stacmask:calibration: "default"`, when it has none). The DN are turned into TOA
reflectance by one factor per band (reflectance.py): pi x gain x d^2 / (ESUN x cos(zenith)).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any, Final

import pystac

from stacmask.constants import (
    BAND_KEY_PRESETS,
    DEFAULT_BAND_KEYS,
    DEFAULT_COLLECTION,
    INPE_PROVIDER_URL,
    BandKeys,
)
from stacmask.errors import ItemError, StacmaskWarning, UnusualValueWarning
from stacmask.methods.registry import DEFAULT_METHOD, METHODS
from stacmask.sensors.cbers4a.radiometry import Radiometry, read_radiometry
from stacmask.sensors.cbers4a.reflectance import reflectance_factors
from stacmask.sensors.inputs import (
    MAIN_BANDS,
    BandRef,
    GridSpec,
    Provider,
    SceneInputs,
    SensorOptions,
)
from stacmask.sensors.registry import Sensor
from stacmask.sensors.stac import asset_href, kept_properties, source_providers, sun_angles

NAME: Final = "cbers4a-wpm"
#: Source properties kept on the mask item besides the common ones (BDC tiles, path and row).
KEPT_PROPERTIES: Final = ("bdc:tiles", "cbers:path", "cbers:row", "path", "row")
#: INPE scene ids: CBERS_4A_WPM_YYYYMMDD_PPP_RRR_L4 (cbers4a.md).
INPE_SCENE_ID: Final = re.compile(r"^CBERS_4A?_[A-Z0-9]+_\d{8}_(?P<path>\d{3})_(?P<row>\d{3})_L\d")
INPE: Final = Provider(
    "INPE - Instituto Nacional de Pesquisas Espaciais", ("producer", "licensor"), INPE_PROVIDER_URL
)
KEYWORDS: Final = ("CBERS-4A", "WPM")


def band_hrefs(item: pystac.Item, keys: BandKeys) -> list[str]:
    """Absolute hrefs of the blue, green, red and NIR assets; ItemError naming missing keys."""
    missing = [key for key in keys.bands if key not in item.assets]
    if missing:
        raise ItemError(
            f"item {item.id}: missing band asset(s) {', '.join(missing)} "
            f"(has: {', '.join(sorted(item.assets)) or 'none'}); see --band-keys"
        )
    return [item.assets[key].get_absolute_href() or item.assets[key].href for key in keys.bands]


def band_inputs(
    hrefs: Sequence[str],
    radiometry: Radiometry,
    *,
    scene_id: str,
    sensor: str = NAME,
    indexes: Sequence[int] = (1, 1, 1, 1),
    properties: tuple[tuple[str, Any], ...] = (),
    providers: tuple[Provider, ...] = (INPE,),
    lineage: str = "",
) -> SceneInputs:
    """SceneInputs of four DN (or reflectance) rasters with `radiometry`, on the blue band's grid.

    DN bands get the reflectance factors of their gains, sun and date; bands that are
    reflectance already (calibration "reflectance") are scaled by their gains.
    """
    gains = radiometry.gains
    factors = (
        gains
        if radiometry.calibration == "reflectance"
        else tuple(reflectance_factors(gains, radiometry.sun_elevation, radiometry.acquired))
    )
    bands = tuple(
        BandRef(name, href, index, scale=float(factor))
        for name, href, index, factor in zip(MAIN_BANDS, hrefs, indexes, factors, strict=True)
    )
    return SceneInputs(
        scene_id=scene_id,
        sensor=sensor,
        bands=bands,
        grid=GridSpec(reference="blue"),
        sun_elevation=radiometry.sun_elevation,
        sun_azimuth=radiometry.sun_azimuth,
        acquired=radiometry.acquired,
        calibration=radiometry.calibration,
        gains=gains,
        properties=properties,
        providers=providers,
        keywords=KEYWORDS,
        lineage=lineage,
    )


def _integer(name: str, value: Any) -> Any:
    """BDC's `path` and `row` are strings ("198"): published as integers."""
    if name in ("path", "row", "cbers:path", "cbers:row") and isinstance(value, str):
        return int(value) if value.strip().isdigit() else value
    return value


def _properties(item: pystac.Item) -> tuple[tuple[str, Any], ...]:
    kept = tuple(
        (name, _integer(name, value)) for name, value in kept_properties(item, KEPT_PROPERTIES)
    )
    scene = INPE_SCENE_ID.match(item.id)
    if scene and "cbers:path" not in item.properties:
        # Path and row from INPE's id pattern, so catalogs can be filtered by them.
        kept += (("cbers:path", int(scene["path"])), ("cbers:row", int(scene["row"])))
    return kept


def scene_inputs(item: pystac.Item, options: SensorOptions) -> SceneInputs:
    """The four bands of `options.keys` (default bdc), calibrated with the item's XML."""
    keys = options.keys or BAND_KEY_PRESETS[DEFAULT_BAND_KEYS]
    hrefs = band_hrefs(item, keys)
    xml = None if keys.metadata is None else asset_href(item, keys.metadata)
    with warnings.catch_warnings():
        # Default gains are no fault of the scene: its item records them (stacmask:calibration).
        warnings.simplefilter("ignore", StacmaskWarning)
        # ...but gains far off the usual are: they are shown, naming the XML.
        warnings.simplefilter("default", UnusualValueWarning)
        radiometry = read_radiometry(xml, item.datetime, options.timeout, options.access)
    # The item's view:sun_* where the XML has none, or there is no XML (AWS without metadata).
    radiometry = radiometry.or_sun(*sun_angles(item))
    return band_inputs(
        hrefs,
        radiometry,
        scene_id=item.id,
        properties=_properties(item),
        providers=source_providers(item, (INPE,)),
        lineage=f"the blue, green, red and NIR bands ({', '.join(keys.bands)}) of {item.id}; "
        f"gains: {radiometry.calibration}",
    )


SENSOR: Final = Sensor(
    name=NAME,
    title="CBERS-4A WPM L4 DN (INPE Brazil Data Cube, INPE and AWS catalogs)",
    default_collection=DEFAULT_COLLECTION,
    # Every method of the registry works on its four bands; physical first.
    methods=(DEFAULT_METHOD, *(name for name in METHODS if name != DEFAULT_METHOD)),
    supports="the cbers4a-wpm sensor reads CBERS-4A WPM L4 DN scenes (blue, green, red and NIR "
    "band assets, named by --band-keys, and INPE's XML for gains and sun angles)",
    scene_inputs=scene_inputs,
)
