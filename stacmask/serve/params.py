"""STAC API item-search parameters, checked: remote input is hostile until it has passed here.

`parse_search` turns query-string text (GET) or a JSON body (POST) into a `Search`; every
field is type-checked and bounded *before* anything parses it further: a CQL2 filter's length
and nesting are limited before the `cql2` parser sees it (it crashes the process on 2,000
nested parentheses), datetimes are strict RFC 3339 inside the years 1 to 9999 once in UTC,
geometries are bounded in size. Anything wrong is a `QueryError` with a short message that
echoes at most a few dozen characters of the input.

`build_search` is the command line's variant (`stacmask search`, `export`): the same checks,
plus date-only datetimes (`2021`, `2021-01`, `2021-01-05`) standing for their whole period.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import cql2
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from stacmask.constants import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT
from stacmask.errors import QueryError

JsonDict = dict[str, Any]
Direction = Literal["asc", "desc"]

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
#: Bounds on what a request may hold, checked before any parser runs.
MAX_FILTER_CHARS = 16_384  # cql2 parses 5,000 ANDed terms (80 KB) fine and crashes at 20,000
MAX_FILTER_DEPTH = 40  # nesting of parentheses / JSON; cql2 crashes near 2,000
MAX_FILTER_NODES = 4_000
MAX_LIST_ITEMS = 10_000  # ids, collections
MAX_GEOMETRY_POINTS = 100_000
MAX_SORT_FIELDS = 10
MAX_TOKEN = 10**9
ECHO_CHARS = 60


def echo(value: object) -> str:
    """A bounded rendering of untrusted input for an error message."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text) if len(text) <= ECHO_CHARS else repr(text[:ECHO_CHARS]) + "..."


@dataclass(frozen=True)
class SortField:
    """One sortby term: a field name (without `properties.`) and a direction."""

    field: str
    direction: Direction = "asc"


@dataclass(frozen=True)
class Search:
    """A checked item search; every field is optional and the fields combine with AND."""

    bbox: BaseGeometry | None = None
    intersects: BaseGeometry | None = None
    datetime: tuple[datetime | None, datetime | None] | None = None
    ids: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    #: The filter as canonical CQL2 JSON (what `cql2` parsed and validated).
    filter: JsonDict | None = None
    sortby: tuple[SortField, ...] = ()
    limit: int = DEFAULT_PAGE_LIMIT
    offset: int = 0

    def and_filter(self, expr: JsonDict) -> Search:
        """This search with the CQL2 JSON `expr` ANDed to its filter."""
        if self.filter is None:
            return replace(self, filter=expr)
        return replace(self, filter={"op": "and", "args": [self.filter, expr]})


# --- bbox and geometries -----------------------------------------------------------------------
def parse_bbox(value: str | Sequence[Any], *, text_allowed: bool = True) -> BaseGeometry:
    """A bbox `west,south,east,north` (or 6 numbers with heights) as a lon/lat geometry.

    A west edge greater than the east edge crosses the antimeridian (STAC API rule). Text is
    the GET form; a POST body must give a JSON array (`text_allowed=False`).
    """
    if isinstance(value, str) and text_allowed:
        raw: list[Any] = value.split(",")
    elif isinstance(value, list | tuple) and not isinstance(value, str):
        raw = list(value)
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in raw):
            raise QueryError(f"bbox {echo(value)}: expected an array of 4 or 6 numbers")
    else:
        raise QueryError(f"bbox {echo(value)}: expected an array of 4 or 6 numbers")
    if len(raw) not in (4, 6):
        raise QueryError(f"bbox {echo(value)}: expected 4 or 6 numbers")
    try:
        numbers = [float(part) for part in raw]
    except (TypeError, ValueError):
        raise QueryError(f"bbox {echo(value)}: expected 4 or 6 comma-separated numbers") from None
    if not all(math.isfinite(n) for n in numbers):
        raise QueryError(f"bbox {echo(value)}: expected 4 or 6 finite numbers")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    west, south, east, north = numbers
    if not (-90 <= south <= north <= 90):
        raise QueryError(
            f"bbox {echo(value)}: south and north must satisfy -90 <= south <= north <= 90"
        )
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise QueryError(f"bbox {echo(value)}: west and east must lie in [-180, 180]")
    if west > east:  # crosses the antimeridian
        return shapely.union(box(west, south, 180, north), box(-180, south, east, north))
    return box(west, south, east, north)


