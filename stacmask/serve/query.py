"""Item selection over a catalog written by `stacmask build`.

One implementation shared by `stacmask serve` (the STAC API), `stacmask search` and
`stacmask export`, so a query gives the same items, in the same order, everywhere.
The catalog is read once into a `CatalogIndex`; a `Search` (built from STAC API parameters
by `parse_search`) selects by bbox, intersects, datetime, ids, collections and a CQL2
filter (evaluated by the `cql2` package), sorts and pages.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import cql2
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from stacmask.constants import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    PERCENT_PROPERTIES,
    QUERYABLE_TITLES,
)
from stacmask.errors import CatalogError, QueryError, StacmaskWarning

JsonDict = dict[str, Any]
Direction = Literal["asc", "desc"]

#: Top-level item fields that filters and sortby may name besides the item properties.
CORE_FIELDS: tuple[str, ...] = ("id", "collection", "geometry", "datetime")
#: Properties that hold RFC 3339 timestamps: sorted as instants, not as strings.
TIME_FIELDS: frozenset[str] = frozenset(
    {"datetime", "start_datetime", "end_datetime", "created", "updated"}
)
#: Search parameters of the STAC API item search that stacmask implements.
SEARCH_PARAMETERS: frozenset[str] = frozenset(
    {
        "bbox",
        "intersects",
        "datetime",
        "ids",
        "collections",
        "limit",
        "token",
        "filter",
        "filter-lang",
        "filter-crs",
        "sortby",
    }
)
CRS84: tuple[str, ...] = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
)


# --- the index ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexedItem:
    """One item of the catalog with what the search needs precomputed."""

    item: JsonDict
    path: Path  # absolute, resolved path of the item JSON file
    relpath: str  # the same path relative to the catalog folder, with "/" separators
    collection: str | None
    geometry: BaseGeometry | None
    start: datetime | None
    end: datetime | None

    @property
    def id(self) -> str:
        """The item id."""
        return str(self.item["id"])


@dataclass(frozen=True)
class IndexedCollection:
    """One collection of the catalog: its JSON and where it lies."""

    collection: JsonDict
    path: Path
    relpath: str

    @property
    def id(self) -> str:
        """The collection id."""
        return str(self.collection["id"])


@dataclass(frozen=True)
class CatalogIndex:
    """Every collection and item reachable from a catalog's root `catalog.json`."""

    root: Path
    catalog: JsonDict
    collections: dict[str, IndexedCollection]
    items: tuple[IndexedItem, ...]
    queryables: dict[str, JsonDict] = field(default_factory=dict)

    @classmethod
    def load(cls, catalog_dir: Path | str) -> CatalogIndex:
        """Read `catalog_dir/catalog.json` and follow child and item links inside the folder.

        Links that leave the folder (absolute URLs, `..` past the root, symlinks leading
        out) are skipped with a warning: the server never reads outside the catalog.
        """
        root = Path(catalog_dir).resolve()
        catalog_file = root / "catalog.json"
        if not catalog_file.is_file():
            raise CatalogError(f"{catalog_file}: no catalog.json in the catalog folder")
        catalog = _read_json(catalog_file)
        collections: dict[str, IndexedCollection] = {}
        items: list[IndexedItem] = []
        seen: set[Path] = {catalog_file}
        pending: list[tuple[Path, JsonDict, str | None]] = [(catalog_file, catalog, None)]
        while pending:
            path, doc, parent_collection = pending.pop(0)
            for link in doc.get("links", []):
                rel = link.get("rel")
                if rel not in ("child", "item"):
                    continue
                target = _link_target(root, path, str(link.get("href", "")))
                if target is None or target in seen:
                    continue
                seen.add(target)
                child = _read_json(target)
                relpath = target.relative_to(root).as_posix()
                if child.get("type") == "Feature":
                    items.append(_index_item(child, target, relpath, parent_collection))
                elif child.get("type") == "Collection":
                    entry = IndexedCollection(child, target, relpath)
                    collections[entry.id] = entry
                    pending.append((target, child, entry.id))
                else:
                    pending.append((target, child, parent_collection))
        items.sort(key=lambda entry: (entry.collection or "", entry.id))
        return cls(root, catalog, collections, tuple(items), _queryables(items))

    def field_names(self) -> frozenset[str]:
        """Names a filter or sortby may use: core fields and every item property seen."""
        return frozenset(CORE_FIELDS) | frozenset(self.queryables)


