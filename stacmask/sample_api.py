"""A STAC API and file server on 127.0.0.1 that serves scenes in INPE Brazil Data Cube's layout.

Used by `stacmask demo` (the embedded default, no network) and by the tests, which also use its
fault injection (HTTP errors, delays, dropped connections) to exercise retries and failures.
It is a real HTTP server (stdlib ThreadingHTTPServer): /, /conformance, /collections,
/collections/{id}, /collections/{id}/items[/{item}], /search (GET and POST, with collections,
ids, bbox, datetime, limit and paging), and files under /data/ with HTTP range requests, as
GDAL's /vsicurl/ reads them. Request paths are hostile: nothing outside the root is served.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse

from pystac.utils import str_to_datetime

from stacmask.constants import DEFAULT_COLLECTION

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
DATA_PREFIX = "/data/"


@dataclass
class Faults:
    """Faults to inject, by request-path prefix; thread-safe. `requests` counts every path."""

    requests: Counter[str] = field(default_factory=Counter)
    _errors: dict[str, list[int | None]] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)
    _drops: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, prefix: str, status: int = 500, times: int | None = None) -> None:
        """Answer `status` to requests under `prefix`, `times` times (None: always)."""
        with self._lock:
            self._errors[prefix] = [status, times]

    def delay(self, prefix: str, seconds: float) -> None:
        """Wait `seconds` before answering requests under `prefix`."""
        with self._lock:
            self._delays[prefix] = seconds

    def drop(self, prefix: str) -> None:
        """Send half a body and close the connection for requests under `prefix`."""
        with self._lock:
            self._drops.add(prefix)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._errors.clear()
            self._delays.clear()
            self._drops.clear()

    def count(self, prefix: str) -> int:
        """Requests seen so far under `prefix`."""
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))

    def _check(self, path: str) -> tuple[int | None, float, bool]:
        with self._lock:
            self.requests[path] += 1
            status = None
            for prefix, entry in self._errors.items():
                if path.startswith(prefix) and (entry[1] is None or entry[1] > 0):
                    status = entry[0]
                    if entry[1] is not None:
                        entry[1] -= 1
                    break
            delay = max((s for p, s in self._delays.items() if path.startswith(p)), default=0.0)
            drop = any(path.startswith(p) for p in self._drops)
        return status, delay, drop


def _bbox_intersects(a: list[float], b: list[float]) -> bool:
    return not (a[2] < b[0] or a[0] > b[2] or a[3] < b[1] or a[1] > b[3])


def _parse_interval(value: str) -> tuple[datetime | None, datetime | None]:
    if "/" not in value:
        instant = str_to_datetime(value)
        return instant, instant
    start, end = value.split("/", 1)
    return (
        None if start in ("", "..") else str_to_datetime(start),
        None if end in ("", "..") else str_to_datetime(end),
    )


class _QuietServer(ThreadingHTTPServer):
    """Clients hanging up (GDAL does, after the bytes it wanted) are not errors."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class SampleStacApi:
    """STAC API + file server over items you add; files are served from `root` under /data/."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = root.resolve()
        self.items: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self.faults = Faults()
        self._server = _QuietServer((host, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Root URL of the API, with a trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def data_url(self, path: Path) -> str:
        """URL of a file under `root`."""
        return (
            self.url
            + DATA_PREFIX.strip("/")
            + "/"
            + path.resolve().relative_to(self.root).as_posix()
        )

    # -- content ---------------------------------------------------------------------------
    def add_collection(self, collection_id: str, **fields: Any) -> dict[str, Any]:
        """Add (or replace) a collection in INPE's style."""
        collection = {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": collection_id,
            "title": fields.pop("title", f"CBERS-4A WPM Level 4 DN ({collection_id})"),
            "description": fields.pop("description", "CBERS-4A WPM scenes (sample data)."),
            "license": fields.pop("license", "CC-BY-SA-4.0"),
            "extent": {
                "spatial": {"bbox": [[-74.0, -34.0, -34.0, 6.0]]},
                "temporal": {"interval": [["2019-12-20T00:00:00Z", None]]},
            },
            "providers": [
                {
                    "name": "INPE",
                    "roles": ["producer", "licensor"],
                    "url": "https://www.gov.br/inpe/",
                }
            ],
            "links": [],
            **fields,
        }
        self.collections[collection_id] = collection
        return collection

    def add_item(self, item: dict[str, Any]) -> None:
        """Add (or replace) an item; its collection is created if unknown."""
        collection = str(item.get("collection") or DEFAULT_COLLECTION)
        if collection not in self.collections:
            self.add_collection(collection)
        self.items[str(item["id"])] = item

    def add_scene(self, scene: Any, collection: str = DEFAULT_COLLECTION) -> dict[str, Any]:
        """Serve a `stacmask.samples.SampleScene` written under `root`; return its item."""
        from stacmask.samples import sample_item

        prefix = (
            DATA_PREFIX.strip("/")
            + "/"
            + scene.directory.resolve().relative_to(self.root).as_posix()
        )
        item = sample_item(scene, self.url, collection, path_prefix=prefix)
        self.add_item(item)
        return item

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SampleStacApi:
        """Serve in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SampleStacApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- API answers -----------------------------------------------------------------------
    def landing(self) -> dict[str, Any]:
        """The landing page."""
        url = self.url
        return {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": "sample-bdc",
            "title": "Sample Brazil Data Cube STAC API (stacmask)",
            "description": "Sample CBERS-4A WPM scenes served on the loopback interface.",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": url, "type": "application/json"},
                {"rel": "root", "href": url, "type": "application/json"},
                {"rel": "conformance", "href": url + "conformance", "type": "application/json"},
                {"rel": "data", "href": url + "collections", "type": "application/json"},
                {
                    "rel": "search",
                    "href": url + "search",
                    "type": "application/geo+json",
                    "method": "GET",
                },
                {
                    "rel": "search",
                    "href": url + "search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
                *(
                    {"rel": "child", "href": f"{url}collections/{cid}", "type": "application/json"}
                    for cid in self.collections
                ),
            ],
        }

    def collection(self, collection_id: str) -> dict[str, Any]:
        """A collection with its links."""
        url = self.url
        return {
            **self.collections[collection_id],
            "links": [
                {
                    "rel": "self",
                    "href": f"{url}collections/{collection_id}",
                    "type": "application/json",
                },
                {"rel": "root", "href": url, "type": "application/json"},
                {"rel": "parent", "href": url, "type": "application/json"},
                {
                    "rel": "items",
                    "href": f"{url}collections/{collection_id}/items",
                    "type": "application/geo+json",
                },
            ],
        }

    def served(self, item: dict[str, Any]) -> dict[str, Any]:
        """An item as the API answers it: with its own self, parent, collection and root links."""
        cid = str(item.get("collection") or DEFAULT_COLLECTION)
        own = {"self", "parent", "collection", "root"}
        url = self.url
        return {
            **item,
            "links": [link for link in item.get("links", []) if link.get("rel") not in own]
            + [
                {
                    "rel": "self",
                    "href": f"{url}collections/{cid}/items/{item['id']}",
                    "type": "application/geo+json",
                },
                {"rel": "parent", "href": f"{url}collections/{cid}", "type": "application/json"},
                {
                    "rel": "collection",
                    "href": f"{url}collections/{cid}",
                    "type": "application/json",
                },
                {"rel": "root", "href": url, "type": "application/json"},
            ],
        }

    def search(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Items matching STAC API item-search parameters (ValueError on bad parameters)."""
        items: Iterable[dict[str, Any]] = self.items.values()
        collections = params.get("collections")
        if collections:
            items = [i for i in items if i.get("collection") in collections]
        ids = params.get("ids")
        if ids:
            items = [i for i in items if i["id"] in ids]
        bbox = params.get("bbox")
        if bbox:
            if len(bbox) != 4 or bbox[0] > bbox[2] or bbox[1] > bbox[3]:
                raise ValueError(f"bad bbox {bbox}: want minx,miny,maxx,maxy")
            items = [i for i in items if _bbox_intersects(i["bbox"], bbox)]
        if params.get("datetime"):
            start, end = _parse_interval(str(params["datetime"]))
            kept = []
            for item in items:
                when = str_to_datetime(item["properties"]["datetime"])
                if (start is None or when >= start) and (end is None or when <= end):
                    kept.append(item)
            items = kept
        return list(items)

    def page(self, params: dict[str, Any], method: str, path: str) -> dict[str, Any]:
        """A page of search (or items) results with a `next` link when more remain."""
        matched = self.search(params)
        limit = int(params.get("limit") or 10)
        if limit < 1:
            raise ValueError("limit must be a positive integer")
        offset = int(params.get("token") or 0)
        features = matched[offset : offset + limit]
        links: list[dict[str, Any]] = []
        if offset + limit < len(matched):
            token = str(offset + limit)
            if method == "POST":
                links.append(
                    {
                        "rel": "next",
                        "href": self.url + path.lstrip("/"),
                        "method": "POST",
                        "type": "application/geo+json",
                        "body": {"token": token},
                        "merge": True,
                    }
                )
            else:
                query = {
                    k: (",".join(map(str, v)) if isinstance(v, list) else v)
                    for k, v in params.items()
                }
                query["token"] = token
                links.append(
                    {
                        "rel": "next",
                        "href": f"{self.url}{path.lstrip('/')}?{urlencode(query)}",
                        "type": "application/geo+json",
                    }
                )
        return {
            "type": "FeatureCollection",
            "features": [self.served(item) for item in features],
            "numberMatched": len(matched),
            "numberReturned": len(features),
            "links": links,
        }


