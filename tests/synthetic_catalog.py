"""Synthetic mask catalogs of any size, written as JSON directly (no rasters): for the index
tests and benchmarks/catalog.py.

Items look like `stacmask build`'s: INPE scene ids, a rotated footprint over central Brazil,
the covers, sun angles, path and row, a mask and preview asset (the files are not written) and
the catalog layout of stacmask.catalog.folder (one folder per item, linked from its collection).
Values follow from the item's number, so a catalog of n items is the same on every run.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

COLLECTION = "CB4A-WPM-L4-DN-1-mask"
FIRST_DAY = datetime(2020, 1, 1, 13, 30, tzinfo=timezone.utc)


def _cover(number: int, salt: int) -> float:
    """A repeatable pseudo-random percentage."""
    value = (number * 2654435761 + salt * 40503) % 100_003
    return round(value / 1000.03, 2)


def synthetic_item(number: int) -> dict[str, Any]:
    """Item number `number`: a scene of path 200-239, row 100-139, one day per 1,600 scenes."""
    path, row = 200 + number % 40, 100 + (number // 40) % 40
    day = FIRST_DAY + timedelta(days=number // 1600, minutes=(number % 1600) // 40)
    scene = f"CBERS_4A_WPM_{day:%Y%m%d}_{path:03d}_{row:03d}_L4"
    item_id = f"{scene}_{number:07d}"
    lon, lat = -70.0 + (path - 200) * 0.9, -5.0 - (row - 100) * 0.8
    angle = math.radians(9.0)
    corners = []
    for dx, dy in ((0, 0), (0.9, 0), (0.9, -0.8), (0, -0.8), (0, 0)):
        x = lon + dx * math.cos(angle) - dy * math.sin(angle)
        y = lat + dx * math.sin(angle) + dy * math.cos(angle)
        corners.append([round(x, 6), round(y, 6)])
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    stamp = day.strftime("%Y-%m-%dT%H:%M:%SZ")
    cloud = _cover(number, 1)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [corners]},
        "bbox": [min(xs), min(ys), max(xs), max(ys)],
        "properties": {
            "datetime": stamp,
            "start_datetime": stamp,
            "end_datetime": (day + timedelta(seconds=14)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "created": "2026-11-01T00:00:00Z",
            "platform": "CBERS-4A",
            "instruments": ["WPM"],
            "eo:cloud_cover": cloud,
            "stacmask:shadow_cover": round(_cover(number, 2) * cloud / 400, 2),
            "stacmask:water_cover": round(_cover(number, 3) / 20, 2),
            "stacmask:valid_pixels": 200_000_000 + number % 7919,
            "stacmask:method": "physical" if number % 5 else "notebook",
            "stacmask:band_mismatch": number % 97 == 0,
            "view:sun_elevation": round(40 + _cover(number, 4) / 4, 2),
            "view:sun_azimuth": round(40 + _cover(number, 5), 2),
            "cbers:path": path,
            "cbers:row": row,
            "processing:software": {"stacmask": "0.1.0"},
        },
        "assets": {
            "mask": {
                "href": f"./{item_id}_mask.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
            },
            "thumbnail": {
                "href": f"./{item_id}_preview.png",
                "type": "image/png",
                "roles": ["thumbnail"],
            },
        },
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../collection.json", "type": "application/json"},
            {"rel": "collection", "href": "../collection.json", "type": "application/json"},
            {
                "rel": "derived_from",
                "href": f"http://127.0.0.1:9/collections/CB4A-WPM-L4-DN-1/items/{scene}",
                "type": "application/geo+json",
            },
        ],
    }


def write_items(root: Path, numbers: range) -> list[str]:
    """Write the item files of `numbers` under `root/COLLECTION/`; return their ids."""
    ids = []
    for number in numbers:
        item = synthetic_item(number)
        folder = root / COLLECTION / item["id"]
        os.makedirs(folder, exist_ok=True)
        with open(folder / f"{item['id']}.json", "w", encoding="utf-8") as out:
            json.dump(item, out, separators=(",", ":"))
        ids.append(item["id"])
    return ids


def write_catalog(root: Path, count: int, *, start: int = 0) -> Path:
    """A catalog of items `start` .. `start + count - 1` at `root` (catalog and collection JSON)."""
    ids = write_items(root, range(start, start + count))
    link_items(root, ids)
    return root


def link_items(root: Path, ids: list[str], *, replace: bool = True) -> None:
    """Write catalog.json and collection.json linking `ids` (or adding them to the links)."""
    root.mkdir(parents=True, exist_ok=True)
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "synthetic",
        "title": "Synthetic mask catalog",
        "description": "Items written by tests/synthetic_catalog.py",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "child", "href": f"./{COLLECTION}/collection.json", "type": "application/json"},
        ],
    }
    (root / "catalog.json").write_text(json.dumps(catalog))
    path = root / COLLECTION / "collection.json"
    links: list[dict[str, str]] = []
    if not replace and path.exists():
        links = [link for link in json.loads(path.read_text())["links"] if link["rel"] == "item"]
    links += [
        {"rel": "item", "href": f"./{i}/{i}.json", "type": "application/geo+json", "title": i}
        for i in ids
    ]
    collection = {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": COLLECTION,
        "title": "Synthetic masks",
        "description": "Synthetic masks",
        "license": "other",
        "extent": {
            "spatial": {"bbox": [[-71.0, -38.0, -33.0, -4.0]]},
            "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
        },
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
            *links,
        ],
    }
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(json.dumps(collection))
    os.replace(tmp, path)
