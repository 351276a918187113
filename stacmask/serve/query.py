"""Item selection over a catalog's index, shared by `serve`, `search` and `export`.

One implementation, so a query gives the same items in the same order everywhere: a checked
`Search` (stacmask.serve.params) becomes one SQL query over the catalog's DuckDB index
(stacmask.catalog.index; the filter through stacmask.serve.cql2_sql), sorted by `sortby`, then
newest first, then collection and id, and paged by offset. The items of a page are read from
their JSON files, which stay the source of truth.
"""

from __future__ import annotations

import copy
import os
import posixpath
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import shapely

from stacmask.catalog.index import CatalogIndex, quote_name
from stacmask.catalog.walk import JsonDict
from stacmask.errors import QueryError
from stacmask.serve.cql2_sql import CORE_KINDS, Translation
from stacmask.serve.params import Search, SortField, build_search, parse_search

__all__ = [
    "CatalogIndex",
    "IndexedItem",
    "JsonDict",
    "SearchResult",
    "build_search",
    "item_with_local_paths",
    "parse_search",
    "resolve_hrefs",
    "search_page",
    "select",
    "url_resolver",
]


@dataclass(frozen=True)
class IndexedItem:
    """One matching item: its JSON (read from its file) and where it lies."""

    item: JsonDict
    path: Path  # absolute path of the item JSON file
    relpath: str  # the same path relative to the catalog folder, "/" separators
    collection: str | None

    @property
    def id(self) -> str:
        """The item id."""
        return str(self.item["id"])


@dataclass(frozen=True)
class Hit:
    """A matching item as the index knows it (its JSON not read)."""

    relpath: str
    collection: str | None
    id: str


@dataclass(frozen=True)
class SearchResult:
    """One page of matching items (not read yet), and how many match in all."""

    items: tuple[Hit, ...]
    matched: int
    search: Search

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None on the last page."""
        following = self.search.offset + self.search.limit
        return following if following < self.matched else None

    @property
    def previous_offset(self) -> int | None:
        """Offset of the previous page, or None on the first page."""
        if self.search.offset <= 0:
            return None
        return max(0, self.search.offset - self.search.limit)


# --- SQL ---------------------------------------------------------------------------------------
def _area_sql(translation: Translation, area: Any) -> str:
    """Items whose footprint intersects `area` (a bbox prefilter, then the exact test)."""
    west, south, east, north = area.bounds
    translation.spatial = True
    translation.params += [west, east, south, north, shapely.to_wkb(area)]
    return (
        "(bbox.xmax >= ? AND bbox.xmin <= ? AND bbox.ymax >= ? AND bbox.ymin <= ? "
        "AND ST_Intersects(geometry, ST_GeomFromWKB(?)))"
    )


def where_clause(search: Search, kinds: dict[str, str]) -> Translation:
    """The WHERE clause (and its parameters) selecting what `search` asks for."""
    translation = Translation(kinds)
    parts: list[str] = []
    if search.ids is not None:
        parts.append(f"id IN ({', '.join('?' * len(search.ids))})")
        translation.params += search.ids
    if search.collections is not None:
        parts.append(f"collection IN ({', '.join('?' * len(search.collections))})")
        translation.params += search.collections
    area = search.bbox if search.bbox is not None else search.intersects
    if area is not None:
        parts.append(_area_sql(translation, area))
    if search.datetime is not None:
        start, end = search.datetime
        if end is not None:
            parts.append("_start <= CAST(? AS TIMESTAMPTZ)")
            translation.params.append(end.isoformat())
        if start is not None:
            parts.append("_end >= CAST(? AS TIMESTAMPTZ)")
            translation.params.append(start.isoformat())
        parts.append("_start IS NOT NULL")
    if search.filter is not None:
        parts.append(translation.where(search.filter))
    translation.sql = " AND ".join(parts) or "TRUE"
    return translation


def order_clause(sortby: Sequence[SortField], kinds: dict[str, str]) -> str:
    """ORDER BY: the sortby fields, then datetime newest first, then collection and id.

    Items missing a field go last whatever the direction; a field no item has sorts nothing.
    """
    terms: list[str] = []
    named = {term.field for term in sortby}
    for term in sortby:
        kind = CORE_KINDS.get(term.field) or kinds.get(term.field)
        if kind == "geometry":
            raise QueryError(f"sortby: cannot sort by {term.field!r}")
        if kind is not None:
            terms.append(f"{quote_name(term.field)} {term.direction.upper()} NULLS LAST")
    if "datetime" not in named and "datetime" in kinds:
        terms.append('"datetime" DESC NULLS LAST')
    terms += ["collection ASC NULLS LAST", "id ASC"]
    return ", ".join(terms)


#: Recent selections kept whole, so the next pages of a query (clients page through one) are a
#: slice, not a new scan; results over CACHE_MAX_HITS items are paged in SQL instead.
CACHE_ENTRIES = 64
CACHE_MAX_HITS = 200_000


class _Selections:
    """An LRU of recent selections, emptied whenever the index changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[Any, ...], list[Hit]] = OrderedDict()
        self.version = -1

    def get(self, version: int, key: tuple[Any, ...]) -> list[Hit] | None:
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.version = version
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, version: int, key: tuple[Any, ...], hits: list[Hit]) -> None:
        with self.lock:
            if version == self.version:
                self.entries[key] = hits
                while len(self.entries) > CACHE_ENTRIES:
                    self.entries.popitem(last=False)


