"""Constants shared by every stage: class codes, band keys, STAC URLs, property names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- Source catalog (INPE Brazil Data Cube) --------------------------------------------------
DEFAULT_STAC_URL: Final = "https://data.inpe.br/bdc/stac/v1/"
DEFAULT_COLLECTION: Final = "CB4A-WPM-L4-DN-1"


@dataclass(frozen=True)
class BandKeys:
    """Asset keys of the blue, green, red and NIR bands and of the XML metadata in a source item."""

    blue: str
    green: str
    red: str
    nir: str
    metadata: str | None

    @property
    def bands(self) -> tuple[str, str, str, str]:
        """Band asset keys in stacmask's order: blue, green, red, nir."""
        return (self.blue, self.green, self.red, self.nir)


#: Asset-key layouts of the catalogs that publish CBERS-4A WPM (cbers4a.md).
BAND_KEY_PRESETS: Final[dict[str, BandKeys]] = {
    # INPE Brazil Data Cube (default): BAND1..BAND4, XML per band as BANDn_xml.
    "bdc": BandKeys("BAND1", "BAND2", "BAND3", "BAND4", "BAND1_xml"),
    # Other INPE catalogs (collection CBERS4A_WPM_L4_DN): blue/green/red/nir.
    "inpe": BandKeys("blue", "green", "red", "nir", None),
    # The AWS CBERS catalog: B0..B4 and one `metadata` XML asset.
    "aws": BandKeys("B1", "B2", "B3", "B4", "metadata"),
}
DEFAULT_BAND_KEYS: Final = "bdc"

# --- Radiometry (cbers4a.md, notebook-method.md) ---------------------------------------------
#: Default absolute calibration gains of WPM bands 1..4, used by the reference notebook when
#: the XML carries no absoluteCalibrationCoefficient (the 2020 WPM files do not).
DEFAULT_GAINS: Final = (0.29107, 0.297832, 0.232504, 0.178993)
#: Mean solar exo-atmospheric irradiance of WPM bands 1..4, W m-2 um-1 (cbers4a.md).
ESUN_WPM: Final = (1984.65, 1823.40, 1536.38, 981.91)
XML_NAMESPACE: Final = "http://www.gisplan.com.br/xmlsat"

# --- XML metadata (metadata.py) ---------------------------------------------------------------
#: Largest XML metadata body accepted (real files are 20-170 kB).
XML_MAX_BYTES: Final = 2_000_000

# --- Mask class codes (Fmask/CFMask convention, cbers4a.md) ----------------------------------
CLEAR: Final = 0
WATER: Final = 1
SHADOW: Final = 2
SNOW: Final = 3
CLOUD: Final = 4
NODATA: Final = 255

CLASS_NAMES: Final[dict[int, tuple[str, str, str]]] = {
    # code: (name, description, colour hint used in the preview and STAC Browser)
    CLEAR: ("clear", "Clear land", "7F7F7F"),
    WATER: ("water", "Water", "1F5FFF"),
    SHADOW: ("cloud_shadow", "Cloud shadow", "8B00FF"),
    SNOW: ("snow", "Snow or ice (not produced for CBERS-4A WPM)", "00FFFF"),
    CLOUD: ("cloud", "Cloud", "FFFFFF"),
    NODATA: ("no_data", "No data (outside the scene footprint)", "000000"),
}

# --- STAC output ------------------------------------------------------------------------------
PREFIX: Final = "stacmask"
PROP_SHADOW_COVER: Final = f"{PREFIX}:shadow_cover"
PROP_WATER_COVER: Final = f"{PREFIX}:water_cover"
PROP_VALID_PIXELS: Final = f"{PREFIX}:valid_pixels"
PROP_METHOD: Final = f"{PREFIX}:method"
PROP_BAND_MISMATCH: Final = f"{PREFIX}:band_mismatch"
PROP_CALIBRATION: Final = f"{PREFIX}:calibration"

MASK_ASSET: Final = "mask"
PREVIEW_ASSET: Final = "thumbnail"
COG_MEDIA_TYPE: Final = "image/tiff; application=geotiff; profile=cloud-optimized"
PROCESSING_SCHEMA: Final = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
FAILURES_FILE: Final = "failures.json"
LOCK_FILE: Final = ".stacmask.lock"

INPE_PROVIDER_URL: Final = "https://www.gov.br/inpe/"
STACMASK_URL: Final = "https://github.com/stacmask/stacmask"

# --- Sensors: Sentinel-2 L1C and Landsat (issue 6) ---------------------------------------------
#: Order in which overlapping classes are written into a class raster, highest first (the project
#: order of notebook-method.md rule 8, with snow placed between cloud and water: a cloud over
#: snow is cloud, and frozen water flagged as both snow and water is snow, as in Fmask).
CLASS_PRIORITY: Final = (SHADOW, CLOUD, SNOW, WATER, CLEAR)

