"""A local stand-in for INPE's Brazil Data Cube: a STAC API plus a file server on 127.0.0.1.

`SampleStacApi` serves, from one `http.server.ThreadingHTTPServer` in a background thread:

- a STAC API (landing page, conformance, collections, items, item search by GET and POST with
  collections/ids/bbox/intersects/datetime/limit and BDC's `next`-link paging: a `page` number,
  merged into the POST body), and
- static files under a data prefix (`/data/` by default): files registered for a scene
  (`add_scene`, `add_file`) and, if given, anything under `root`, with HTTP Range support so
  GDAL's /vsicurl/ can read GeoTIFFs. Paths never resolve outside `root` (403).

`api.faults` injects failures (HTTP errors, delays, dropped connections) and counts requests per
path, for tests of retries and timeouts. `serve_sample_scenes` writes a few synthetic scenes and
returns a started server: the offline demo catalog.

Items and collections are plain dicts in `api.items` / `api.collections` (by id); the literal
"{base_url}" in any string of an added item or collection is replaced by the server's URL
(without trailing slash). Served items get self/parent/collection/root links to this server.
"""

from __future__ import annotations

import contextlib
import copy
import json
import mimetypes
import posixpath
import socket
import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from stacmask.constants import DEFAULT_COLLECTION
from stacmask.demo.samples import SampleScene, inpe_data_path, sample_item
from stacmask.demo.source import demo_scenes, source_collection

BASE_URL_PLACEHOLDER: Final = "{base_url}"
DATA_PREFIX: Final = "/data/"
GEOJSON: Final = "application/geo+json"
JSON: Final = "application/json"
CONFORMANCE: Final = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
_CONTENT_TYPES: Final = {
    ".tif": "image/tiff; application=geotiff",
    ".tiff": "image/tiff; application=geotiff",
    ".xml": "application/xml",
    ".json": JSON,
    ".geojson": GEOJSON,
    ".png": "image/png",
    ".jpg": "image/jpeg",
}
_CHUNK: Final = 1 << 16
_MAX_BODY: Final = 1 << 20  # search bodies are small


class BadRequest(Exception):
    """A request the API answers with 400."""


# --- Fault injection ----------------------------------------------------------------------------


