"""A scripted HTTP server on 127.0.0.1 for network tests: each request goes to a Python function.

`ScriptedServer(answer)` calls `answer(request)` for every request and sends what it returns
(an `Answer`: status, headers, body, a delay before answering). Every request is kept in
`server.requests` (method, path with query, headers, JSON body when there is one). Files are
served with HTTP Range support (`Answer.file`), so GDAL can read rasters from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

GEOJSON = "application/geo+json"
#: What a STAC API with item search declares (pystac-client needs it to search).
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
]


def landing(base: str) -> dict[str, Any]:
    """A STAC API landing page at `base` with GET and POST item search."""
    return {
        "type": "Catalog",
        "id": "api",
        "stac_version": "1.0.0",
        "description": "scripted",
        "conformsTo": CONFORMANCE,
        "links": [
            {"rel": "search", "type": GEOJSON, "href": f"{base}/search", "method": "GET"},
            {"rel": "search", "type": GEOJSON, "href": f"{base}/search", "method": "POST"},
        ],
    }


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes

    @property
    def route(self) -> str:
        """The path without the query string."""
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    file: Path | None = None  # served with Range support instead of `body`

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Answer:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
        )
        with self.server.lock:
            self.server.requests.append(request)
        answer = self.server.answer(request)
        if answer.delay:
            time.sleep(answer.delay)
        body = answer.body
        status = answer.status
        headers = dict(answer.headers)
        if answer.file is not None:
            body, status, headers = _ranged(answer.file, self.headers.get("Range"), headers)
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the client hung up
            pass

    do_GET = do_POST = do_HEAD = do_PUT = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


def _ranged(
    path: Path, spec: str | None, headers: dict[str, str]
) -> tuple[bytes, int, dict[str, str]]:
    data = path.read_bytes()
    headers = {**headers, "Accept-Ranges": "bytes"}
    if not spec or not spec.startswith("bytes="):
        return data, 200, headers
    start_text, _, end_text = spec[6:].split(",")[0].partition("-")
    start = int(start_text or 0)
    end = min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
    headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return data[start : end + 1], 206, headers


class ScriptedServer(ThreadingHTTPServer):
    """A started-on-enter HTTP server on 127.0.0.1 answering with `answer(request)`."""

    daemon_threads = True

    def __init__(self, answer: Callable[[Request], Answer]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def routes(self) -> list[str]:
        with self.lock:
            return [request.route for request in self.requests]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()