#: Sentinel-2 MSI bands: (band id, asset key in Earth Search / stactools-style catalogs, native
#: ground sampling distance in metres).
SENTINEL2_BANDS: Final[tuple[tuple[str, str, int], ...]] = (
    ("B01", "coastal", 60),
    ("B02", "blue", 10),
    ("B03", "green", 10),
    ("B04", "red", 10),
    ("B05", "rededge1", 20),
    ("B06", "rededge2", 20),
    ("B07", "rededge3", 20),
    ("B08", "nir", 10),
    ("B8A", "nir08", 20),
    ("B09", "nir09", 60),
    ("B10", "cirrus", 60),
    ("B11", "swir16", 20),
    ("B12", "swir22", 20),
)
#: The ten L1C bands s2cloudless's LightGBM model takes, in its order (s2cloudless MODEL_BANDS).
S2CLOUDLESS_BANDS: Final = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
#: Sentinel-2 L1C DN to TOA reflectance: rho = (DN + offset) / quantification. The offset is
#: -1000 from processing baseline 04.00 on (ESA, January 2022), 0 before.
S2_QUANTIFICATION_VALUE: Final = 10000.0
S2_RADIO_ADD_OFFSET: Final = -1000.0
S2_OFFSET_BASELINE: Final = "04.00"
S2_NODATA: Final = 0
#: Item properties the Sentinel-2 catalogs use for the processing baseline and for an offset
#: that the provider already applied to the pixel values.
PROP_S2_BASELINE: Final = "s2:processing_baseline"
PROP_EARTHSEARCH_OFFSET_APPLIED: Final = "earthsearch:boa_offset_applied"

#: Landsat Collection 2 pixel quality asset key (USGS and Planetary Computer catalogs).
LANDSAT_QA_PIXEL_ASSET: Final = "qa_pixel"

#: Optional second output asset: the cloud probability of a probabilistic detector, uint8
#: percent 0-100, nodata 255 (the layout of the Earth Engine S2_CLOUD_PROBABILITY collection).
PROBABILITY_ASSET: Final = "cloud_probability"
PROBABILITY_NODATA: Final = 255
PROP_PROBABILITY_THRESHOLD: Final = f"{PREFIX}:probability_threshold"


# --- serve / search / export (issue 4) --------------------------------------------------------
#: STAC Browser release built from npm by `stacmask browser build`, and the ol-stac release it
#: is built with: 4.0.1 asks for `ol-stac ^1.1.0`, which npm resolves to releases written for
#: stac-js 0.3+ (1.5.1 fails at run time with `f.getStatistics is not a function` on STAC
#: Browser's stac-js 0.1 objects; 1.6.0 does not build); 1.1.0 is the one written for stac-js 0.1.
STAC_BROWSER_VERSION: Final = "4.0.1"
STAC_BROWSER_PACKAGE: Final = "@radiantearth/stac-browser"
OL_STAC_VERSION: Final = "1.1.0"
#: Environment variable naming stacmask's cache folder (default ~/.cache/stacmask).
CACHE_ENV: Final = "STACMASK_CACHE"
DEFAULT_PORT: Final = 8000
DEFAULT_HOST: Final = "127.0.0.1"
#: Page size of the STAC API when a request gives no `limit`, and the largest page served.
DEFAULT_PAGE_LIMIT: Final = 10
MAX_PAGE_LIMIT: Final = 1000
EXPORT_INDEX_FILE: Final = "index.geojson"
#: Titles of the queryables that `stacmask serve` lists (STAC Browser shows them in its search).
QUERYABLE_TITLES: Final[dict[str, str]] = {
    "eo:cloud_cover": "Cloud cover (%)",
    PROP_SHADOW_COVER: "Cloud-shadow cover (%)",
    PROP_WATER_COVER: "Water cover (%)",
    PROP_VALID_PIXELS: "Valid pixels",
    PROP_METHOD: "Mask method",
    PROP_BAND_MISMATCH: "Band sizes mismatch",
    PROP_CALIBRATION: "Calibration source",
    "view:sun_elevation": "Sun elevation (degrees)",
    "view:sun_azimuth": "Sun azimuth (degrees)",
    "cbers:path": "Path",
    "cbers:row": "Row",
}
#: Queryables that are percentages (0 to 100).
PERCENT_PROPERTIES: Final = ("eo:cloud_cover", PROP_SHADOW_COVER, PROP_WATER_COVER)

# --- ukis-csmask and ensemble methods (issue 3) -------------------------------------------------
#: Output classes of ukis-csmask's models (CSmask._csm: 0 background, 1 cloud, 2 cloud shadow).
CSMASK_BACKGROUND: Final = 0
CSMASK_CLOUD: Final = 1
CSMASK_SHADOW: Final = 2