@dataclass
class FaultRule:
    """One injected fault; `remaining` None means every matching request."""

    kind: str  # "fail" | "delay" | "drop"
    path: str
    exact: bool
    remaining: int | None
    status: int = 500
    seconds: float = 0.0
    after_bytes: int | None = None

    def matches(self, path: str) -> bool:
        return path == self.path if self.exact else path.startswith(self.path)


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request: sleep, then answer an error status or drop the body."""

    delay: float = 0.0
    status: int | None = None
    drop_after: int | None = None  # bytes of body sent before closing (-1: half); None = no drop


class Faults:
    """Thread-safe fault injection and request counting for a SampleStacApi.

    A rule applies to every request whose path (percent-decoded, without the query string)
    starts with `prefix` ("/search", "/data/", the path of one asset), or equals it with
    `exact=True`; `times=None` means every such request, otherwise the next `times` ones.
    `requests` counts requests per path.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self.requests: Counter[str] = Counter()

    def fail(
        self, prefix: str, status: int = 500, times: int | None = None, *, exact: bool = False
    ) -> None:
        """Answer HTTP `status` (JSON error body) to matching requests."""
        self._add(FaultRule("fail", prefix, exact, times, status=status))

    def delay(
        self, prefix: str, seconds: float, times: int | None = None, *, exact: bool = False
    ) -> None:
        """Wait `seconds` before answering matching requests (to trigger client timeouts)."""
        self._add(FaultRule("delay", prefix, exact, times, seconds=seconds))

    def drop(
        self,
        prefix: str,
        times: int | None = None,
        *,
        after_bytes: int | None = None,
        exact: bool = False,
    ) -> None:
        """Send the real headers and part of the body (half, or `after_bytes`), then close."""
        self._add(FaultRule("drop", prefix, exact, times, after_bytes=after_bytes))

    def clear(self) -> None:
        """Remove every rule (the request counts are kept)."""
        with self._lock:
            self._rules.clear()

    def count(self, prefix: str, *, exact: bool = False) -> int:
        """Requests received so far whose path starts with `prefix` (or equals it)."""
        with self._lock:
            if exact:
                return self.requests[prefix]
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))

    def reset_counts(self) -> None:
        """Forget the request counts."""
        with self._lock:
            self.requests.clear()

    def _add(self, rule: FaultRule) -> None:
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError(f"times must be >= 1 or None, got {rule.remaining}")
        with self._lock:
            self._rules.append(rule)

    def plan(self, path: str) -> FaultPlan:
        """Count a request and consume the rules that apply to it (delays add up; the first
        error or drop rule wins)."""
        delay = 0.0
        status: int | None = None
        drop: int | None = None
        with self._lock:
            self.requests[path] += 1
            for rule in self._rules:
                if not rule.matches(path):
                    continue
                if rule.kind == "delay":
                    delay += rule.seconds
                elif status is None and drop is None:
                    if rule.kind == "fail":
                        status = rule.status
                    else:
                        drop = -1 if rule.after_bytes is None else rule.after_bytes
                else:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
            self._rules = [r for r in self._rules if r.remaining is None or r.remaining > 0]
        return FaultPlan(delay, status, drop)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server received."""

    method: str
    path: str
    query: str
    range: str | None
    status: int


# --- Search helpers -----------------------------------------------------------------------------


def _parse_time(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"invalid datetime {text!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def parse_datetime_range(text: str) -> tuple[datetime | None, datetime | None]:
    """A STAC API `datetime` parameter: an instant, or a closed or open ("..") interval."""
    if "/" not in text:
        when = _parse_time(text)
        if len(text.strip()) == 10:  # a bare date: the whole day
            return when, when + timedelta(days=1) - timedelta(microseconds=1)
        return when, when
    parts = text.split("/")
    if len(parts) != 2:
        raise BadRequest(f"invalid datetime interval {text!r}")
    start = None if parts[0].strip() in ("", "..") else _parse_time(parts[0])
    end = None if parts[1].strip() in ("", "..") else _parse_time(parts[1])
    if start is None and end is None:
        raise BadRequest(f"datetime interval {text!r} is open at both ends")
    if start is not None and end is not None and start > end:
        raise BadRequest(f"datetime interval {text!r} ends before it starts")
    return start, end


def parse_bbox(value: object) -> list[float]:
    """A bbox given as "w,s,e,n" or a list of 4 (or 6) numbers, validated."""
    parts: list[Any]
    if isinstance(value, str):
        parts = [p for p in value.split(",")]
    elif isinstance(value, list):
        parts = value
    else:
        raise BadRequest(f"invalid bbox {value!r}")
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"invalid bbox {value!r}: not numbers") from exc
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or any(n != n for n in numbers):
        raise BadRequest(f"invalid bbox {value!r}: need 4 or 6 numbers")
    west, south, east, north = numbers
    if not (-90 <= south <= north <= 90) or not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadRequest(f"invalid bbox {value!r}: out of range or south > north")
    return numbers


def _geometry_bbox(geometry: Mapping[str, Any]) -> list[float]:
    points: list[list[float]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list) and node and isinstance(node[0], int | float):
            points.append([float(node[0]), float(node[1])])
        elif isinstance(node, list):
            for child in node:
                walk(child)

    if geometry.get("type") == "GeometryCollection":
        boxes = [_geometry_bbox(g) for g in geometry.get("geometries", [])]
        if not boxes:
            raise BadRequest("empty intersects geometry")
        return [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
    walk(geometry.get("coordinates"))
    if not points:
        raise BadRequest("invalid intersects geometry: no coordinates")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def _boxes_intersect(a: list[float], b: list[float]) -> bool:
    def x_ranges(box: list[float]) -> list[tuple[float, float]]:
        if box[0] <= box[2]:
            return [(box[0], box[2])]
        return [(box[0], 180.0), (-180.0, box[2])]  # crosses the antimeridian

    if a[1] > b[3] or b[1] > a[3]:
        return False
    return any(lo1 <= hi2 and lo2 <= hi1 for lo1, hi1 in x_ranges(a) for lo2, hi2 in x_ranges(b))


def _item_interval(item: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    props = item.get("properties", {})
    start = props.get("start_datetime") or props.get("datetime")
    end = props.get("end_datetime") or props.get("datetime")
    return (
        _parse_time(start) if isinstance(start, str) else None,
        _parse_time(end) if isinstance(end, str) else None,
    )


@dataclass(frozen=True)
class SearchQuery:
    """Validated item-search parameters."""

    collections: list[str] | None = None
    ids: list[str] | None = None
    bbox: list[float] | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 10
    offset: int = 0

    def matches(self, item: Mapping[str, Any]) -> bool:
        if self.collections is not None and item.get("collection") not in self.collections:
            return False
        if self.ids is not None and item.get("id") not in self.ids:
            return False
        if self.bbox is not None:
            box = item.get("bbox")
            if not isinstance(box, list) or len(box) < 4:
                return False
            box4 = [box[0], box[1], box[3], box[4]] if len(box) == 6 else list(box)
            if not _boxes_intersect(self.bbox, box4):
                return False
        if self.start is not None or self.end is not None:
            item_start, item_end = _item_interval(item)
            if item_start is None or item_end is None:
                return False
            if self.start is not None and item_end < self.start:
                return False
            if self.end is not None and item_start > self.end:
                return False
        return True


def _as_list(value: object, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f"invalid {name} {value!r}")


def _as_int(value: object, name: str, minimum: int) -> int:
    try:
        number = int(str(value))
    except ValueError as exc:
        raise BadRequest(f"invalid {name} {value!r}") from exc
    if number < minimum:
        raise BadRequest(f"invalid {name} {value!r}: must be >= {minimum}")
    return number


# --- The server ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: SampleStacApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (GDAL does, after the bytes it wanted), dropped and timed-out
        # connections are expected; anything else is a bug worth a traceback.
        if self.api.verbose or not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class SampleStacApi:
    """STAC API + Range-capable file server on 127.0.0.1, in a background thread.

    `url` (with a trailing slash, like INPE's root) is known as soon as the object exists;
    requests are answered after `start()` or inside `with`. Files under `root` are served at
    `<url>data/<path under root>`; `add_scene` publishes a SampleScene (nothing is copied).
    `items` and `collections` are live dicts by id: tests may edit them between requests.
    """

    def __init__(
        self,
        root: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        items: Iterable[Mapping[str, Any]] = (),
        collections: Iterable[Mapping[str, Any]] = (),
        data_prefix: str = DATA_PREFIX,
        default_limit: int = 10,
        max_limit: int = 1000,
        verbose: bool = False,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.data_prefix = "/" + data_prefix.strip("/") + "/"
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.verbose = verbose
        self.faults = Faults()
        #: Every request received, in order (method, path, query, Range header, status).
        self.requests: list[RequestRecord] = []
        #: Published items and collections by id (insertion order is the search order).
        self.items: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._files: dict[str, Path] = {}
        self._server = _Server((host, port), _Handler)
        self._server.api = self
        self._thread: threading.Thread | None = None
        address = self._server.server_address
        self._base = f"http://{address[0]!s}:{address[1]}"
        for collection in collections:
            self.add_collection(collection)
        for item in items:
            self.add_item(item)

    @property
    def url(self) -> str:
        """Root URL of the API, with a trailing slash (e.g. http://127.0.0.1:41234/)."""
        return self._base + "/"

    # lifecycle
    def start(self) -> SampleStacApi:
        """Serve in a daemon thread (idempotent); returns self."""
        if self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"SampleStacApi {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (requests stuck in a delay are cut short)."""
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    close = stop

    def __enter__(self) -> SampleStacApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # content
    def _fill(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return obj.replace(BASE_URL_PLACEHOLDER, self._base)
        if isinstance(obj, list):
            return [self._fill(v) for v in obj]
        if isinstance(obj, dict):
            return {k: self._fill(v) for k, v in obj.items()}
        return obj

    def add_collection(self, collection: str | Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """Publish (or replace) a collection: an id (INPE-like defaults, overridden by `fields`)
        or a full collection dict. "{base_url}" in its strings becomes the server's URL."""
        if isinstance(collection, str):
            value = {**source_collection(collection), **fields}
        else:
            value = {**copy.deepcopy(dict(collection)), **fields}
        filled: dict[str, Any] = self._fill(value)
        if not isinstance(filled.get("id"), str):
            raise ValueError("a collection needs a string id")
        with self._lock:
            self.collections[filled["id"]] = filled
        return filled

    def add_item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """Publish (or replace, by id) an item dict; "{base_url}" in its strings becomes the
        server's URL (without trailing slash). An unknown collection gets INPE-like defaults."""
        filled: dict[str, Any] = self._fill(copy.deepcopy(dict(item)))
        if not isinstance(filled.get("id"), str):
            raise ValueError("an item needs a string id")
        collection = filled.setdefault("collection", DEFAULT_COLLECTION)
        if not isinstance(collection, str):
            raise ValueError(f"item {filled['id']}: collection must be a string")
        if collection not in self.collections:
            self.add_collection(collection)
        with self._lock:
            self.items[filled["id"]] = filled
        return filled

    def data_url(self, path: Path) -> str:
        """URL of a file under `root`."""
        if self.root is None:
            raise ValueError("this server has no root folder")
        relative = Path(path).resolve().relative_to(self.root).as_posix()
        return self._base + quote(self.data_prefix + relative)

    def add_file(self, url_path: str, file: Path) -> str:
        """Serve `file` (anywhere) at `url_path` (e.g. "/data/x/y.tif"); returns its URL."""
        path = "/" + url_path.lstrip("/")
        with self._lock:
            self._files[path] = Path(file)
        return self._base + quote(path)

    def add_scene(
        self,
        scene: SampleScene,
        collection: str = DEFAULT_COLLECTION,
        *,
        xml_paths: Mapping[str, Path] | None = None,
    ) -> dict[str, Any]:
        """Publish a SampleScene and return its item (as stored: later edits need add_item).

        A scene written under `root` is served from there (hrefs <url>data/<folder under root>/);
        any other scene at INPE's href layout (<url>data/CB4A-WPM-L4-DN/YYYY_MM/...).
        `xml_paths` maps band keys ("BAND1".."BAND4") to other XML files (e.g. real INPE XMLs)
        served instead of the scene's own at the BANDn_xml hrefs.
        """
        directory = scene.directory.resolve()
        prefix = self.data_prefix.strip("/")
        if self.root is not None and directory.is_relative_to(self.root):
            prefix += "/" + directory.relative_to(self.root).as_posix()
        else:
            prefix += "/" + inpe_data_path(scene)
            for file in [*scene.bands.values(), *scene.xml.values(), scene.thumbnail]:
                self.add_file(f"{prefix}/{file.name}", file)
        item = sample_item(scene, self._base, collection, path_prefix=prefix)
        for key, override in (xml_paths or {}).items():
            if key not in scene.xml:
                raise ValueError(f"unknown band key {key!r} in xml_paths")
            self.add_file(f"{prefix}/{scene.xml[key].name}", Path(override))
        return self.add_item(item)

    def item_url(self, item_id: str) -> str:
        """Absolute URL of a published item."""
        collection = self.items[item_id].get("collection", DEFAULT_COLLECTION)
        return f"{self._base}/collections/{quote(collection)}/items/{quote(item_id)}"

    # --- request handling (called from handler threads) ---
    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.items.values())

    def _sleep(self, seconds: float) -> None:
        self._closing.wait(seconds)

    def served(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """An item as the API answers it: its self, parent, collection and root links here
        (without a type, as BDC writes them)."""
        out = copy.deepcopy(dict(item))
        cid, iid = str(out.setdefault("collection", DEFAULT_COLLECTION)), str(out["id"])
        own = {"self", "parent", "collection", "root"}
        links = [link for link in out.get("links", []) if link.get("rel") not in own]
        coll_url = f"{self._base}/collections/{quote(cid)}"
        out["links"] = [  # BDC's item links carry no type
            {"rel": "self", "href": f"{coll_url}/items/{quote(iid)}"},
            {"rel": "parent", "href": coll_url},
            {"rel": "collection", "href": coll_url},
            {"rel": "root", "href": f"{self._base}/"},
            *links,
        ]
        return out

    def collection(self, collection_id: str) -> dict[str, Any]:
        """A collection as the API answers it: extent from its items, links here."""
        out = copy.deepcopy(self.collections[collection_id])
        cid = collection_id
        members = [i for i in self._snapshot() if i.get("collection") == cid]
        boxes = [i["bbox"] for i in members if isinstance(i.get("bbox"), list)]
        if boxes:
            out.setdefault("extent", {})["spatial"] = {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[-2] for b in boxes),
                        max(b[-1] for b in boxes),
                    ]
                ]
            }
            times = [t for i in members for t in _item_interval(i) if t is not None]
            if times:
                out["extent"]["temporal"] = {
                    "interval": [
                        [
                            min(times).strftime("%Y-%m-%dT%H:%M:%SZ"),
                            max(times).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        ]
                    ]
                }
        own = {"self", "parent", "root", "items"}
        links = [link for link in out.get("links", []) if link.get("rel") not in own]
        coll_url = f"{self._base}/collections/{quote(cid)}"
        out["links"] = [
            {"rel": "self", "href": coll_url, "type": JSON},
            {"rel": "parent", "href": f"{self._base}/", "type": JSON},
            {"rel": "root", "href": f"{self._base}/", "type": JSON},
            {"rel": "items", "href": f"{coll_url}/items", "type": GEOJSON},
            *links,
        ]
        return out

    def landing(self) -> dict[str, Any]:
        """The landing page."""
        with self._lock:
            ids = list(self.collections)
        root = self.url
        return {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": "stacmask-sample-bdc",
            "title": "stacmask sample Brazil Data Cube",
            "description": "A local STAC API that mimics INPE's Brazil Data Cube.",
            "conformsTo": list(CONFORMANCE),
            "links": [
                {"rel": "self", "href": root, "type": JSON},
                {"rel": "root", "href": root, "type": JSON},
                {"rel": "conformance", "href": f"{self._base}/conformance", "type": JSON},
                {"rel": "data", "href": f"{self._base}/collections", "type": JSON},
                {"rel": "search", "href": f"{self._base}/search", "type": GEOJSON, "method": "GET"},
                {
                    "rel": "search",
                    "href": f"{self._base}/search",
                    "type": GEOJSON,
                    "method": "POST",
                },
                *[
                    {
                        "rel": "child",
                        "href": f"{self._base}/collections/{quote(cid)}",
                        "type": JSON,
                    }
                    for cid in ids
                ],
            ],
        }

    def query_from(self, params: Mapping[str, Any]) -> SearchQuery:
        """Validate search parameters (GET strings or POST JSON values)."""
        if "bbox" in params and "intersects" in params:
            raise BadRequest("bbox and intersects are mutually exclusive")
        bbox = parse_bbox(params["bbox"]) if params.get("bbox") is not None else None
        if params.get("intersects") is not None:
            geometry = params["intersects"]
            if isinstance(geometry, str):
                try:
                    geometry = json.loads(geometry)
                except json.JSONDecodeError as exc:
                    raise BadRequest("intersects is not valid JSON") from exc
            if not isinstance(geometry, dict):
                raise BadRequest("intersects must be a GeoJSON geometry")
            bbox = _geometry_bbox(geometry)
        start = end = None
        if params.get("datetime") not in (None, ""):
            if not isinstance(params["datetime"], str):
                raise BadRequest(f"invalid datetime {params['datetime']!r}")
            start, end = parse_datetime_range(params["datetime"])
        limit = self.default_limit
        if params.get("limit") is not None:
            limit = min(_as_int(params["limit"], "limit", 1), self.max_limit)
        offset = 0
        if params.get("page") not in (None, ""):  # BDC's paging: page n of `limit` items
            offset = (_as_int(params["page"], "page", 1) - 1) * limit
        return SearchQuery(
            collections=_as_list(params.get("collections"), "collections"),
            ids=_as_list(params.get("ids"), "ids"),
            bbox=bbox,
            start=start,
            end=end,
            limit=limit,
            offset=offset,
        )

    def search_page(
        self, query: SearchQuery, *, endpoint: str, method: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One FeatureCollection page of matching items with a `next` link if more remain."""
        items = self._snapshot()
        matched = [i for i in items if query.matches(i)]
        page = matched[query.offset : query.offset + query.limit]
        features = [self.served(i) for i in page]
        links: list[dict[str, Any]] = [{"rel": "root", "href": f"{self._base}/", "type": JSON}]
        next_offset = query.offset + len(page)
        if next_offset < len(matched):
            number = query.offset // query.limit + 2  # BDC: the next page number
            if method == "POST":  # BDC: the page number merged into the request body
                links.append(
                    {
                        "rel": "next",
                        "href": f"{self._base}{endpoint}",
                        "type": GEOJSON,
                        "method": "POST",
                        "body": {"page": number},
                        "merge": True,
                    }
                )
            else:
                args = {k: v for k, v in params.items() if k != "page"}
                args["page"] = str(number)
                links.append(
                    {
                        "rel": "next",
                        "href": f"{self._base}{endpoint}?{urlencode(args)}",
                        "type": GEOJSON,
                        "method": "GET",
                    }
                )
        return {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberMatched": len(matched),
            "numberReturned": len(features),
        }

    def resolve_file(self, path: str) -> Path | None:
        """The file served at a decoded URL path, or None; raises PermissionError when hostile."""
        with self._lock:
            registered = self._files.get(path)
        if registered is not None:
            return registered if registered.is_file() else None
        if self.root is None or not path.startswith(self.data_prefix):
            return None
        relative = path[len(self.data_prefix) :]
        parts = relative.split("/")
        if "\x00" in relative or "\\" in relative or any(p in ("..", ".") for p in parts):
            raise PermissionError(path)
        if relative.startswith("/") or posixpath.isabs(relative) or "" in parts:
            raise PermissionError(path)
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            raise PermissionError(path)
        return candidate if candidate.is_file() else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "stacmask-sample-api/1"

    # logging
    def log_message(self, format: str, *args: Any) -> None:
        if self.server.api.verbose:
            super().log_message(format, *args)

    # entry points
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        split = urlsplit(self.path)
        path = unquote(split.path)
        self._status = 0
        self._record_fields = (method, path, split.query, self.headers.get("Range"))
        self._drop_after: int | None = None
        try:
            body_len = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            body_len = -1
        if not 0 <= body_len <= _MAX_BODY:
            self.close_connection = True
            self._error(400, "BadRequest", "missing, bad or too large Content-Length")
            return
        # always drain the body: the connection is kept alive
        raw_body = self.rfile.read(body_len) if body_len else b""
        plan = api.faults.plan(path)
        self._drop_after = plan.drop_after
        try:
            if plan.delay:
                api._sleep(plan.delay)
            if plan.status is not None:
                self._error(plan.status, "InjectedFault", f"injected HTTP {plan.status} for {path}")
            elif path.startswith(api.data_prefix) or path in api._files:
                self._serve_file(method, path)
            else:
                self._serve_api(method, path, split.query, raw_body)
        except BadRequest as exc:
            self._error(400, "BadRequest", str(exc))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the sample server: say so loudly, answer 500
            traceback.print_exc()
            self._error(500, "ServerError", f"{type(exc).__name__}: {exc}")
        finally:
            if not self._status:  # nothing answered (connection lost): still log the request
                self._log_request_record(0)

    # responses
    def send_response(self, code: int, message: str | None = None) -> None:
        # Logged when the answer starts, so a client never sees a response before its record.
        self._log_request_record(code)
        super().send_response(code, message)

    def _log_request_record(self, status: int) -> None:
        self._status = status
        # send_error() answers malformed or unsupported requests before _dispatch runs
        fallback = (
            str(getattr(self, "command", "") or ""),
            str(getattr(self, "path", "")),
            "",
            None,
        )
        method, path, query, range_ = getattr(self, "_record_fields", fallback)
        self.server.api._record(RequestRecord(method, path, query, range_, status))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self._write_body([body], len(body))

    def _write_body(self, chunks: Iterable[bytes], total: int) -> None:
        limit = self._drop_after
        if limit is None:
            for chunk in chunks:
                self.wfile.write(chunk)
            return
        limit = total // 2 if limit < 0 else min(limit, total)
        sent = 0
        for chunk in chunks:
            part = chunk[: max(0, limit - sent)]
            if part:
                self.wfile.write(part)
                sent += len(part)
            if sent >= limit:
                break
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _json(self, status: int, data: Any, content_type: str = JSON) -> None:
        self._send(status, json.dumps(data).encode(), content_type)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"code": code, "description": message})

    # STAC API
    def _serve_api(self, method: str, path: str, query: str, raw_body: bytes) -> None:
        api = self.server.api
        if path != "/":
            path = path.rstrip("/")
        parts = path.strip("/").split("/") if path != "/" else []
        if method == "POST" and path != "/search":
            self._error(405, "MethodNotAllowed", f"POST is not allowed on {path}")
            return
        if not parts:
            self._json(200, api.landing())
        elif parts == ["conformance"]:
            self._json(200, {"conformsTo": list(CONFORMANCE)})
        elif parts == ["search"]:
            params: dict[str, Any]
            if method == "POST":
                try:
                    params = json.loads(raw_body or b"{}")
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"request body is not JSON: {exc}") from exc
                if not isinstance(params, dict):
                    raise BadRequest("request body must be a JSON object")
            else:
                params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
            search = api.query_from(params)
            page = api.search_page(search, endpoint="/search", method=method, params=params)
            self._json(200, page, GEOJSON)
        elif parts == ["collections"]:
            with api._lock:
                ids = list(api.collections)
            links = [
                {"rel": "self", "href": f"{api.url}collections", "type": JSON},
                {"rel": "root", "href": api.url, "type": JSON},
            ]
            self._json(200, {"collections": [api.collection(c) for c in ids], "links": links})
        elif parts[0] == "collections" and len(parts) in (2, 3, 4):
            cid = parts[1]
            if cid not in api.collections:
                self._error(404, "NotFound", f"collection {cid!r} not found")
            elif len(parts) == 2:
                self._json(200, api.collection(cid))
            elif parts[2] != "items":
                self._error(404, "NotFound", f"no such endpoint: {path}")
            elif len(parts) == 3:
                params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
                params.pop("collections", None)
                search = api.query_from({**params, "collections": [cid]})
                page = api.search_page(
                    search, endpoint=f"/collections/{quote(cid)}/items", method="GET", params=params
                )
                self._json(200, page, GEOJSON)
            else:
                item = api.items.get(parts[3])
                if item is None or item.get("collection", DEFAULT_COLLECTION) != cid:
                    self._error(404, "NotFound", f"item {parts[3]!r} not found in {cid!r}")
                else:
                    self._json(200, api.served(item), GEOJSON)
        else:
            self._error(404, "NotFound", f"no such endpoint: {path}")

    # static files
    def _serve_file(self, method: str, path: str) -> None:
        api = self.server.api
        if method == "POST":
            self._error(405, "MethodNotAllowed", f"POST is not allowed on {path}")
            return
        try:
            file = api.resolve_file(path)
        except PermissionError:
            self._error(403, "Forbidden", f"path outside the served folder: {path}")
            return
        if file is None:
            self._error(404, "NotFound", f"file not found: {path}")
            return
        size = file.stat().st_size
        suffix = file.suffix.lower()
        content_type = _CONTENT_TYPES.get(suffix) or (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        common = {
            "Accept-Ranges": "bytes",
            "Last-Modified": self.date_time_string(int(file.stat().st_mtime)),
        }
        start, end = 0, size - 1
        status = 200
        header = self.headers.get("Range")
        if header:
            parsed = _parse_range(header, size)
            if isinstance(parsed, str):  # unsatisfiable
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Type", JSON)
                body = json.dumps(
                    {"code": "RangeNotSatisfiable", "description": f"{header} of {size} bytes"}
                ).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)
                return
            if parsed is not None:
                start, end = parsed
                status = 206
                common["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for key, value in common.items():
            self.send_header(key, value)
        self.end_headers()
        if method == "HEAD":
            return
        with file.open("rb") as handle:
            handle.seek(start)
            self._write_body(_read_chunks(handle, length), length)


def _read_chunks(handle: Any, length: int) -> Iterable[bytes]:
    remaining = length
    while remaining > 0:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        yield chunk


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) of a single `bytes=` range, "unsatisfiable", or None to send everything."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # unknown unit or multiple ranges: ignoring Range is allowed (RFC 9110)
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if start < 0 or end < start:
        return None
    return start, min(end, size - 1)


# --- The demo's scenes, served -------------------------------------------------------------------


def serve_sample_scenes(
    work_dir: Path,
    n_scenes: int = 3,
    size: int = 1024,
    seed: int = 0,
    *,
    collection: str = DEFAULT_COLLECTION,
    verbose: bool = False,
) -> SampleStacApi:
    """Write the demo's scenes (stacmask.demo.source) under `work_dir`; return a STARTED server
    offering them. Close the server when done (or use it in `with`)."""
    api = SampleStacApi(Path(work_dir), verbose=verbose)
    for scene in demo_scenes(Path(work_dir), n_scenes, size, seed):
        api.add_scene(scene, collection)
    return api.start()


__all__ = [
    "DATA_PREFIX",
    "BadRequest",
    "FaultRule",
    "Faults",
    "RequestRecord",
    "SampleStacApi",
    "SearchQuery",
    "parse_bbox",
    "parse_datetime_range",
    "serve_sample_scenes",
]
