"""A small catalog in the exact layout `stacmask build` writes (HELPERS.md), for serve tests.

Six CBERS-4A WPM mask items on two paths and two rows, over December 2020 to February
2021, with different cloud, shadow and water covers, tiny uint8 COG masks and PNG
previews. Used until the real build is available to the serve tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pystac
import rasterio
from rasterio.transform import from_bounds

from stacmask.constants import (
    CLASS_NAMES,
    CLEAR,
    CLOUD,
    COG_MEDIA_TYPE,
    MASK_ASSET,
    NODATA,
    PREVIEW_ASSET,
    PROP_BAND_MISMATCH,
    PROP_CALIBRATION,
    PROP_METHOD,
    PROP_SHADOW_COVER,
    PROP_VALID_PIXELS,
    PROP_WATER_COVER,
    SHADOW,
    WATER,
)

COLLECTION_ID = "CB4A-WPM-L4-DN-1-mask"
SIZE = 64


@dataclass(frozen=True)
class Scene:
    """What differs between the test scenes."""

    date: str
    path: int
    row: int
    cloud: float
    shadow: float
    water: float

    @property
    def id(self) -> str:
        """Item id in INPE's pattern."""
        return f"CBERS_4A_WPM_{self.date.replace('-', '')}_{self.path:03d}_{self.row:03d}_L4"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """A footprint per path/row: paths step west, rows step south."""
        west = -44.0 - (self.path - 221) * 1.5
        north = -4.0 - (self.row - 120) * 1.0
        return (west, north - 1.0, west + 1.0, north)


SCENES: tuple[Scene, ...] = (
    Scene("2020-12-20", 221, 120, 0.0, 0.0, 4.0),
    Scene("2021-01-05", 221, 120, 10.5, 2.5, 3.0),
    Scene("2021-01-10", 221, 121, 42.0, 9.0, 0.0),
    Scene("2021-01-15", 222, 120, 1.0, 0.0, 12.0),
    Scene("2021-01-28", 221, 120, 3.2, 0.5, 3.1),
    Scene("2021-02-03", 221, 120, 14.9, 3.0, 2.0),
)

EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
]


def _mask(scene: Scene) -> np.ndarray:
    """A mask whose class shares follow the scene's covers (no-data in one corner)."""
    data = np.full((SIZE, SIZE), CLEAR, dtype=np.uint8)
    flat = data.reshape(-1)
    valid = SIZE * SIZE - 8 * 8
    start = 0
    for code, share in ((CLOUD, scene.cloud), (SHADOW, scene.shadow), (WATER, scene.water)):
        count = round(valid * share / 100)
        flat[start : start + count] = code
        start += count
    data[-8:, -8:] = NODATA
    return data


def _write_mask(path: Path, scene: Scene) -> None:
    west, south, east, north = scene.bounds
    profile = {
        "driver": "COG",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "dtype": "uint8",
        "nodata": NODATA,
        "crs": "EPSG:4326",
        "transform": from_bounds(west, south, east, north, SIZE, SIZE),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(_mask(scene), 1)


def _write_preview(path: Path, scene: Scene) -> None:
    mask = _mask(scene)
    rgba = np.zeros((4, SIZE, SIZE), dtype=np.uint8)
    for code, (_, _, colour) in CLASS_NAMES.items():
        rgb = [int(colour[i : i + 2], 16) for i in (0, 2, 4)]
        for band in range(3):
            rgba[band][mask == code] = rgb[band]
    rgba[3] = np.where(mask == NODATA, 0, 255)
    with rasterio.open(
        path, "w", driver="PNG", width=SIZE, height=SIZE, count=4, dtype="uint8"
    ) as dst:
        dst.write(rgba)


def make_test_catalog(root: Path) -> Path:
    """Write the catalog under `root` and return `root`."""
    catalog = pystac.Catalog(
        id="stacmask-test",
        title="stacmask test masks",
        description="Cloud, shadow and water masks of CBERS-4A WPM scenes (test data).",
    )
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="CBERS-4A WPM masks",
        description="Cloud, cloud-shadow and water masks of CB4A-WPM-L4-DN-1 scenes.",
        extent=pystac.Extent(
            pystac.SpatialExtent([[-45.5, -6.0, -43.0, -4.0]]),
            pystac.TemporalExtent(
                [
                    [
                        datetime(2020, 12, 20, tzinfo=timezone.utc),
                        datetime(2021, 2, 4, tzinfo=timezone.utc),
                    ]
                ]
            ),
        ),
        license="CC-BY-SA-4.0",
    )
    catalog.add_child(collection)
    classes = [
        {"value": code, "name": name, "description": description, "color_hint": colour}
        for code, (name, description, colour) in CLASS_NAMES.items()
    ]
    for scene in SCENES:
        west, south, east, north = scene.bounds
        when = datetime.fromisoformat(f"{scene.date}T13:20:00+00:00")
        item = pystac.Item(
            id=scene.id,
            geometry={
                "type": "Polygon",
                "coordinates": [
                    [[west, south], [east, south], [east, north], [west, north], [west, south]]
                ],
            },
            bbox=[west, south, east, north],
            datetime=when,
            properties={
                "start_datetime": when.isoformat().replace("+00:00", "Z"),
                "end_datetime": (when + timedelta(seconds=20)).isoformat().replace("+00:00", "Z"),
                "eo:cloud_cover": scene.cloud,
                PROP_SHADOW_COVER: scene.shadow,
                PROP_WATER_COVER: scene.water,
                PROP_VALID_PIXELS: SIZE * SIZE - 64,
                PROP_METHOD: "notebook",
                PROP_BAND_MISMATCH: False,
                PROP_CALIBRATION: "default",
                "view:sun_elevation": 55.0,
                "view:sun_azimuth": 80.0,
                "proj:code": "EPSG:4326",
                "proj:shape": [SIZE, SIZE],
                "proj:bbox": [west, south, east, north],
                "processing:software": {"stacmask": "0.1.0"},
                "cbers:path": scene.path,
                "cbers:row": scene.row,
            },
            stac_extensions=list(EXTENSIONS),
        )
        item.add_link(
            pystac.Link(
                "derived_from",
                f"https://data.inpe.br/bdc/stac/v1/collections/CB4A-WPM-L4-DN-1/items/{scene.id}",
                media_type="application/geo+json",
            )
        )
        item.add_asset(
            MASK_ASSET,
            pystac.Asset(
                href=f"./{scene.id}_mask.tif",
                media_type=COG_MEDIA_TYPE,
                title="Cloud, shadow and water mask",
                roles=["data"],
                extra_fields={
                    "classification:classes": classes,
                    "raster:bands": [{"data_type": "uint8", "nodata": NODATA}],
                },
            ),
        )
        item.add_asset(
            PREVIEW_ASSET,
            pystac.Asset(
                href=f"./{scene.id}_preview.png",
                media_type="image/png",
                title="Preview",
                roles=["thumbnail"],
            ),
        )
        collection.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    for scene in SCENES:
        folder = root / COLLECTION_ID / scene.id
        _write_mask(folder / f"{scene.id}_mask.tif", scene)
        _write_preview(folder / f"{scene.id}_preview.png", scene)
    return root
