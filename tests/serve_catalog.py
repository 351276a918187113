"""A real mask catalog for the serve tests, made by `stacmask build` itself.

A source STAC API on 127.0.0.1 (`stacmask serve` in a subprocess, over a static source
catalog) serves six CB4A-WPM-L4-DN-1 scenes: two paths, two rows, December 2020 to February
2021, each a 160 x 160 crop of the real labelled Sentinel-2 scene in ../shared turned into
10-bit DN with no-data corners (tests/rasters.py). `stacmask build` masks them into the
catalog the tests serve; the covers in `Scene` are read back from the built items.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from rasterio.warp import transform_geom

from tests.rasters import dn_from_reflectance, write_bands
from tests.stac_server import serve_subprocess

SOURCE_COLLECTION = "CB4A-WPM-L4-DN-1"
COLLECTION_ID = f"{SOURCE_COLLECTION}-mask"
CROP = 160
PIXEL = 8.0
EPSG = 32723


@dataclass(frozen=True)
class SourceScene:
    """A source scene: acquisition date, path/row and which crop of the labelled scene."""

    date: str
    path: int
    row: int
    crop_row: int
    crop_col: int

    @property
    def id(self) -> str:
        """Item id in INPE's pattern."""
        return f"CBERS_4A_WPM_{self.date.replace('-', '')}_{self.path:03d}_{self.row:03d}_L4"

    @property
    def transform(self) -> Affine:
        """UTM 23S grid: paths step 50 km west, rows 50 km south, dates shift a little."""
        day = int(self.date[-2:])
        x0 = 560_000.0 - (self.path - 221) * 50_000.0 + day * 100.0
        y0 = 9_550_000.0 - (self.row - 120) * 50_000.0
        return Affine(PIXEL, 0.0, x0, 0.0, -PIXEL, y0)


SOURCE_SCENES: tuple[SourceScene, ...] = (
    SourceScene("2020-12-20", 221, 120, 320, 128),
    SourceScene("2021-01-05", 221, 120, 256, 128),
    SourceScene("2021-01-10", 221, 121, 64, 320),
    SourceScene("2021-01-15", 222, 120, 0, 64),
    SourceScene("2021-01-28", 221, 120, 64, 0),
    SourceScene("2021-02-03", 221, 120, 0, 256),
)


@dataclass(frozen=True)
class Scene:
    """A built mask item, as the tests check it (read from its JSON, not via stacmask)."""

    id: str
    date: str
    path: int
    row: int
    cloud: float
    shadow: float
    water: float
    bbox: tuple[float, float, float, float]


def _footprint(scene: SourceScene) -> dict[str, object]:
    t = scene.transform
    west, north = t.c, t.f
    east, south = west + CROP * PIXEL, north - CROP * PIXEL
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    utm = {"type": "Polygon", "coordinates": [ring]}
    return dict(transform_geom(f"EPSG:{EPSG}", "EPSG:4326", utm))


def make_source_catalog(root: Path, reflectance: Path) -> Path:
    """Write the static source catalog (bands as GeoTIFF DN) under `root`; return `root`."""
    with rasterio.open(reflectance) as src:
        full = src.read()
    catalog = pystac.Catalog(id="source", description="Test source scenes (CBERS-4A WPM DN).")
    collection = pystac.Collection(
        id=SOURCE_COLLECTION,
        title="CBERS-4A WPM L4 DN (test scenes)",
        description="Crops of a real labelled scene, as CBERS-4A WPM DN.",
        extent=pystac.Extent(
            pystac.SpatialExtent([[-46.0, -6.0, -43.0, -3.0]]),
            pystac.TemporalExtent([[datetime(2020, 12, 1, tzinfo=timezone.utc), None]]),
        ),
        license="CC-BY-SA-4.0",
    )
    catalog.add_child(collection)
    for scene in SOURCE_SCENES:
        geometry = _footprint(scene)
        coords = np.array(geometry["coordinates"][0])  # type: ignore[index]
        when = datetime.fromisoformat(f"{scene.date}T13:20:00+00:00")
        item = pystac.Item(
            id=scene.id,
            geometry=geometry,
            bbox=[float(v) for v in (*coords.min(axis=0), *coords.max(axis=0))],
            datetime=when,
            properties={
                "platform": "cbers-4a",
                "instruments": ["WPM"],
                "cbers:path": scene.path,
                "cbers:row": scene.row,
            },
            start_datetime=when,
            end_datetime=when + timedelta(seconds=20),
        )
        for band in range(1, 5):
            item.add_asset(
                f"BAND{band}",
                pystac.Asset(f"./{scene.id}_BAND{band}.tif", media_type="image/tiff"),
            )
        collection.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    for scene in SOURCE_SCENES:
        crop = full[
            :, scene.crop_row : scene.crop_row + CROP, scene.crop_col : scene.crop_col + CROP
        ]
        folder = root / SOURCE_COLLECTION / scene.id
        write_bands(
            folder,
            dn_from_reflectance(crop),
            name=scene.id,
            blocksize=128,
            transform=scene.transform,
            epsg=EPSG,
        )
    return root


def build_mask_catalog(source: Path, out: Path) -> Path:
    """Serve `source` with `stacmask serve` in a subprocess and run `stacmask build` on it."""
    from stacmask.constants import BAND_KEY_PRESETS
    from stacmask.pipeline.build import BuildOptions, build

    with serve_subprocess(source) as url:
        # The fast physical method: these catalogs test serving and querying, not masks (their
        # query cases expect the covers physical gives these scenes).
        options = BuildOptions(
            out=out,
            keys=BAND_KEY_PRESETS["bdc"],
            stac_url=url,
            collection=SOURCE_COLLECTION,
            method="physical",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no XML metadata: default gains, said once a scene
            report = build(options, echo=lambda _: None, progress=False)
    if not report.ok or len(report.done) != len(SOURCE_SCENES):
        raise RuntimeError(f"stacmask build failed: {report.failed}")
    return out


def load_scenes(catalog: Path) -> tuple[Scene, ...]:
    """The built items, read straight from their JSON files (layout of HELPERS.md)."""
    scenes = []
    for source in SOURCE_SCENES:
        path = catalog / COLLECTION_ID / source.id / f"{source.id}.json"
        item = json.loads(path.read_text())
        props = item["properties"]
        scenes.append(
            Scene(
                id=item["id"],
                date=props["datetime"][:10],
                path=props["cbers:path"],
                row=props["cbers:row"],
                cloud=props["eo:cloud_cover"],
                shadow=props["stacmask:shadow_cover"],
                water=props["stacmask:water_cover"],
                bbox=tuple(item["bbox"]),  # type: ignore[arg-type]
            )
        )
    return tuple(scenes)
