"""A small STAC API and range-capable file server on 127.0.0.1, stdlib only, for tests.

Serves a landing page, /collections, /collections/{id}, /collections/{id}/items/{item},
GET and POST /search (collections, ids, limit with `next` paging) and /files/<path> with HEAD
and single Range requests (what GDAL's /vsicurl/ sends). Standing in for the project's
SampleStacApi until it lands on main.

The server runs in its own process: rasterio keeps the GIL while GDAL opens a URL, so a
server thread in the test process would deadlock. Collections and items are kept in a JSON
file under `root` that the server re-reads on each request.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.queues
import os
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


STATE_FILE = ".stac_api.json"


class StacApi:
    """Handle on a running API: its URL, and the collections and items it serves."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root.resolve()
        self.port = port
        self.collections: dict[str, dict[str, Any]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}

    @property
    def url(self) -> str:
        """Root URL of the API, with a trailing slash."""
        return f"http://127.0.0.1:{self.port}/"

    def file_url(self, path: Path) -> str:
        """URL of a file under `root`."""
        return f"{self.url}files/{path.resolve().relative_to(self.root).as_posix()}"

    def _save(self) -> None:
        tmp = self.root / f"{STATE_FILE}.tmp"
        tmp.write_text(json.dumps({"collections": self.collections, "items": self.items}))
        os.replace(tmp, self.root / STATE_FILE)

    def add_collection(self, collection: dict[str, Any]) -> None:
        """Serve a collection (its links are filled in)."""
        cid = collection["id"]
        collection["links"] = [
            {"rel": "self", "href": f"{self.url}collections/{cid}", "type": "application/json"},
            {"rel": "root", "href": self.url, "type": "application/json"},
            {"rel": "items", "href": f"{self.url}collections/{cid}/items"},
        ]
        self.collections[cid] = collection
        self.items.setdefault(cid, [])
        self._save()

    def add_item(self, item: dict[str, Any]) -> None:
        """Serve an item of an already added collection (self, parent, root links set)."""
        cid = item["collection"]
        item["links"] = [
            {"rel": "self", "href": f"{self.url}collections/{cid}/items/{item['id']}"},
            {"rel": "parent", "href": f"{self.url}collections/{cid}"},
            {"rel": "collection", "href": f"{self.url}collections/{cid}"},
            {"rel": "root", "href": self.url},
        ]
        self.items[cid].append(item)
        self._save()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/"

    @property
    def state(self) -> dict[str, Any]:
        path = self.root / STATE_FILE
        if not path.exists():
            return {"collections": {}, "items": {}}
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    @property
    def collections(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.state["collections"]
        return found

    @property
    def items(self) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = self.state["items"]
        return found

    def landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "id": "test-stac-api",
            "stac_version": "1.1.0",
            "description": "STAC API on 127.0.0.1 for stacmask tests",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "root", "href": self.url, "type": "application/json"},
                {"rel": "data", "href": f"{self.url}collections", "type": "application/json"},
                {
                    "rel": "search",
                    "href": f"{self.url}search",
                    "type": "application/geo+json",
                    "method": "GET",
                },
                {
                    "rel": "search",
                    "href": f"{self.url}search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
            ],
        }

    def search(self, params: dict[str, Any]) -> dict[str, Any]:
        items = self.items
        collections = params.get("collections") or list(items)
        ids = params.get("ids")
        limit = int(params.get("limit") or 10)
        start = int(params.get("token") or 0)
        found = [
            item
            for cid in collections
            for item in items.get(cid, [])
            if not ids or item["id"] in ids
        ]
        page = found[start : start + limit]
        links: list[dict[str, Any]] = []
        if start + limit < len(found):
            body = dict(params, token=str(start + limit))
            links.append(
                {"rel": "next", "href": f"{self.url}search", "method": "POST", "body": body}
            )
        return {"type": "FeatureCollection", "features": page, "links": links}


def _listish(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split(",") if v]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, data: dict[str, Any], status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self) -> None:
        self._json({"code": "NotFound", "description": self.path}, 404)

    def do_HEAD(self) -> None:
        self._file(head=True)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["files"]:
            self._file(head=False)
        elif not parts:
            self._json(self.server.landing())
        elif parts == ["conformance"]:
            self._json({"conformsTo": CONFORMANCE})
        elif parts == ["collections"]:
            self._json({"collections": list(self.server.collections.values()), "links": []})
        elif len(parts) == 2 and parts[0] == "collections":
            collection = self.server.collections.get(parts[1])
            if collection is None:
                self._not_found()
            else:
                self._json(collection)
        elif len(parts) == 4 and parts[0] == "collections" and parts[2] == "items":
            for item in self.server.items.get(parts[1], []):
                if item["id"] == parts[3]:
                    self._json(item)
                    return
            self._not_found()
        elif parts == ["search"]:
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            params: dict[str, Any] = {
                "collections": _listish(query.get("collections")),
                "ids": _listish(query.get("ids")),
                "limit": query.get("limit"),
                "token": query.get("token"),
            }
            self._json(self.server.search(params))
        else:
            self._not_found()

    def do_POST(self) -> None:
        if urlparse(self.path).path.rstrip("/") != "/search":
            self._not_found()
            return
        length = int(self.headers.get("Content-Length") or 0)
        params = json.loads(self.rfile.read(length) or b"{}")
        self._json(self.server.search(params))

    def _file(self, head: bool) -> None:
        relative = urlparse(self.path).path.removeprefix("/files/")
        path = (self.server.root / relative).resolve()
        if not path.is_relative_to(self.server.root) or not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start, end = 0, len(data) - 1
        status = 200
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            first, _, last = ranged.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last), len(data) - 1) if last else len(data) - 1
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if not head:
            self.wfile.write(data[start : end + 1])


def _serve(root: str, ports: multiprocessing.queues.Queue[int]) -> None:
    server = _Server(Path(root))
    ports.put(server.server_port)
    server.serve_forever()


@contextmanager
def running(root: Path) -> Iterator[StacApi]:
    """A STAC API serving `root` from a child process; stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    ports: multiprocessing.queues.Queue[int] = context.Queue()
    process = context.Process(target=_serve, args=(str(root.resolve()), ports), daemon=True)
    process.start()
    try:
        port = ports.get(timeout=30)
        yield StacApi(root, port)
    finally:
        process.terminate()
        process.join(timeout=10)
