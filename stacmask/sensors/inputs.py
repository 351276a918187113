"""The seam between sensors and the reader: what a sensor makes of one scene (SceneInputs).

A sensor (sensors/registry.py) turns a STAC item, or local files, into one frozen SceneInputs:
its bands by name (BandRef: where, which band of the file, how to scale it to reflectance, its
no-data value, how to resample it), how to derive the working grid (GridSpec), the sun, the
calibration, and what the mask item and collection keep of the source (properties, providers,
keywords, a lineage text). Everything after it is the same for every sensor:
read (reading.RasterBandSource) -> method -> COG + preview + layers -> item -> catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from stacmask.constants import BandKeys
from stacmask.errors import ItemError
from stacmask.reading.storage import REMOTE, StorageAccess

#: Where a scene's reflectance scaling came from: the scene's XML gains, stacmask's default
#: gains, or bands that are reflectance already (a stored value x scale + offset).
Calibration = Literal["xml", "default", "reflectance"]
#: How a band is brought onto the working grid: "average" (finer source), "bilinear"
#: (coarser source), "nearest" (classes and bit flags; the default of categorical bands).
ResamplingName = Literal["average", "bilinear", "nearest"]

#: The four bands every scene has, by these names: the reader streams them strip by strip,
#: gathers whole-scene statistics and the preview from them, and mask methods read them
#: with read_raw / read_reflectance. A sensor may give more bands under any other name.
MAIN_BANDS: tuple[str, str, str, str] = ("blue", "green", "red", "nir")


@dataclass(frozen=True)
class BandRef:
    """One band of a scene: a band of a raster file, and how to read it."""

    #: Name the methods ask for ("blue", "B8A", "qa_pixel", "fmask", ...).
    name: str
    #: Local path or http(s) URL of the raster.
    href: str
    #: Band of the file (1-based).
    index: int = 1
    #: reflectance = stored value x scale + offset (reflectance bands only).
    scale: float = 1.0
    offset: float = 0.0
    #: Stored value meaning no data; None: the file's own nodata, else 0 for integer
    #: rasters and NaN for floats.
    nodata: float | None = None
    #: True for class or bit-flag bands (QA_PIXEL, an Fmask result): integer values, read
    #: raw (read_values), resampled with nearest.
    categorical: bool = False
    #: None: nearest for categorical bands, else average onto a coarser grid, bilinear onto
    #: a finer one.
    resampling: ResamplingName | None = None

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ItemError(f"{self.href}: band index must be 1 or more, got {self.index}")


@dataclass(frozen=True)
class GridSpec:
    """How the working grid (the grid of the mask) is derived from the bands."""

    #: The band whose file grid (CRS, extent) is the working grid.
    reference: str = "blue"
    #: Pixel size in CRS units over the reference band's extent; None: the reference's own.
    resolution: float | None = None
    #: True: bands on other grids are warped onto it. False: every main band must be on it
    #: (a band of another size or georeferencing is a read error naming its file).
    warp: bool = False


@dataclass(frozen=True)
class Provider:
    """A STAC provider of the source imagery (producer, licensor, ...)."""

    name: str
    roles: tuple[str, ...]
    url: str | None = None


@dataclass(frozen=True)
class SceneInputs:
    """Everything the one pipeline needs to mask a scene and describe the mask (module doc)."""

    scene_id: str
    #: Name of the sensor that made these inputs (sensors/registry.py).
    sensor: str
    #: Every band by name; MAIN_BANDS are required.
    bands: tuple[BandRef, ...]
    grid: GridSpec = field(default_factory=GridSpec)
    #: Sun elevation and azimuth in degrees, None when unknown.
    sun_elevation: float | None = None
    sun_azimuth: float | None = None
    acquired: datetime | None = None
    calibration: Calibration = "reflectance"
    #: Radiance gains of the main bands (radiance = DN x gain) for methods that work in
    #: radiance (the notebook rules); (1, 1, 1, 1) for bands that are reflectance.
    gains: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    #: Source item properties the mask item keeps (name, JSON value).
    properties: tuple[tuple[str, Any], ...] = ()
    #: Producers and licensors of the source imagery, for the mask item and collection.
    providers: tuple[Provider, ...] = ()
    #: Keywords of the mask collection that describe the source (sensor, platform).
    keywords: tuple[str, ...] = ()
    #: What the method ran on, for processing:lineage: "stacmask <method> on <lineage>".
    lineage: str = ""

    def __post_init__(self) -> None:
        names = [band.name for band in self.bands]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ItemError(f"scene {self.scene_id}: band name(s) {', '.join(repeated)} repeated")
        missing = [name for name in MAIN_BANDS if name not in names]
        if missing:
            raise ItemError(
                f"scene {self.scene_id}: the {self.sensor} sensor gave no {', '.join(missing)} "
                "band (every scene needs blue, green, red and nir)"
            )
        if self.sun_elevation is not None and not 0 < self.sun_elevation <= 90:
            raise ItemError(
                f"scene {self.scene_id}: sun elevation {self.sun_elevation:g} degrees is "
                + ("above 90" if self.sun_elevation > 90 else "at or below the horizon")
                + " (a night scene or wrong metadata); reflectance cannot be computed"
            )
        if self.grid.reference not in names:
            raise ItemError(
                f"scene {self.scene_id}: grid reference band {self.grid.reference!r} is not "
                "one of its bands"
            )

    @property
    def band_names(self) -> tuple[str, ...]:
        """Names of every band, in order."""
        return tuple(band.name for band in self.bands)

    def band(self, name: str) -> BandRef:
        """The band called `name`; ItemError naming the scene and its bands otherwise."""
        for band in self.bands:
            if band.name == name:
                return band
        raise ItemError(
            f"scene {self.scene_id}: no band {name!r} (has: {', '.join(self.band_names)})"
        )

    def with_hrefs(self, readable: Callable[[str], str]) -> SceneInputs:
        """These inputs with every band href replaced by `readable(href)` (what the reader
        opens: reading/storage.gdal_path checks, signs and translates remote hrefs)."""
        return replace(
            self, bands=tuple(replace(band, href=readable(band.href)) for band in self.bands)
        )

    def require(self, names: tuple[str, ...], who: str) -> None:
        """ItemError naming the scene unless every band of `names` is given (`who` needs them)."""
        missing = [name for name in names if name not in self.band_names]
        if missing:
            raise ItemError(
                f"item {self.scene_id}: {who} needs band(s) {', '.join(missing)}, which the "
                f"{self.sensor} sensor did not find (has: {', '.join(self.band_names)})"
            )


@dataclass(frozen=True)
class SensorOptions:
    """What a build asks of the sensors and their own methods; each sensor reads what it uses.

    `stacmask build` fills it from its options (`--band-keys`, `--timeout`, `--threshold`, ...).
    """

    #: Asset keys (blue, green, red, nir, metadata) of CBERS layouts (`--band-keys`); None:
    #: the sensor's default layout.
    keys: BandKeys | None = None
    #: HTTP timeout in seconds for the sensor's own metadata reads (the INPE XML).
    timeout: float = 60.0
    #: Which hrefs may be read and how (reading/storage.py): alternate hrefs, signing, tokens.
    access: StorageAccess = REMOTE
    #: s2cloudless threshold, averaging and dilation radii (S2CloudlessConfig).
    threshold: float = 0.4
    average_over: int | None = 4
    dilation_size: int | None = 2
    #: Sentinel-2 working grid and mask pixel in metres.
    resolution: float = 60.0
    #: Asset key of a per-scene Fmask result in the source item, and its encoding (fmask.py).
    fmask_asset: str | None = None
    fmask_encoding: str = "categorical"
    fmask_adjacent_as_cloud: bool = False
    #: Publish the method's optional layers (the s2cloudless cloud probability) as assets.
    probability_asset: bool = True
