"""Synthetic CBERS-4A WPM L4 scenes in INPE's layout, with a truth mask, for tests and the demo.

A scene is four single-band DN GeoTIFFs (BAND1..BAND4: blue, green, red, nir), one INPE "prdf"
XML per band, a truth raster of class codes and a small PNG thumbnail. Content is built in
top-of-atmosphere reflectance and converted to 10-bit DN with the default WPM gains, so a
correct DN -> reflectance conversion recovers plausible reflectances:

- land: rectangular crop parcels (vegetation or bare, sometimes bright, soil) with texture,
- water bodies (very low NIR),
- clouds: smooth bright blobs, roughly flat spectrum, soft edges; `cloud_fraction` is the share
  of valid pixels whose truth class is cloud,
- cloud shadows: the cloud field displaced away from the sun by `cloud_height`, darkening the
  ground, more in NIR than in blue,
- no-data corners (DN 0 in all bands) around a rotated footprint, as in a real L4 scene.

Every field is procedural (coarse seeded random grids interpolated on demand), so the scene is
written strip by strip: memory follows the strip, and a full-size 14198 x 14584 scene fits in a
few hundred MB.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from stacmask.constants import (
    DEFAULT_COLLECTION,
    DEFAULT_GAINS,
    NODATA,
    XML_NAMESPACE,
)
from stacmask.demo.terrain import SceneModel
from stacmask.sensors.cbers4a.reflectance import reflectance_factors

BAND_KEYS: Final = ("BAND1", "BAND2", "BAND3", "BAND4")
#: Scene ids as INPE names them: CBERS_4A_WPM_YYYYMMDD_PPP_RRR_L4.
SCENE_ID_RE: Final = re.compile(r"^CBERS_4A_WPM_(\d{8})_(\d{3})_(\d{3})_L(\d)$")
GEOTIFF_MEDIA_TYPE: Final = "image/tiff; application=geotiff"
DEFAULT_ORIGIN: Final = (300000.0, 8300000.0)  # UTM 23S, west of Brasilia
FULL_SIZE: Final = (14198, 14584)  # width, height of a real L4 WPM multispectral scene

_RENDER_ROWS: Final = 256  # rows rendered at once (memory: ~80 bytes per pixel of a piece)


@dataclass(frozen=True)
class SampleScene:
    """A synthetic scene on disk and the facts needed to describe it in STAC."""

    scene_id: str
    directory: Path
    bands: dict[str, Path]
    xml: dict[str, Path]
    truth: Path
    thumbnail: Path
    width: int
    height: int
    transform: Affine
    crs: CRS
    #: Footprint polygon in lon/lat (GeoJSON geometry dict).
    footprint: dict[str, Any]
    #: [west, south, east, north] in lon/lat.
    bbox: tuple[float, float, float, float]
    acquired: datetime
    sun_elevation: float
    sun_azimuth: float
    path: int
    row: int
    gains: tuple[float, float, float, float]
    #: Whether the XML carries absoluteCalibrationCoefficient.
    with_gains: bool
    dtype: str
    #: Pixel count per truth class code (including NODATA).
    class_counts: dict[int, int] = field(default_factory=dict)

    @property
    def valid_pixels(self) -> int:
        """Pixels inside the footprint."""
        return sum(n for code, n in self.class_counts.items() if code != NODATA)

    def cover(self, code: int) -> float:
        """Share of valid pixels with truth class `code`, in percent."""
        valid = self.valid_pixels
        return 100.0 * self.class_counts.get(code, 0) / valid if valid else 0.0


def parse_scene_id(scene_id: str) -> tuple[datetime, int, int] | None:
    """Date, path and row of an INPE scene id, or None if it does not follow the pattern."""
    match = SCENE_ID_RE.match(scene_id)
    if match is None:
        return None
    day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=timezone.utc)
    return day, int(match.group(2)), int(match.group(3))


def scene_id_for(acquired: datetime, path: int, row: int) -> str:
    """INPE scene id for an acquisition date, path and row."""
    return f"CBERS_4A_WPM_{acquired:%Y%m%d}_{path:03d}_{row:03d}_L4"


# --- Procedural fields --------------------------------------------------------------------------

# --- Writing ------------------------------------------------------------------------------------


def write_sample_scene(
    out_dir: Path,
    scene_id: str,
    *,
    width: int = 1024,
    height: int = 1024,
    seed: int = 0,
    cloud_fraction: float = 0.2,
    shadow: bool = True,
    water: bool = True,
    dtype: str = "uint16",
    blocksize: int = 256,
    pixel_size: float = 8.0,
    sun_elevation: float = 55.0,
    sun_azimuth: float = 45.0,
    acquired: datetime | None = None,
    with_gains: bool = False,
    epsg: int = 32723,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    cloud_height: float = 1500.0,
    zlevel: int = 1,
    stripped: bool = False,
) -> SampleScene:
    """Write a synthetic WPM L4 scene (4 DN bands, 4 XMLs, truth, thumbnail) into `out_dir`.

    Files: <scene_id>_BAND{1..4}.tif (tiled `blocksize`, DEFLATE, nodata 0), <scene_id>_BAND{n}.xml,
    <scene_id>_truth.tif (uint8 class codes, nodata 255) and <scene_id>.png. `acquired` defaults to
    the date in an INPE-style `scene_id` at 13:30:24 UTC; path/row come from the id (0 otherwise).
    `origin` is the UTM (x, y) of the upper-left corner. The same arguments give the same bytes,
    and the pixels do not depend on `blocksize`. `zlevel` is the DEFLATE level (1: fastest, a
    full-size scene in ~22 s; 6 makes files ~10 % smaller and writing ~2.5x slower).
    `stripped` writes strips instead of tiles, as INPE's Brazil Data Cube files are (with
    `dtype="int16"`: BDC's layout).
    """
    if not 0.0 <= cloud_fraction <= 0.95:
        raise ValueError(f"cloud_fraction must be in [0, 0.95], got {cloud_fraction}")
    if dtype not in ("uint16", "int16"):
        raise ValueError(f"dtype must be 'uint16' or 'int16', got {dtype!r}")
    if width < 16 or height < 16:
        raise ValueError(f"scene too small: {width} x {height}")
    if blocksize % 16:
        raise ValueError(f"blocksize must be a multiple of 16, got {blocksize}")
    parsed = parse_scene_id(scene_id)
    path, row = (parsed[1], parsed[2]) if parsed else (0, 0)
    if acquired is None:
        day = parsed[0] if parsed else datetime(2021, 7, 12, tzinfo=timezone.utc)
        acquired = day + timedelta(hours=13, minutes=30, seconds=24)
    elif acquired.tzinfo is None:
        acquired = acquired.replace(tzinfo=timezone.utc)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gains = DEFAULT_GAINS
    factors = reflectance_factors(gains, sun_elevation, acquired)
    to_dn = (1 / factors[0], 1 / factors[1], 1 / factors[2], 1 / factors[3])
    model = SceneModel(
        width,
        height,
        seed,
        cloud_fraction,
        shadow,
        water,
        pixel_size,
        sun_elevation,
        sun_azimuth,
        cloud_height,
        to_dn,
    )
    transform = Affine(pixel_size, 0.0, origin[0], 0.0, -pixel_size, origin[1])
    crs = CRS.from_epsg(epsg)

    bands = {key: out_dir / f"{scene_id}_{key}.tif" for key in BAND_KEYS}
    xmls = {key: out_dir / f"{scene_id}_{key}.xml" for key in BAND_KEYS}
    truth_path = out_dir / f"{scene_id}_truth.tif"
    thumb_path = out_dir / f"{scene_id}.png"
    block = blocksize
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "crs": crs,
        "transform": transform,
        **(
            {"tiled": False}
            if stripped
            else {"tiled": True, "blockxsize": block, "blockysize": block}
        ),
        "compress": "deflate",
        "predictor": 2,
        "zlevel": zlevel,
        "interleave": "band",
    }
    thumb_step = max(1, math.ceil(max(width, height) / 400))
    thumb_rows: list[NDArray[np.uint8]] = []
    counts = np.zeros(256, dtype=np.int64)

    with rasterio.Env(GDAL_CACHEMAX=64, GDAL_NUM_THREADS=1):
        outs = [
            rasterio.open(bands[key], "w", **profile, dtype=dtype, nodata=0) for key in BAND_KEYS
        ]
        truth_ds = rasterio.open(truth_path, "w", **profile, dtype="uint8", nodata=NODATA)
        try:
            for row0 in range(0, height, block):
                nrows = min(block, height - row0)
                # Whole tile rows are written at once; they are rendered in pieces of at most
                # _RENDER_ROWS rows, so the float temporaries stay small for big blocks.
                dn_strip = np.empty((4, nrows, width), dtype=dtype)
                truth = np.empty((nrows, width), dtype=np.uint8)
                for sub in range(0, nrows, _RENDER_ROWS):
                    n = min(_RENDER_ROWS, nrows - sub)
                    dn_strip[:, sub : sub + n], truth[sub : sub + n] = model.render(
                        row0 + sub, n, dtype
                    )
                window = Window(0, row0, width, nrows)
                for b, ds in enumerate(outs):
                    ds.write(dn_strip[b], 1, window=window)
                truth_ds.write(truth, 1, window=window)
                counts += np.bincount(truth.ravel(), minlength=256)
                first = (-row0) % thumb_step
                if first < nrows:
                    rgb = dn_strip[[2, 1, 0], first::thumb_step, ::thumb_step].astype(np.float32)
                    thumb_rows.append(np.clip(rgb * (255 / 700), 0, 255).astype(np.uint8))
        finally:
            for ds in [*outs, truth_ds]:
                ds.close()
    _write_png(thumb_path, np.concatenate(thumb_rows, axis=1))

    corners_px = model.footprint.corners()
    lonlat = _to_lonlat(crs, transform, corners_px)
    ring = [lonlat[0], lonlat[3], lonlat[2], lonlat[1], lonlat[0]]  # counter-clockwise
    footprint = {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
    lons = [p[0] for p in lonlat]
    lats = [p[1] for p in lonlat]
    scene = SampleScene(
        scene_id=scene_id,
        directory=out_dir,
        bands=bands,
        xml=xmls,
        truth=truth_path,
        thumbnail=thumb_path,
        width=width,
        height=height,
        transform=transform,
        crs=crs,
        footprint=footprint,
        bbox=(min(lons), min(lats), max(lons), max(lats)),
        acquired=acquired,
        sun_elevation=sun_elevation,
        sun_azimuth=sun_azimuth,
        path=path,
        row=row,
        gains=gains,
        with_gains=with_gains,
        dtype=dtype,
        class_counts={int(c): int(n) for c, n in enumerate(counts) if n},
    )
    for number, key in enumerate(BAND_KEYS, start=1):
        write_inpe_xml(scene, number, xmls[key], corners_px=corners_px)
    return scene


def _to_lonlat(
    crs: CRS, transform: Affine, points: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    xs, ys = zip(*(transform @ p for p in points), strict=True)
    lons, lats = warp_transform(crs, CRS.from_epsg(4326), list(xs), list(ys))
    return [(round(lon, 6), round(lat, 6)) for lon, lat in zip(lons, lats, strict=True)]


def _write_png(path: Path, rgb: NDArray[np.uint8]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="PNG", width=rgb.shape[2], height=rgb.shape[1], count=3, dtype="uint8"
        ) as dst:
            dst.write(rgb)
    aux = path.with_name(path.name + ".aux.xml")
    aux.unlink(missing_ok=True)


# --- INPE XML -----------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: object = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{XML_NAMESPACE}}}{tag}", attrib)
    if text is not None:
        element.text = str(text)
    return element


def _iso(when: datetime, digits: int = 6) -> str:
    text = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - 6 + digits] if digits else text[:-7]


def write_inpe_xml(
    scene: SampleScene,
    band: int,
    out: Path,
    *,
    corners_px: list[tuple[float, float]] | None = None,
) -> Path:
    """Write the INPE "prdf" XML of one band of `scene` (structure of the real WPM L4 files).

    Carries absoluteCalibrationCoefficient for bands 1..4 only when `scene.with_gains`.
    `corners_px` are the footprint's (col, row) corners UL, UR, LR, LL (for imageData).
    """
    ET.register_namespace("", XML_NAMESPACE)
    root = ET.Element(f"{{{XML_NAMESPACE}}}prdf", {"generator": "stacmask.demo.samples"})
    satellite = _sub(root, "satellite")
    _sub(satellite, "name", "CBERS")
    _sub(satellite, "number", "4A")
    _sub(satellite, "instrument", "WPM", channel="1")
    _sub(root, "imageMode", "VIEW")
    available = _sub(root, "availableBands")
    for number in range(5):
        _sub(available, "band", number)
    begin = scene.acquired - timedelta(seconds=6.861)
    end = scene.acquired + timedelta(seconds=6.861)
    viewing = _sub(root, "viewing")
    for tag, when in (("begin", begin), ("center", scene.acquired), ("end", end)):
        _sub(viewing, tag, _iso(when, 3))

    image = _sub(root, "image")
    _sub(image, "processingStation", "Sao Jose dos Campos")
    _sub(image, "processingTime", _iso(scene.acquired + timedelta(hours=15)))
    _sub(image, "level", 4)
    _sub(image, "columns", scene.width)
    _sub(image, "lines", scene.height)
    _sub(image, "verticalPixelSize", f"{abs(scene.transform.e):.6f}")
    _sub(image, "horizontalPixelSize", f"{scene.transform.a:.6f}")
    _sub(image, "orbitDirection", "Descending")
    stamp = _sub(image, "timeStamp")
    for tag, when in (("begin", begin), ("center", scene.acquired), ("end", end)):
        _sub(stamp, tag, _iso(when))
    _sub(image, "path", scene.path)
    _sub(image, "row", scene.row)
    sun = _sub(image, "sunPosition")
    _sub(sun, "elevation", f"{scene.sun_elevation:.4f}")
    _sub(sun, "sunAzimuth", f"{scene.sun_azimuth:.4f}")
    if scene.with_gains:
        coefficients = _sub(image, "absoluteCalibrationCoefficient")
        for number, gain in enumerate(scene.gains, start=1):
            _sub(coefficients, "band", f"{gain:.6f}", name=str(number))

    w, h = scene.width, scene.height
    raster_corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    raster_corners.append((w / 2, h / 2))
    _corner_block(_sub(image, "boundingBox"), scene, raster_corners)
    if corners_px is not None:
        cx = sum(p[0] for p in corners_px) / 4
        cy = sum(p[1] for p in corners_px) / 4
        _corner_block(_sub(image, "imageData"), scene, [*corners_px, (cx, cy)])
    _sub(image, "datumName", "WGS84")
    _sub(image, "projectionName", "UTM")
    _sub(image, f"band{band}", f"/sge/TIFF/CBERS4A/{scene.scene_id}_BAND{band}.tif")
    ET.indent(root, space="  ")
    out.write_bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n")
    return out


def _corner_block(
    parent: ET.Element, scene: SampleScene, corners: list[tuple[float, float]]
) -> None:
    lonlat = _to_lonlat(scene.crs, scene.transform, corners)
    for name, (col, line), (lon, lat) in zip(
        ("UL", "UR", "LR", "LL", "CT"), corners, lonlat, strict=True
    ):
        x, y = scene.transform @ (col, line)
        corner = _sub(parent, name)
        _sub(corner, "line", f"{line:.6f}")
        _sub(corner, "column", f"{col:.6f}")
        _sub(corner, "latitude", f"{lat:.6f}")
        _sub(corner, "longitude", f"{lon:.6f}")
        _sub(corner, "northing", round(y))
        _sub(corner, "easting", round(x))


# --- STAC item ----------------------------------------------------------------------------------


def inpe_relative_dir(acquired: datetime, path: int, row: int) -> str:
    """Folder of a scene's files in INPE's data tree, relative to its data root.

    e.g. CB4A-WPM-L4-DN/2021_07/CBERS_4A_WPM_RAW_2021_07_12.13_25_00_ETC2/212_132_0/4_BC_UTM_WGS84
    """
    t = acquired.astimezone(timezone.utc)
    start = (t - timedelta(minutes=5)).replace(second=0, microsecond=0)
    start = start.replace(minute=start.minute - start.minute % 5)
    raw = f"CBERS_4A_WPM_RAW_{start:%Y_%m_%d.%H_%M_%S}_ETC2"
    return f"CB4A-WPM-L4-DN/{t:%Y_%m}/{raw}/{path:03d}_{row:03d}_0/4_BC_UTM_WGS84"


def inpe_data_path(scene: SampleScene) -> str:
    """`inpe_relative_dir` of a scene: where BDC's band hrefs would put its files."""
    return inpe_relative_dir(scene.acquired, scene.path, scene.row)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_item(
    scene: SampleScene,
    base_url: str,
    collection: str = DEFAULT_COLLECTION,
    *,
    path_prefix: str | None = None,
) -> dict[str, Any]:
    """STAC item dict for `scene` in INPE BDC's layout (STAC 1.0.0, `path`/`row` strings),
    hrefs absolute under `base_url`.

    Asset hrefs are <base_url>/<path_prefix>/<file>, path_prefix defaulting to
    "data/" + inpe_data_path(scene). Links self/parent/collection/root point at a STAC API
    rooted at base_url (as SampleStacApi serves it).
    """
    base = base_url.rstrip("/")
    prefix = (path_prefix if path_prefix is not None else f"data/{inpe_data_path(scene)}").strip(
        "/"
    )
    data = f"{base}/{prefix}"
    begin = scene.acquired - timedelta(seconds=7)
    end = scene.acquired + timedelta(seconds=7)
    created = scene.acquired + timedelta(days=1)
    common_names = ("blue", "green", "red", "nir")
    assets: dict[str, Any] = {}
    for number, key in enumerate(BAND_KEYS, start=1):
        assets[key] = {
            "href": f"{data}/{scene.bands[key].name}",
            "type": GEOTIFF_MEDIA_TYPE,
            "title": f"Band {number} ({common_names[number - 1]})",
            "roles": ["data"],
            "eo:bands": [{"name": key, "common_name": common_names[number - 1]}],
        }
    for key in BAND_KEYS:
        assets[f"{key}_xml"] = {
            "href": f"{data}/{scene.xml[key].name}",
            "type": "application/xml",
            "title": f"{key} XML metadata",
            "roles": ["metadata"],
        }
    assets["thumbnail"] = {
        "href": f"{data}/{scene.thumbnail.name}",
        "type": "image/png",
        "title": "Thumbnail",
        "roles": ["thumbnail"],
    }
    item_url = f"{base}/collections/{collection}/items/{scene.scene_id}"
    return {
        "type": "Feature",
        "stac_version": "1.0.0",  # as BDC answers
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.0.0/schema.json"],
        "id": scene.scene_id,
        "collection": collection,
        "geometry": scene.footprint,
        "bbox": list(scene.bbox),
        "properties": {
            "datetime": _rfc3339(scene.acquired),
            "start_datetime": _rfc3339(begin),
            "end_datetime": _rfc3339(end),
            "created": _rfc3339(created),
            "updated": _rfc3339(created),
            "platform": "CBERS-4A",
            "instruments": ["WPM"],
            "constellation": "CBERS",
            "eo:cloud_cover": 0,
            # BDC writes path and row as strings; the CBERS sensor publishes them as integers
            # (and cbers:path / cbers:row from the scene id).
            "path": str(scene.path),
            "row": str(scene.row),
        },
        "assets": assets,
        "links": [
            {"rel": "self", "href": item_url, "type": "application/geo+json"},
            {
                "rel": "parent",
                "href": f"{base}/collections/{collection}",
                "type": "application/json",
            },
            {
                "rel": "collection",
                "href": f"{base}/collections/{collection}",
                "type": "application/json",
            },
            {"rel": "root", "href": f"{base}/", "type": "application/json"},
        ],
    }
