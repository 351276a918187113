"""The demo's stand-in for INPE: synthetic scenes as a static source catalog.

`write_source_catalog` writes sample scenes (stacmask.demo.samples) where INPE keeps its files
(`CB4A-WPM-L4-DN/YYYY_MM/CBERS_4A_WPM_RAW_.../PPP_RRR_0/4_BC_UTM_WGS84/`) and a static STAC
catalog over them: `catalog.json`, the `CB4A-WPM-L4-DN-1` collection and one item per scene in
Brazil Data Cube's layout (BAND1..BAND4, BANDn_xml, thumbnail), with relative hrefs. Served by
`stacmask serve`, it is a STAC API like INPE's that `stacmask build` searches.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

from stacmask.constants import DEFAULT_COLLECTION
from stacmask.demo.samples import (
    SampleScene,
    inpe_relative_dir,
    sample_item,
    scene_id_for,
    write_sample_scene,
)

#: Cloud fractions of the demo scenes, cycled: clear, partly cloudy, overcast, broken.
DEMO_CLOUD_FRACTIONS: Final = (0.0, 0.25, 0.7, 0.45)
#: A placeholder root for `sample_item`'s absolute hrefs, made relative afterwards.
_PLACEHOLDER: Final = "http://placeholder.invalid"


def source_collection(collection_id: str = DEFAULT_COLLECTION) -> dict[str, Any]:
    """An INPE-like collection for CBERS-4A WPM L4 DN scenes (extent filled from the scenes)."""
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "stac_extensions": [],
        "id": collection_id,
        "title": "CBERS-4A/WPM Level-4 DN - Cloud Optimized GeoTIFF",
        "description": (
            "CBERS-4A WPM Level-4 (orthorectified) multispectral scenes in digital numbers, "
            "with per-band XML metadata (synthetic sample written by stacmask demo)."
        ),
        "license": "CC-BY-SA-4.0",
        "keywords": ["CBERS-4A", "WPM", "L4", "DN"],
        "providers": [
            {
                "name": "INPE",
                "roles": ["producer", "processor", "licensor", "host"],
                "url": "https://data.inpe.br/bdc",
            }
        ],
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2019-12-20T00:00:00Z", None]]},
        },
        "summaries": {"platform": ["CBERS-4A"], "instruments": ["WPM"]},
        "links": [],
    }


def demo_scenes(work_dir: Path, n_scenes: int, size: int, seed: int) -> list[SampleScene]:
    """Write the demo's scenes under `work_dir`, in INPE's folder layout.

    Scene i is acquired 2021-01-04 + 5 i days on path 221 + i % 3, row 116 + i, with cloud
    fraction DEMO_CLOUD_FRACTIONS[i % 4] and neighbouring footprints.
    """
    first = datetime(2021, 1, 4, 13, 30, tzinfo=timezone.utc)
    scenes = []
    for i in range(n_scenes):
        acquired = first + timedelta(days=5 * i)
        path, row = 221 + (i % 3), 116 + i
        scenes.append(
            write_sample_scene(
                work_dir / inpe_relative_dir(acquired, path, row),
                scene_id_for(acquired, path, row),
                width=size,
                height=size,
                seed=seed + i,
                cloud_fraction=DEMO_CLOUD_FRACTIONS[i % len(DEMO_CLOUD_FRACTIONS)],
                acquired=acquired,
                origin=(300_000.0 + 40_000.0 * (i % 3), 8_300_000.0 - 30_000.0 * i),
                dtype="int16",  # BDC's files: int16 strips
                stripped=True,
            )
        )
    return scenes


def write_source_catalog(
    root: Path,
    *,
    n_scenes: int = 3,
    size: int = 1024,
    seed: int = 2024,
    collection_id: str = DEFAULT_COLLECTION,
) -> Path:
    """Write the scenes and a static STAC catalog over them at `root`; return `root`."""
    root = Path(root).resolve()
    scenes = demo_scenes(root, n_scenes, size, seed)
    collection = source_collection(collection_id)
    collection["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
    ]
    for scene in scenes:
        item = _relative_item(scene, root, collection_id)
        folder = root / collection_id / scene.scene_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{scene.scene_id}.json").write_text(json.dumps(item, indent=2) + "\n")
        collection["links"].append(
            {
                "rel": "item",
                "href": f"./{scene.scene_id}/{scene.scene_id}.json",
                "type": "application/geo+json",
                "title": scene.scene_id,
            }
        )
    if scenes:
        collection["extent"]["spatial"]["bbox"] = [
            [
                min(s.bbox[0] for s in scenes),
                min(s.bbox[1] for s in scenes),
                max(s.bbox[2] for s in scenes),
                max(s.bbox[3] for s in scenes),
            ]
        ]
    (root / collection_id).mkdir(parents=True, exist_ok=True)
    (root / collection_id / "collection.json").write_text(json.dumps(collection, indent=2) + "\n")
    catalog = {
        "type": "Catalog",
        "stac_version": "1.1.0",
        "id": "stacmask-demo-source",
        "title": "stacmask demo source scenes",
        "description": "Synthetic CBERS-4A WPM scenes in INPE's layout, the demo's source.",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {
                "rel": "child",
                "href": f"./{collection_id}/collection.json",
                "type": "application/json",
                "title": collection_id,
            },
        ],
    }
    (root / "catalog.json").write_text(json.dumps(catalog, indent=2) + "\n")
    return root


def _relative_item(scene: SampleScene, root: Path, collection_id: str) -> dict[str, Any]:
    """The scene's BDC-style item, its asset hrefs relative to the item's own file."""
    item = sample_item(scene, _PLACEHOLDER, collection_id)
    folder = root / collection_id / scene.scene_id
    for asset in item["assets"].values():
        name = asset["href"].rsplit("/", 1)[-1]
        asset["href"] = os.path.relpath(scene.directory / name, folder)
    item["links"] = [
        {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../collection.json", "type": "application/json"},
        {"rel": "collection", "href": "../collection.json", "type": "application/json"},
    ]
    return item
