"""A small STAC API and file server on 127.0.0.1 for build tests (stdlib http.server).

Serves the landing page, conformance, /collections, /collections/{id}, /search (GET and POST,
filtered by collections and ids) and the files of a folder under /files/ with HTTP range
requests, as GDAL's /vsicurl/ needs them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class SampleApi:
    """Items and collections served at `url`; asset files from `files` under `url`files/."""

    def __init__(self, files: Path) -> None:
        self.files = files
        self.url = ""
        self.collections: dict[str, dict[str, Any]] = {}
        self.items: list[dict[str, Any]] = []

    def file_url(self, name: str) -> str:
        """URL of a file of the served folder."""
        return f"{self.url}files/{name}"

    def add_collection(self, collection_id: str) -> None:
        """Add an (almost empty) collection."""
        self.collections[collection_id] = {
            "type": "Collection",
            "stac_version": "1.1.0",
            "id": collection_id,
            "title": f"Test collection {collection_id}",
            "description": "Scenes for stacmask tests",
            "license": "CC-BY-SA-3.0",
            "extent": {
                "spatial": {"bbox": [[-180, -90, 180, 90]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
            },
            "links": [],
        }

    def add_item(self, item: dict[str, Any]) -> None:
        """Add an item; its self link is set to its URL on this server."""
        item["links"] = [
            {
                "rel": "self",
                "href": f"{self.url}collections/{item['collection']}/items/{item['id']}",
                "type": "application/geo+json",
            }
        ]
        self.items.append(item)

    def search(self, params: dict[str, Any]) -> dict[str, Any]:
        """A single-page FeatureCollection of the matching items."""
        collections = params.get("collections")
        ids = params.get("ids")
        found = [
            item
            for item in self.items
            if (not collections or item["collection"] in collections)
            and (not ids or item["id"] in ids)
        ]
        limit = int(params.get("limit") or 10_000)
        return {"type": "FeatureCollection", "features": found[:limit], "links": []}

    def landing(self) -> dict[str, Any]:
        """The landing page."""
        return {
            "type": "Catalog",
            "stac_version": "1.1.0",
            "id": "test-api",
            "description": "stacmask test STAC API",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "root", "href": self.url, "type": "application/json"},
                {"rel": "data", "href": f"{self.url}collections", "type": "application/json"},
                {
                    "rel": "search",
                    "href": f"{self.url}search",
                    "type": "application/geo+json",
                    "method": "POST",
                },
                {
                    "rel": "search",
                    "href": f"{self.url}search",
                    "type": "application/geo+json",
                    "method": "GET",
                },
            ],
        }


def _handler(api: SampleApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _json(self, data: Any, status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, name: str, head: bool) -> None:
            path = api.files / name
            if "/" in name or not path.is_file():
                self._json({"code": "NotFound", "description": name}, 404)
                return
            data = path.read_bytes()
            match = RANGE.match(self.headers.get("Range", ""))
            status, start, end = 200, 0, len(data) - 1
            if match and (match[1] or match[2]):
                status = 206
                if match[1]:
                    start = int(match[1])
                    end = min(int(match[2]), end) if match[2] else end
                else:
                    start = max(0, len(data) - int(match[2]))
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            if not head:
                self.wfile.write(data[start : end + 1])

        def _get(self, head: bool) -> None:
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            if not parts:
                self._json(api.landing())
            elif parts == ["conformance"]:
                self._json({"conformsTo": CONFORMANCE})
            elif parts == ["collections"]:
                self._json({"collections": list(api.collections.values()), "links": []})
            elif len(parts) == 2 and parts[0] == "collections" and parts[1] in api.collections:
                self._json(api.collections[parts[1]])
            elif parts == ["search"]:
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                params: dict[str, Any] = dict(query)
                for key in ("collections", "ids"):
                    if key in query:
                        params[key] = query[key].split(",")
                self._json(api.search(params))
            elif len(parts) == 2 and parts[0] == "files":
                self._file(parts[1], head)
            else:
                self._json({"code": "NotFound", "description": self.path}, 404)

        def do_GET(self) -> None:
            self._get(head=False)

        def do_HEAD(self) -> None:
            self._get(head=True)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            params = json.loads(self.rfile.read(length) or b"{}")
            if urlparse(self.path).path.rstrip("/") == "/search":
                self._json(api.search(params))
            else:
                self._json({"code": "NotFound", "description": self.path}, 404)

    return Handler


@contextmanager
def serve(api: SampleApi) -> Iterator[SampleApi]:
    """Serve `api` on 127.0.0.1 (an ephemeral port) while the context is open."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