def parse_geometry(value: object, what: str = "intersects") -> BaseGeometry:
    """A GeoJSON geometry (object, or JSON text) as a valid, bounded shapely geometry."""
    try:
        doc = json.loads(value) if isinstance(value, str) else value
    except (ValueError, RecursionError):
        raise QueryError(f"{what}: not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise QueryError(f"{what}: expected a GeoJSON geometry object")
    try:
        geometry = shape(doc)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise QueryError(f"{what}: not a GeoJSON geometry ({echo(str(exc))})") from None
    if shapely.get_num_coordinates(geometry) > MAX_GEOMETRY_POINTS:
        raise QueryError(f"{what}: more than {MAX_GEOMETRY_POINTS} points")
    if geometry.is_empty or not geometry.is_valid:
        raise QueryError(f"{what}: empty or invalid geometry ({explain_validity(geometry)})")
    west, south, east, north = geometry.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise QueryError(f"{what}: coordinates must be longitude, latitude in degrees")
    return geometry


# --- datetimes ---------------------------------------------------------------------------------
#: RFC 3339 date-time (section 5.6), the only instant form the API accepts.
RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)
#: Date-only forms the command line accepts, each standing for a whole year, month or day.
_PERIODS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}"), "%Y"),
    (re.compile(r"\d{4}-\d{2}"), "%Y-%m"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "%Y-%m-%d"),
)


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime, to the microsecond."""
    match = RFC3339.fullmatch(text.strip())
    if match is None:
        raise QueryError(f"datetime {echo(text)}: not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if second == 60:  # a leap second: the last instant of its minute
        second, micro = 59, 999_999
    try:
        offset = timedelta(0)
        if zone not in ("Z", "z"):
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
        local = datetime(year, month, day, hour, minute, second, micro, timezone(offset))
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"datetime {echo(text)}: {exc} (years 1 to 9999 in UTC)") from None


def _period(text: str, *, end: bool) -> datetime | None:
    """The first (or last) instant of a YYYY, YYYY-MM or YYYY-MM-DD period, else None."""
    form = next((fmt for pattern, fmt in _PERIODS if pattern.fullmatch(text)), None)
    if form is None:
        return None
    try:
        first = datetime.strptime(text, form).replace(tzinfo=timezone.utc)
        if not end:
            return first
        if form == "%Y":
            following = first.replace(year=first.year + 1)
        elif form == "%Y-%m":
            following = (first + timedelta(days=32)).replace(day=1)
        else:
            following = first + timedelta(days=1)
    except (ValueError, OverflowError):
        if end and text.startswith("9999"):
            return datetime.max.replace(tzinfo=timezone.utc)
        raise QueryError(f"datetime {echo(text)}: not a valid date") from None
    return following - timedelta(microseconds=1)


def parse_datetime(value: str, *, periods: bool = False) -> tuple[datetime | None, datetime | None]:
    """A STAC API datetime: an instant, or an interval `start/end` with `..` or empty open ends.

    With `periods` (the command line), a date-only value (YYYY, YYYY-MM, YYYY-MM-DD) stands
    for its whole year, month or day.
    """
    if not isinstance(value, str):
        raise QueryError(f"datetime {echo(value)}: expected a string")
    text = value.strip()
    if not text:
        raise QueryError("datetime: empty value")

    def one(part: str, *, end: bool) -> datetime:
        period = _period(part, end=end) if periods else None
        return period if period is not None else parse_instant(part)

    if "/" not in text:
        return one(text, end=False), one(text, end=True)
    parts = text.split("/")
    if len(parts) != 2:
        raise QueryError(f"datetime {echo(value)}: an interval has exactly one '/'")
    start_text, end_text = (part.strip() for part in parts)
    start = None if start_text in ("", "..") else one(start_text, end=False)
    end = None if end_text in ("", "..") else one(end_text, end=True)
    if start is None and end is None:
        raise QueryError(f"datetime {echo(value)}: both ends of the interval are open")
    if start is not None and end is not None and start > end:
        raise QueryError(f"datetime {echo(value)}: start is after end")
    return start, end


# --- CQL2 filters ------------------------------------------------------------------------------
def _text_depth(text: str) -> int:
    """Deepest nesting of parentheses outside string literals in CQL2 text."""
    depth = deepest = 0
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted  # '' inside a literal toggles twice: still quoted
        elif not quoted and char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif not quoted and char == ")":
            depth -= 1
    return deepest


def _json_shape(node: object, depth: int = 1) -> tuple[int, int]:
    """(deepest nesting, node count) of decoded JSON, stopping once past the limits."""
    if depth > MAX_FILTER_DEPTH:
        return depth, 1
    if isinstance(node, dict):
        children: Sequence[object] = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return depth, 1
    deepest, count = depth, 1
    for child in children:
        child_depth, child_count = _json_shape(child, depth + 1)
        deepest, count = max(deepest, child_depth), count + child_count
        if deepest > MAX_FILTER_DEPTH or count > MAX_FILTER_NODES:
            break
    return deepest, count


def _normalized(node: Any) -> Any:
    """CQL2 JSON with two common variants rewritten to the standard form.

    - `and`/`or` of a single argument is that argument (STAC Browser 4 sends
      `{"op": "and", "args": [x]}` for one filter);
    - `between` with its bounds as one array (`[x, [low, high]]`, the draft form some clients
      send) takes them as two arguments.
    """
    if isinstance(node, Mapping):
        args = node.get("args")
        if node.get("op") in ("and", "or") and isinstance(args, list) and len(args) == 1:
            return _normalized(args[0])
        if (
            node.get("op") == "between"
            and isinstance(args, list)
            and len(args) == 2
            and isinstance(args[1], list)
            and len(args[1]) == 2
        ):
            return {"op": "between", "args": [_normalized(args[0]), *args[1]]}
        return {key: _normalized(child) for key, child in node.items()}
    if isinstance(node, list):
        return [_normalized(child) for child in node]
    return node


def parse_filter(value: str | Mapping[str, Any], lang: str | None = None) -> JsonDict:
    """A CQL2 filter in text or JSON (a dict, or text starting with `{`), as CQL2 JSON."""
    if lang not in (None, "cql2-text", "cql2-json"):
        raise QueryError(f"filter-lang {echo(lang)}: use cql2-text or cql2-json")
    if isinstance(value, str):
        if len(value) > MAX_FILTER_CHARS:
            raise QueryError(f"filter: longer than {MAX_FILTER_CHARS} characters")
        as_json = lang == "cql2-json" or (lang is None and value.lstrip().startswith("{"))
        if as_json:
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise QueryError(f"filter {echo(value)}: not valid CQL2 JSON (not JSON)") from None
        elif _text_depth(value) > MAX_FILTER_DEPTH:
            raise QueryError(f"filter: nested deeper than {MAX_FILTER_DEPTH} levels")
    if not isinstance(value, str):
        if not isinstance(value, Mapping):
            raise QueryError(f"filter {echo(value)}: CQL2 JSON must be an object")
        depth, count = _json_shape(value)
        if depth > MAX_FILTER_DEPTH:
            raise QueryError(f"filter: nested deeper than {MAX_FILTER_DEPTH} levels")
        if count > MAX_FILTER_NODES:
            raise QueryError(f"filter: more than {MAX_FILTER_NODES} terms")
        text = json.dumps(_normalized(value))
        if len(text) > MAX_FILTER_CHARS * 4:
            raise QueryError(f"filter: longer than {MAX_FILTER_CHARS * 4} characters")
    # Parsed, not `validate()`d: cql2's schema validation costs ~0.1 s a call, and the SQL
    # translation (stacmask.serve.cql2_sql) checks every operator, its arity and its operands.
    try:
        expr = cql2.parse_text(value) if isinstance(value, str) else cql2.parse_json(text)
    except Exception as exc:  # cql2 raises ParseError, ValidationError and plain ValueError
        message = " ".join(str(exc).split())[:200]
        raise QueryError(f"filter {echo(value)}: not valid CQL2 ({message})") from None
    doc = expr.to_json()
    if not isinstance(doc, dict):
        raise QueryError(f"filter {echo(value)}: not a CQL2 predicate")
    return doc


# --- the rest ----------------------------------------------------------------------------------
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
    elif isinstance(value, list):
        for term in value:
            if not isinstance(term, Mapping) or not isinstance(term.get("field"), str):
                raise QueryError(
                    f"sortby {echo(term)}: expected {{'field': NAME, 'direction': 'asc'|'desc'}}"
                )
            direction_text = term.get("direction", "asc")
            if direction_text not in ("asc", "desc"):
                raise QueryError(f"sortby {echo(term)}: direction must be 'asc' or 'desc'")
            terms.append(
                SortField(_sort_name(term["field"]), "asc" if direction_text == "asc" else "desc")
            )
    else:
        raise QueryError(f"sortby {echo(value)}: expected text or an array of sort terms")
    if len(terms) > MAX_SORT_FIELDS:
        raise QueryError(f"sortby: more than {MAX_SORT_FIELDS} fields")
    return tuple(terms)


def _sort_name(name: str) -> str:
    if not name:
        raise QueryError("sortby: empty field name")
    return name.removeprefix("properties.")


def _parse_count(name: str, value: object, *, minimum: int, text_allowed: bool) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and text_allowed and re.fullmatch(r"-?\d{1,12}", value.strip()):
        number = int(value)
    if number is None or not minimum <= number <= MAX_TOKEN:
        raise QueryError(f"{name} {echo(value)}: expected an integer >= {minimum}")
    return number


def _parse_list(name: str, value: str | Sequence[Any], *, text_allowed: bool) -> tuple[str, ...]:
    if isinstance(value, str) and text_allowed:
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise QueryError(f"{name} {echo(value)}: expected an array of strings")
    if len(items) > MAX_LIST_ITEMS:
        raise QueryError(f"{name}: more than {MAX_LIST_ITEMS} values")
    if not all(isinstance(part, str) and part for part in items):
        raise QueryError(f"{name} {echo(value)}: expected a list of non-empty strings")
    return tuple(items)


def parse_search(
    params: Mapping[str, Any],
    *,
    method: Literal["GET", "POST"] = "GET",
    periods: bool = False,
) -> Search:
    """A `Search` from STAC API item-search parameters (query-string text or a POST body).

    Unknown parameters are refused rather than ignored, so a query the server cannot honour
    (the `query` or `fields` extensions, say) never returns unfiltered results.
    """
    unknown = sorted(set(params) - SEARCH_PARAMETERS)
    if unknown:
        raise QueryError(
            f"unsupported search parameter(s) {echo(', '.join(unknown))}; "
            f"supported: {', '.join(sorted(SEARCH_PARAMETERS))} (use `filter` for property queries)"
        )
    get = method == "GET"
    fields: dict[str, Any] = {}
    if params.get("bbox") is not None:
        fields["bbox"] = parse_bbox(params["bbox"], text_allowed=get)
    if params.get("intersects") is not None:
        if "bbox" in fields:
            raise QueryError("bbox and intersects cannot be used together")
        if not get and not isinstance(params["intersects"], dict):
            raise QueryError("intersects: expected a GeoJSON geometry object")
        fields["intersects"] = parse_geometry(params["intersects"])
    if params.get("datetime") is not None:
        fields["datetime"] = parse_datetime(params["datetime"], periods=periods)
    # ids and collections may be comma-separated text in a POST too (clients send that).
    if params.get("ids") is not None:
        fields["ids"] = _parse_list("ids", params["ids"], text_allowed=True)
    if params.get("collections") is not None:
        fields["collections"] = _parse_list("collections", params["collections"], text_allowed=True)
    crs = params.get("filter-crs")
    if crs is not None and crs not in CRS84:
        raise QueryError(f"filter-crs {echo(crs)}: only {CRS84[0]} is supported")
    if params.get("filter") is not None:
        raw = params["filter"]
        if get and not isinstance(raw, str):
            raise QueryError("filter: expected text in a GET request")
        if not isinstance(raw, str | dict):
            raise QueryError(f"filter {echo(raw)}: expected CQL2 text or a CQL2 JSON object")
        lang = params.get("filter-lang")
        if lang is not None and not isinstance(lang, str):
            raise QueryError(f"filter-lang {echo(lang)}: use cql2-text or cql2-json")
        fields["filter"] = parse_filter(raw, lang)
    if params.get("sortby") is not None:
        fields["sortby"] = parse_sortby(params["sortby"])
    if params.get("limit") is not None:
        fields["limit"] = min(
            _parse_count("limit", params["limit"], minimum=1, text_allowed=get), MAX_PAGE_LIMIT
        )
    if params.get("token") is not None:
        fields["offset"] = _parse_count("token", params["token"], minimum=0, text_allowed=True)
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
    """A `Search` from command-line text options (the API's GET parsing, plus date periods).

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
    search = parse_search(
        {k: v for k, v in given.items() if v is not None}, method="GET", periods=True
    )
    if max_cloud is not None:
        if not math.isfinite(max_cloud):
            raise QueryError(f"max cloud {max_cloud!r}: expected a number")
        search = search.and_filter(
            {"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud]}
        )
    return search