_SELECTIONS: weakref.WeakKeyDictionary[CatalogIndex, _Selections] = weakref.WeakKeyDictionary()


def _query(
    index: CatalogIndex, search: Search, *, limit: int | None, offset: int
) -> tuple[list[Hit], int]:
    """Matching items (one page, or all with `limit` None) and how many match in all."""
    index.refresh_if_due()
    kinds = index.kinds
    translation = where_clause(search, kinds)
    order = order_clause(search.sortby, kinds)
    where, params = translation.sql, translation.params
    selections = _SELECTIONS.setdefault(index, _Selections())
    with index.commit_lock:
        version = index.version
    key = (where, tuple(map(repr, params)), order)
    cached = selections.get(version, key)
    if cached is not None:
        end = None if limit is None else offset + limit
        return cached[offset:end], len(cached)
    cursor = index.cursor()
    try:
        if translation.spatial:
            index.load_spatial(cursor)
        counted = cursor.execute(f"SELECT count(*) FROM items WHERE {where}", params).fetchone()
        matched = int(counted[0]) if counted else 0
        whole = matched <= CACHE_MAX_HITS
        page = "" if whole else f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit else ""
        rows = cursor.execute(
            f"SELECT _relpath, collection, id FROM items WHERE {where} ORDER BY {order}{page}",
            params,
        ).fetchall()
    finally:
        cursor.close()
    hits = [Hit(str(rel), collection, str(item_id)) for rel, collection, item_id in rows]
    if not whole:
        return hits, matched
    with index.commit_lock:
        unchanged = index.version == version  # else the rows may be older than the version
    if unchanged:
        selections.put(version, key, hits)
    end = None if limit is None else offset + limit
    return hits[offset:end], matched


def select(index: CatalogIndex, search: Search) -> list[Hit]:
    """Every matching item, sorted (sortby, then datetime newest first, collection and id)."""
    return _query(index, search, limit=None, offset=0)[0]


def load(index: CatalogIndex, hits: Sequence[Hit]) -> list[IndexedItem]:
    """The items of `hits`, read from their files (one that vanished since is left out)."""
    items = []
    for hit in hits:
        item = index.read_item(hit.relpath)
        if item is not None:
            items.append(IndexedItem(item, index.root / hit.relpath, hit.relpath, hit.collection))
    return items


def search_page(index: CatalogIndex, search: Search) -> SearchResult:
    """The page of matching items that `search.offset` and `search.limit` ask for."""
    hits, matched = _query(index, search, limit=search.limit, offset=search.offset)
    return SearchResult(tuple(hits), matched, search)


def find_item(index: CatalogIndex, collection: str, item_id: str) -> IndexedItem | None:
    """One item by collection and id."""
    found = load(index, select(index, Search(ids=(item_id,), collections=(collection,))))
    return found[0] if found else None


# --- presenting items --------------------------------------------------------------------------
def resolve_hrefs(
    item: JsonDict, resolve: Callable[[str], str], *, in_place: bool = False
) -> JsonDict:
    """`item` (a deep copy unless `in_place`) with relative link and asset hrefs resolved."""
    result = item if in_place else copy.deepcopy(item)
    for link in result.get("links", []):
        if _is_relative(link.get("href", "")):
            link["href"] = resolve(link["href"])
    for asset in (result.get("assets") or {}).values():
        if _is_relative(asset.get("href", "")):
            asset["href"] = resolve(asset["href"])
    return result


def url_resolver(folder_url: str, relpath: str) -> Callable[[str], str]:
    """Resolve hrefs relative to the file `relpath` of a catalog served at `folder_url`.

    Plain path arithmetic (urljoin is ten times slower, and every href here is relative).
    """
    folder = posixpath.dirname(relpath)

    def resolve(href: str) -> str:
        path = posixpath.normpath(posixpath.join(folder, unquote(urlsplit(href).path)))
        return folder_url + quote(path)

    return resolve


def _is_relative(href: str) -> bool:
    parts = urlsplit(href)
    return bool(href) and not parts.scheme and not parts.netloc and not href.startswith("/")


def item_with_local_paths(entry: IndexedItem) -> JsonDict:
    """The item with relative hrefs turned into absolute local paths (for `stacmask search`)."""
    folder = entry.path.parent

    def resolve(href: str) -> str:
        return os.path.normpath(folder / urlsplit(href).path)

    item = resolve_hrefs(entry.item, resolve, in_place=True)
    item.setdefault("collection", entry.collection)
    return item
