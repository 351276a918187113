"""`stacmask export`: copy the masks of selected items out of a catalog, for GIS users.

Each mask COG is copied as `<item-id>_mask.tif` (a plain GeoTIFF reader opens it), next to
an `index.geojson` with one footprint per item, its properties and the file name, so a GIS
shows where each mask lies and what its cloud cover is.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stacmask.constants import EXPORT_INDEX_FILE, MASK_ASSET
from stacmask.errors import CatalogError
from stacmask.serve.query import CatalogIndex, IndexedItem, JsonDict


@dataclass(frozen=True)
class ExportResult:
    """What `export_masks` wrote."""

    masks: tuple[Path, ...]
    index: Path


def mask_path(index: CatalogIndex, entry: IndexedItem) -> Path:
    """The local mask file of an item; it must exist inside the catalog folder."""
    asset = (entry.item.get("assets") or {}).get(MASK_ASSET)
    if not asset or not asset.get("href"):
        raise CatalogError(f"{entry.path}: item {entry.id} has no {MASK_ASSET!r} asset")
    href = str(asset["href"])
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("/"):
        raise CatalogError(f"{entry.path}: mask href {href!r} is not relative to the catalog")
    path = (entry.path.parent / unquote(parts.path)).resolve()
    if not path.is_relative_to(index.root) or not path.is_file():
        raise CatalogError(f"{entry.path}: mask {href!r} is missing or outside the catalog")
    return path


def export_masks(
    index: CatalogIndex,
    entries: Sequence[IndexedItem],
    out_dir: Path | str,
    *,
    overwrite: bool = False,
) -> ExportResult:
    """Copy the masks of `entries` into `out_dir` and write `index.geojson` beside them.

    Every source is checked and no existing file is replaced (unless `overwrite`) before
    anything is copied, so a refused export leaves `out_dir` untouched.
    """
    out = Path(out_dir)
    plan: list[tuple[IndexedItem, Path, Path]] = []
    names: set[str] = set()
    for entry in entries:
        name = f"{entry.id}_mask.tif"
        if Path(name).name != name or name.startswith("."):
            raise CatalogError(f"{entry.path}: item id {entry.id!r} is not a safe file name")
        if name in names:
            raise CatalogError(f"{entry.path}: two selected items are named {entry.id!r}")
        names.add(name)
        plan.append((entry, mask_path(index, entry), out / name))
    index_file = out / EXPORT_INDEX_FILE
    if not overwrite:
        clashes = [str(p) for p in [index_file, *(target for _, _, target in plan)] if p.exists()]
        if clashes:
            raise CatalogError(
                f"{out}: would overwrite {', '.join(clashes[:3])}"
                f"{' ...' if len(clashes) > 3 else ''}; use --overwrite or another folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    features: list[JsonDict] = []
    for entry, source, target in plan:
        shutil.copyfile(source, target)
        features.append(
            {
                "type": "Feature",
                "id": entry.id,
                "geometry": entry.item.get("geometry"),
                "bbox": entry.item.get("bbox"),
                "properties": {
                    "id": entry.id,
                    "collection": entry.collection,
                    "mask_file": target.name,
                    **(entry.item.get("properties") or {}),
                },
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    index_file.write_text(json.dumps(collection, indent=2) + "\n", encoding="utf-8")
    return ExportResult(tuple(target for _, _, target in plan), index_file)