def _read_json(path: Path) -> JsonDict:
    try:
        with path.open(encoding="utf-8") as stream:
            doc = json.load(stream)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: cannot read STAC JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: not a STAC object (JSON is not an object)")
    return doc


def _link_target(root: Path, source: Path, href: str) -> Path | None:
    """The resolved file a relative link points to, or None (with a warning) if outside root."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("/") or not href:
        warnings.warn(
            f"{source}: link {href!r} is not relative to the catalog; skipped",
            StacmaskWarning,
            stacklevel=3,
        )
        return None
    target = (source.parent / parts.path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        warnings.warn(
            f"{source}: link {href!r} leads outside the catalog folder or to no file; skipped",
            StacmaskWarning,
            stacklevel=3,
        )
        return None
    return target


def _index_item(
    item: JsonDict, path: Path, relpath: str, parent_collection: str | None
) -> IndexedItem:
    if "id" not in item:
        raise CatalogError(f"{path}: item has no id")
    props = item.get("properties") or {}
    try:
        geometry = shape(item["geometry"]) if item.get("geometry") else None
        instant = _parse_instant(props["datetime"]) if props.get("datetime") else None
        start = _parse_instant(props["start_datetime"]) if props.get("start_datetime") else None
        end = _parse_instant(props["end_datetime"]) if props.get("end_datetime") else None
    except (QueryError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CatalogError(f"{path}: unusable geometry or datetime ({exc})") from exc
    collection = item.get("collection") or parent_collection
    return IndexedItem(
        item=item,
        path=path,
        relpath=relpath,
        collection=str(collection) if collection else None,
        geometry=geometry,
        start=start or instant,
        end=end or instant,
    )


def _queryables(items: Iterable[IndexedItem]) -> dict[str, JsonDict]:
    """JSON-schema types of the item properties, as `/queryables` lists them."""
    kinds: dict[str, set[str]] = {}
    for entry in items:
        for name, value in (entry.item.get("properties") or {}).items():
            kinds.setdefault(name, set()).add(_json_type(name, value))
    result: dict[str, JsonDict] = {}
    for name in sorted(kinds):
        found = kinds[name] - {"null"}
        if found == {"integer", "number"}:
            found = {"number"}
        schema: JsonDict = {"title": QUERYABLE_TITLES.get(name, name)}
        if len(found) == 1:
            kind = found.pop()
            if kind == "date-time":
                schema.update(type="string", format="date-time")
            else:
                schema["type"] = kind
        if name in PERCENT_PROPERTIES:
            schema.update(minimum=0, maximum=100)
        result[name] = schema
    return result


def _json_type(name: str, value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "date-time" if name in TIME_FIELDS else "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- the request -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SortField:
    """One sortby term: a field name (without `properties.`) and a direction."""

    field: str
    direction: Direction = "asc"


@dataclass(frozen=True)
class Search:
    """A parsed item search; every field is optional and the fields combine with AND."""

    bbox: BaseGeometry | None = None
    intersects: BaseGeometry | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None
    ids: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    filter: cql2.Expr | None = None
    sortby: tuple[SortField, ...] = ()
    limit: int = DEFAULT_PAGE_LIMIT
    offset: int = 0

    def and_filter(self, expr: cql2.Expr) -> Search:
        """This search with `expr` ANDed to its filter."""
        if self.filter is None:
            return replace(self, filter=expr)
        both = {"op": "and", "args": [self.filter.to_json(), expr.to_json()]}
        return replace(self, filter=cql2.parse_json(json.dumps(both)))


def parse_bbox(value: str | Sequence[Any]) -> BaseGeometry:
    """A bbox `west,south,east,north` (or 6 numbers with heights) as a lon/lat geometry.

    A west edge greater than the east edge crosses the antimeridian (STAC API rule).
    """
    raw = value.split(",") if isinstance(value, str) else list(value)
    try:
        numbers = [float(part) for part in raw]
    except (TypeError, ValueError):
        raise QueryError(f"bbox {value!r}: expected 4 or 6 comma-separated numbers") from None
    if len(numbers) not in (4, 6) or not all(math.isfinite(n) for n in numbers):
        raise QueryError(f"bbox {value!r}: expected 4 or 6 finite numbers")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    west, south, east, north = numbers
    if not (-90 <= south <= north <= 90):
        raise QueryError(
            f"bbox {value!r}: south and north must satisfy -90 <= south <= north <= 90"
        )
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise QueryError(f"bbox {value!r}: west and east must lie in [-180, 180]")
    if west > east:  # crosses the antimeridian
        return shapely.union(box(west, south, 180, north), box(-180, south, east, north))
    return box(west, south, east, north)


def parse_intersects(value: str | Mapping[str, Any]) -> BaseGeometry:
    """A GeoJSON geometry (object or JSON text) as a shapely geometry."""
    try:
        doc = json.loads(value) if isinstance(value, str) else dict(value)
        geometry = shape(doc)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise QueryError(f"intersects: not a GeoJSON geometry ({exc})") from None
    if geometry.is_empty or not geometry.is_valid:
        raise QueryError(f"intersects: empty or invalid geometry ({explain_validity(geometry)})")
    return geometry


#: Date-only forms, each standing for a whole year, month or day.
_PERIODS: tuple[tuple[int, str], ...] = ((4, "%Y"), (7, "%Y-%m"), (10, "%Y-%m-%d"))


def _parse_instant(text: str, *, end_of_period: bool = False) -> datetime:
    """An RFC 3339 timestamp, or YYYY, YYYY-MM or YYYY-MM-DD, as an aware UTC datetime.

    A date-only value gives the first instant of its period, or the last with `end_of_period`.
    """
    value = str(text).strip()
    try:
        form = next((fmt for length, fmt in _PERIODS if len(value) == length), None)
        if form is not None:
            first = datetime.strptime(value, form).replace(tzinfo=timezone.utc)
            if not end_of_period:
                return first
            if form == "%Y":
                following = first.replace(year=first.year + 1)
            elif form == "%Y-%m":
                following = (first + timedelta(days=32)).replace(day=1)
            else:
                following = first + timedelta(days=1)
            return following - timedelta(microseconds=1)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(
            f"datetime {text!r}: not an RFC 3339 timestamp nor YYYY, YYYY-MM or YYYY-MM-DD"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def parse_datetime(value: str) -> tuple[datetime | None, datetime | None]:
    """A STAC API datetime: an instant, or an interval `start/end` with `..` or empty open ends.

    A date-only value (YYYY, YYYY-MM, YYYY-MM-DD) stands for its whole year, month or day.
    """
    text = value.strip()
    if not text:
        raise QueryError("datetime: empty value")
    if "/" not in text:
        return _parse_instant(text), _parse_instant(text, end_of_period=True)
    parts = text.split("/")
    if len(parts) != 2:
        raise QueryError(f"datetime {value!r}: an interval has exactly one '/'")
    start_text, end_text = (part.strip() for part in parts)
    start = None if start_text in ("", "..") else _parse_instant(start_text)
    end = None if end_text in ("", "..") else _parse_instant(end_text, end_of_period=True)
    if start is None and end is None:
        raise QueryError(f"datetime {value!r}: both ends of the interval are open")
    if start is not None and end is not None and start > end:
        raise QueryError(f"datetime {value!r}: start is after end")
    return start, end


def parse_filter(value: str | Mapping[str, Any], lang: str | None = None) -> cql2.Expr:
    """A CQL2 filter in text or JSON (a dict, or text starting with `{`)."""
    if lang not in (None, "cql2-text", "cql2-json"):
        raise QueryError(f"filter-lang {lang!r}: use cql2-text or cql2-json")
    try:
        if isinstance(value, Mapping):
            expr = cql2.parse_json(json.dumps(_single_args_unwrapped(value)))
        elif lang == "cql2-json" or (lang is None and value.lstrip().startswith("{")):
            expr = cql2.parse_json(json.dumps(_single_args_unwrapped(json.loads(value))))
        else:
            expr = cql2.parse_text(value)
        expr.validate()
    except Exception as exc:  # cql2 raises ParseError, ValidationError and plain ValueError
        message = " ".join(str(exc).split())
        raise QueryError(f"filter {value!r}: not valid CQL2 ({message})") from None
    return expr


def _single_args_unwrapped(node: Any) -> Any:
    """CQL2 JSON with `and`/`or` of a single argument replaced by that argument.

    The CQL2 schema wants two or more; STAC Browser 4 sends `{"op": "and", "args": [x]}`
    for a single filter, which means `x`.
    """
    if isinstance(node, Mapping):
        args = node.get("args")
        if node.get("op") in ("and", "or") and isinstance(args, list) and len(args) == 1:
            return _single_args_unwrapped(args[0])
        return {key: _single_args_unwrapped(child) for key, child in node.items()}
    if isinstance(node, list):
        return [_single_args_unwrapped(child) for child in node]
    return node


def parse_sortby(value: str | Sequence[Any]) -> tuple[SortField, ...]:
    """A sortby: `+a,-b` text (GET) or `[{"field": "a", "direction": "asc"}]` (POST)."""
    terms: list[SortField] = []
    if isinstance(value, str):
        parts = [part for part in value.split(",") if part.strip()]
        if not parts:
            raise QueryError("sortby: empty value")
        for part in parts:
            # In a query string an unencoded '+' arrives as a space.
            text = part.strip() if part.startswith(" ") else part
            direction: Direction = "desc" if text.startswith("-") else "asc"
            name = text[1:] if text[:1] in "+-" else text
            terms.append(SortField(_sort_name(name.strip()), direction))
        return tuple(terms)
    for term in value:
        if not isinstance(term, Mapping) or not isinstance(term.get("field"), str):
            raise QueryError(
                f"sortby {term!r}: expected {{'field': NAME, 'direction': 'asc'|'desc'}}"
            )
        direction_text = str(term.get("direction", "asc")).lower()
        if direction_text not in ("asc", "desc"):
            raise QueryError(f"sortby {term!r}: direction must be 'asc' or 'desc'")
        terms.append(
            SortField(_sort_name(term["field"]), "asc" if direction_text == "asc" else "desc")
        )
    return tuple(terms)


def _sort_name(name: str) -> str:
    if not name:
        raise QueryError("sortby: empty field name")
    return name.removeprefix("properties.")


def _parse_count(name: str, value: object, *, minimum: int) -> int:
    try:
        number = int(str(value)) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise QueryError(f"{name} {value!r}: expected an integer >= {minimum}")
    return number


def _parse_list(name: str, value: str | Sequence[Any]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(part, str) and part for part in items):
        raise QueryError(f"{name} {value!r}: expected a list of non-empty strings")
    return tuple(items)


def parse_search(params: Mapping[str, Any], *, method: Literal["GET", "POST"] = "GET") -> Search:
    """A `Search` from STAC API item-search parameters (query-string text or a POST body).

    Unknown parameters are refused rather than ignored, so a query the server cannot honour
    (the `query` or `fields` extensions, say) never returns unfiltered results.
    """
    unknown = sorted(set(params) - SEARCH_PARAMETERS)
    if unknown:
        raise QueryError(
            f"unsupported search parameter(s) {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(SEARCH_PARAMETERS))} (use `filter` for property queries)"
        )
    get = method == "GET"
    fields: dict[str, Any] = {}
    if params.get("bbox") is not None:
        fields["bbox"] = parse_bbox(params["bbox"])
    if params.get("intersects") is not None:
        if "bbox" in fields:
            raise QueryError("bbox and intersects cannot be used together")
        fields["intersects"] = parse_intersects(params["intersects"])
    if params.get("datetime") is not None:
        if not isinstance(params["datetime"], str):
            raise QueryError(f"datetime {params['datetime']!r}: expected a string")
        fields["datetime"] = parse_datetime(params["datetime"])
    if params.get("ids") is not None:
        fields["ids"] = _parse_list("ids", params["ids"])
    if params.get("collections") is not None:
        fields["collections"] = _parse_list("collections", params["collections"])
    crs = params.get("filter-crs")
    if crs is not None and crs not in CRS84:
        raise QueryError(f"filter-crs {crs!r}: only {CRS84[0]} is supported")
    if params.get("filter") is not None:
        raw = params["filter"]
        if get and not isinstance(raw, str):
            raise QueryError("filter: expected text in a GET request")
        fields["filter"] = parse_filter(raw, params.get("filter-lang"))
    if params.get("sortby") is not None:
        fields["sortby"] = parse_sortby(params["sortby"])
    if params.get("limit") is not None:
        fields["limit"] = min(_parse_count("limit", params["limit"], minimum=1), MAX_PAGE_LIMIT)
    if params.get("token") is not None:
        fields["offset"] = _parse_count("token", params["token"], minimum=0)
    return Search(**fields)


def build_search(
    *,
    bbox: str | None = None,
    intersects: str | None = None,
    datetime: str | None = None,
    ids: str | None = None,
    collections: str | None = None,
    filter: str | None = None,
    sortby: str | None = None,
    max_cloud: float | None = None,
) -> Search:
    """A `Search` from command-line style text options (the same parsing as the API's GET).

    `max_cloud` adds `eo:cloud_cover <= max_cloud` to the filter.
    """
    given = {
        "bbox": bbox,
        "intersects": intersects,
        "datetime": datetime,
        "ids": ids,
        "collections": collections,
        "filter": filter,
        "sortby": sortby,
    }
    search = parse_search({k: v for k, v in given.items() if v is not None}, method="GET")
    if max_cloud is not None:
        if not math.isfinite(max_cloud):
            raise QueryError(f"max cloud {max_cloud!r}: expected a number")
        cloud = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud]}
        search = search.and_filter(cql2.parse_json(json.dumps(cloud)))
    return search


# --- running a search --------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchResult:
    """One page of matching items, and how many match in all."""

    items: tuple[IndexedItem, ...]
    matched: int
    search: Search

    @property
    def next_offset(self) -> int | None:
        """Offset of the next page, or None on the last page."""
        following = self.search.offset + len(self.items)
        return following if following < self.matched else None

    @property
    def previous_offset(self) -> int | None:
        """Offset of the previous page, or None on the first page."""
        if self.search.offset <= 0:
            return None
        return max(0, self.search.offset - self.search.limit)


def check_fields(index: CatalogIndex, search: Search) -> None:
    """Refuse filter and sortby fields that no item of the catalog has (a likely typo)."""
    known = index.field_names()
    named = [term.field for term in search.sortby]
    unknown_sort = sorted({name for name in named if name not in known})
    if unknown_sort:
        raise QueryError(
            f"sortby: unknown field(s) {', '.join(unknown_sort)}; known: {', '.join(sorted(known))}"
        )
    if search.filter is not None:
        unknown = sorted(_filter_properties(search.filter.to_json()) - known)
        if unknown:
            raise QueryError(
                f"filter: unknown propert(ies) {', '.join(unknown)}; see /queryables for the list"
            )


def _filter_properties(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {str(node["property"])} if "property" in node else set()
        for child in node.values():
            found |= _filter_properties(child)
        return found
    if isinstance(node, list):
        return set().union(*(_filter_properties(child) for child in node)) if node else set()
    return set()


def select(index: CatalogIndex, search: Search) -> list[IndexedItem]:
    """Every matching item, sorted (sortby, then datetime newest first, collection and id)."""
    check_fields(index, search)
    area = search.bbox if search.bbox is not None else search.intersects
    ids = set(search.ids) if search.ids is not None else None
    collections = set(search.collections) if search.collections is not None else None
    matches: list[IndexedItem] = []
    for entry in index.items:
        if ids is not None and entry.id not in ids:
            continue
        if collections is not None and entry.collection not in collections:
            continue
        if area is not None and (entry.geometry is None or not area.intersects(entry.geometry)):
            continue
        if search.datetime is not None and not _overlaps(entry, *search.datetime):
            continue
        if search.filter is not None and not _matches(search.filter, entry):
            continue
        matches.append(entry)
    return _sorted(matches, search.sortby)


def search_page(index: CatalogIndex, search: Search) -> SearchResult:
    """The page of `select` that `search.offset` and `search.limit` ask for."""
    matches = select(index, search)
    page = matches[search.offset : search.offset + search.limit]
    return SearchResult(tuple(page), len(matches), search)


def _overlaps(entry: IndexedItem, start: datetime | None, end: datetime | None) -> bool:
    if entry.start is None or entry.end is None:
        return False
    return (end is None or entry.start <= end) and (start is None or entry.end >= start)


def _matches(expr: cql2.Expr, entry: IndexedItem) -> bool:
    doc = (
        entry.item
        if entry.collection == entry.item.get("collection")
        else {
            **entry.item,
            "collection": entry.collection,
        }
    )
    try:
        return bool(expr.matches(doc))
    except Exception:  # cql2 raises when an item lacks a property the filter compares
        return False


def _sort_value(entry: IndexedItem, name: str) -> Any:
    if name == "id":
        return entry.id
    if name == "collection":
        return entry.collection
    value = (entry.item.get("properties") or {}).get(name)
    if name in TIME_FIELDS and isinstance(value, str):
        try:
            return _parse_instant(value).timestamp()
        except QueryError:
            return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def _sorted(entries: list[IndexedItem], sortby: Sequence[SortField]) -> list[IndexedItem]:
    """Stable multi-key sort; items missing a field go last whatever the direction."""
    terms = [*sortby]
    if not any(term.field == "datetime" for term in terms):
        terms.append(SortField("datetime", "desc"))
    terms += [SortField("collection"), SortField("id")]
    result = sorted(entries, key=lambda entry: (entry.collection or "", entry.id))
    for term in reversed(terms):
        present = [entry for entry in result if _sort_value(entry, term.field) is not None]
        missing = [entry for entry in result if _sort_value(entry, term.field) is None]
        try:
            present.sort(
                key=lambda entry: _sort_value(entry, term.field), reverse=term.direction == "desc"
            )
        except TypeError:  # mixed value types: compare their text
            present.sort(
                key=lambda entry: str(_sort_value(entry, term.field)),
                reverse=term.direction == "desc",
            )
        result = present + missing
    return result


# --- presenting items --------------------------------------------------------------------------
def resolve_hrefs(item: JsonDict, resolve: Callable[[str], str]) -> JsonDict:
    """A deep copy of `item` whose relative link and asset hrefs are passed through `resolve`."""
    result = copy.deepcopy(item)
    for link in result.get("links", []):
        if _is_relative(link.get("href", "")):
            link["href"] = resolve(link["href"])
    for asset in (result.get("assets") or {}).values():
        if _is_relative(asset.get("href", "")):
            asset["href"] = resolve(asset["href"])
    return result


def _is_relative(href: str) -> bool:
    parts = urlsplit(href)
    return bool(href) and not parts.scheme and not parts.netloc and not href.startswith("/")


def item_with_local_paths(entry: IndexedItem) -> JsonDict:
    """The item with relative hrefs turned into absolute local paths (for `stacmask search`)."""
    folder = entry.path.parent

    def resolve(href: str) -> str:
        return os.path.normpath(folder / urlsplit(href).path)

    item = resolve_hrefs(entry.item, resolve)
    item.setdefault("collection", entry.collection)
    return item