def _get_params(query: str) -> dict[str, Any]:
    raw = {k: v[-1] for k, v in parse_qs(query).items()}
    params: dict[str, Any] = dict(raw)
    for key in ("collections", "ids"):
        if key in raw:
            params[key] = [p for p in raw[key].split(",") if p]
    if "bbox" in raw:
        try:
            params["bbox"] = [float(v) for v in raw["bbox"].split(",")]
        except ValueError:
            raise ValueError(f"bad bbox {raw['bbox']!r}") from None
    return params


def _handler(api: SampleStacApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _json(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"code": str(status), "description": message})

        def _faulted(self, path: str) -> bool:
            status, delay, drop = api.faults._check(path)
            if delay:
                time.sleep(delay)
            if status is not None:
                self._error(status, f"injected fault for {path}")
                return True
            if drop:
                self.send_response(200)
                self.send_header("Content-Length", "1000000")
                self.end_headers()
                self.wfile.write(b"x" * 100)
                self.close_connection = True
                return True
            return False

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlparse(self.path)
            path = url.path
            if self._faulted(path):
                return
            try:
                if path.startswith(DATA_PREFIX):
                    self._file(path[len(DATA_PREFIX) :])
                elif path == "/":
                    self._json(200, api.landing())
                elif path == "/conformance":
                    self._json(200, {"conformsTo": CONFORMANCE})
                elif path == "/collections":
                    self._json(
                        200,
                        {"collections": [api.collection(c) for c in api.collections], "links": []},
                    )
                elif path == "/search":
                    self._json(
                        200, api.page(_get_params(url.query), "GET", path), "application/geo+json"
                    )
                else:
                    self._collections_route(path, url.query)
            except ValueError as exc:
                self._error(400, str(exc))

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)  # always drain it: the connection is kept alive
            if self._faulted(url.path):
                return
            if url.path != "/search":
                self._error(405, "read-only: POST is only for /search")
                return
            try:
                params = json.loads(body or b"{}")
                if not isinstance(params, dict):
                    raise ValueError("the search body must be a JSON object")
                self._json(200, api.page(params, "POST", url.path), "application/geo+json")
            except ValueError as exc:
                self._error(400, str(exc))

        def _collections_route(self, path: str, query: str) -> None:
            parts = [unquote(p) for p in path.strip("/").split("/")]
            if len(parts) < 2 or parts[0] != "collections" or parts[1] not in api.collections:
                self._error(404, f"not found: {path}")
                return
            cid = parts[1]
            if len(parts) == 2:
                self._json(200, api.collection(cid))
            elif len(parts) == 3 and parts[2] == "items":
                params = {**_get_params(query), "collections": [cid]}
                self._json(200, api.page(params, "GET", path), "application/geo+json")
            elif len(parts) == 4 and parts[2] == "items" and parts[3] in api.items:
                self._json(200, api.served(api.items[parts[3]]), "application/geo+json")
            else:
                self._error(404, f"not found: {path}")

        def _file(self, relative: str) -> None:
            target = (api.root / unquote(relative)).resolve()
            if not target.is_relative_to(api.root) or not target.is_file():
                self._error(404, "no such file")
                return
            size = target.stat().st_size
            start, end, status = 0, size - 1, 200
            header = self.headers.get("Range")
            match = RANGE.match(header.strip()) if header else None
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:
                    start = max(0, size - int(match.group(2)))
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            kind = {
                ".tif": "image/tiff; application=geotiff",
                ".xml": "application/xml",
                ".png": "image/png",
            }
            self.send_header("Content-Type", kind.get(target.suffix, "application/octet-stream"))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with target.open("rb") as fh:
                fh.seek(start)
                remaining = end - start + 1
                while remaining > 0:
                    chunk = fh.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)

    return Handler


#: Cloud fractions of the demo scenes, cycled: clear, partly cloudy, overcast, broken.
DEMO_CLOUD_FRACTIONS = (0.0, 0.25, 0.7, 0.45)


def serve_sample_scenes(
    work_dir: Path, n_scenes: int = 3, size: int = 1024, seed: int = 0
) -> SampleStacApi:
    """Write `n_scenes` sample scenes under `work_dir` and return a server offering them."""
    from stacmask.samples import scene_id_for, write_sample_scene

    api = SampleStacApi(work_dir)
    first = datetime(2021, 1, 4, 13, 30, tzinfo=timezone.utc)
    for i in range(n_scenes):
        acquired = first + timedelta(days=5 * i)
        scene_id = scene_id_for(acquired, 221 + (i % 3), 116 + i)
        scene = write_sample_scene(
            work_dir / scene_id,
            scene_id,
            width=size,
            height=size,
            seed=seed + i,
            cloud_fraction=DEMO_CLOUD_FRACTIONS[i % len(DEMO_CLOUD_FRACTIONS)],
            acquired=acquired,
            origin=(300_000.0 + 40_000.0 * (i % 3), 8_300_000.0 - 30_000.0 * i),
        )
        api.add_scene(scene)
    return api
