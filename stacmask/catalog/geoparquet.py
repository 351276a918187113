"""Export of a built catalog's items to stac-geoparquet (DuckDB, GeoPandas) and NDJSON (pgstac).

Items are those the catalog's collections link to, read from their JSON files. Relative hrefs
(assets, links) become absolute: file paths, or URLs under `base_url` when the catalog is
served from there. Each item gets a `self` link. Outputs are written atomically.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pystac.utils import is_absolute_href, make_absolute_href

from stacmask.catalog.folder import _read_json
from stacmask.errors import CatalogError, StacmaskError

#: Items per Arrow chunk staged on disk during the export (memory follows the chunk).
CHUNK_ITEMS = 8192


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    items: int
    collections: list[str]


class CatalogItems:
    """The collections and items of a catalog folder, with absolute hrefs."""

    def __init__(self, catalog: Path, base_url: str | None = None) -> None:
        self.catalog_path = catalog / "catalog.json" if catalog.is_dir() else catalog
        if not self.catalog_path.is_file():
            raise CatalogError(f"{self.catalog_path}: no catalog.json here")
        self.root = self.catalog_path.parent
        self.base_url = base_url.rstrip("/") + "/" if base_url else None

    def location(self, path: Path) -> str:
        """Where a file of the catalog is read from: a URL under base_url, else its path."""
        if self.base_url is None:
            return str(path.resolve())
        return self.base_url + path.resolve().relative_to(self.root.resolve()).as_posix()

    def collection_paths(self) -> Iterator[Path]:
        """collection.json files the root catalog links to as children."""
        for link in _read_json(self.catalog_path).get("links", []):
            if link.get("rel") == "child":
                yield self._linked(self.catalog_path, str(link["href"]))

    def collections(self) -> dict[str, dict[str, Any]]:
        """Collections by id, hrefs made absolute."""
        found = {}
        for path in self.collection_paths():
            collection = self._absolute(_read_json(path), path)
            found[str(collection["id"])] = collection
        return found

    def items(self) -> Iterator[dict[str, Any]]:
        """Every item linked from a collection, hrefs made absolute."""
        for collection_path in self.collection_paths():
            for link in _read_json(collection_path).get("links", []):
                if link.get("rel") == "item":
                    path = self._linked(collection_path, str(link["href"]))
                    yield self._absolute(_read_json(path), path)

    def _linked(self, source: Path, href: str) -> Path:
        if is_absolute_href(href):
            raise CatalogError(f"{source}: link {href!r} is not relative to the catalog folder")
        path = (source.parent / href).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise CatalogError(f"{source}: link {href!r} leaves the catalog folder")
        return path

    def _absolute(self, obj: dict[str, Any], path: Path) -> dict[str, Any]:
        start = self.location(path)
        for asset in obj.get("assets", {}).values():
            asset["href"] = make_absolute_href(asset["href"], start)
        links = [link for link in obj.get("links", []) if link.get("rel") != "self"]
        for link in links:
            link["href"] = make_absolute_href(link["href"], start)
        obj["links"] = [{"rel": "self", "href": start, "type": "application/json"}, *links]
        return obj


def export_items(
    catalog: Path,
    parquet: Path,
    *,
    ndjson: Path | None = None,
    base_url: str | None = None,
) -> ExportReport:
    """Write the catalog's items to a stac-geoparquet file (and NDJSON); return the counts.

    Items stream through: the Arrow schema is unified from chunks staged on disk, so memory
    follows the chunk, not the catalog.
    """
    try:
        import stac_geoparquet.arrow as sgpq
    except ImportError as exc:
        raise StacmaskError(
            "the geoparquet export needs stac-geoparquet: pip install 'stacmask[geoparquet]'"
        ) from exc
    source = CatalogItems(catalog, base_url)
    collections = source.collections()
    stream = source.items()
    first = next(stream, None)
    if first is None:
        raise CatalogError(f"{source.catalog_path}: the catalog has no items to export")
    parquet.parent.mkdir(parents=True, exist_ok=True)
    if ndjson is not None:
        ndjson.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=".stacmask-export-", dir=parquet.parent) as tmp,
        tempfile.TemporaryDirectory(
            prefix=".stacmask-export-", dir=(ndjson or parquet).parent
        ) as tmp_ndjson,
    ):
        staged_parquet = Path(tmp) / "items.parquet"
        staged_ndjson = Path(tmp_ndjson) / "items.ndjson"
        chunks = Path(tmp) / "chunks"
        chunks.mkdir()
        count = 0
        with staged_ndjson.open("w", encoding="utf-8") as lines:

            def items() -> Iterator[dict[str, Any]]:
                nonlocal count
                for item in itertools.chain([first], stream):
                    count += 1
                    if ndjson is not None:
                        lines.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
                        lines.write("\n")
                    yield item

            table = sgpq.parse_stac_items_to_arrow(
                items(), chunk_size=CHUNK_ITEMS, schema="ChunksToDisk", tmpdir=chunks
            )
        sgpq.to_parquet(table, staged_parquet, collections=collections)
        os.replace(staged_parquet, parquet)
        if ndjson is not None:
            os.replace(staged_ndjson, ndjson)
    return ExportReport(items=count, collections=sorted(collections))
