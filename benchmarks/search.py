"""The source search against a BDC-like STAC API on 127.0.0.1: requests and time per item.

    python benchmarks/search.py [--items 5000] [--delay 0.02]

The stand-in answers like INPE's Brazil Data Cube: 10 items a page unless asked (at most 1000),
`next` as a POST link whose `{"page": n}` is merged into the request, `--delay` seconds per
answer (a round trip). It prints, for stacmask's search (a page size of 100) and for
pystac-client with its defaults (what `stacmask build` used before), the items found, the
requests made and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from stacmask.pipeline.source_search import search_items  # noqa: E402

COLLECTION = "CB4A-WPM-L4-DN-1"


def _feature(number: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"CBERS_4A_WPM_20210101_{number // 1000:03d}_{number % 1000:03d}_L4",
        "collection": COLLECTION,
        "geometry": {"type": "Point", "coordinates": [-45.0, -15.0]},
        "bbox": [-45.0, -15.0, -45.0, -15.0],
        "properties": {"datetime": "2021-01-01T13:30:00Z", "path": "221", "row": "116"},
        "links": [],
        "assets": {},
    }


class BdcLike(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, count: int, delay: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.features = [_feature(n) for n in range(count)]
        self.delay = delay
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/"


class _Handler(BaseHTTPRequestHandler):
    server: BdcLike

    def _send(self, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests += 1
        base = self.server.url.rstrip("/")
        self._send(
            {
                "type": "Catalog",
                "id": "bdc",
                "stac_version": "1.0.0",
                "description": "BDC-like",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0-rc.1/core",
                    "https://api.stacspec.org/v1.0.0-rc.1/item-search",
                ],
                "links": [
                    {"rel": "self", "href": base + "/"},
                    {"rel": "search", "href": f"{base}/search", "type": "application/geo+json"},
                ],
            }
        )

    def do_POST(self) -> None:
        self.server.requests += 1
        time.sleep(self.server.delay)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        limit = min(int(body.get("limit") or 10), 1000)
        page = int(body.get("page") or 1)
        chosen = self.server.features[(page - 1) * limit : page * limit]
        links = []
        if page * limit < len(self.server.features):
            links.append(
                {
                    "rel": "next",
                    "href": self.server.url + "search",
                    "method": "POST",
                    "body": {"page": page + 1},
                    "merge": True,
                }
            )
        self._send({"type": "FeatureCollection", "features": chosen, "links": links})

    def log_message(self, format: str, *args: object) -> None:
        pass


def _run(name: str, count: int, delay: float, search: Any) -> None:
    server = BdcLike(count, delay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.perf_counter()
    found = search(server.url)
    seconds = time.perf_counter() - started
    server.shutdown()
    print(
        f"| {name} | {found} | {server.requests} | {seconds:.2f} | {found / seconds:,.0f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--delay", type=float, default=0.02, help="seconds per search answer")
    args = parser.parse_args()

    def stacmask_search(url: str) -> int:
        return sum(1 for _ in search_items(url, COLLECTION, timeout=30))

    def pystac_client_search(url: str) -> int:
        import warnings

        from pystac_client import Client

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = Client.open(url)
            return sum(1 for _ in client.search(collections=[COLLECTION]).items())

    print(f"{args.items} items, {args.delay * 1000:.0f} ms per search answer\n")
    print("| search | items | requests | seconds | items/s |")
    print("|---|---|---|---|---|")
    _run("stacmask (page size 100)", args.items, args.delay, stacmask_search)
    _run("pystac-client defaults (BDC: 10 a page)", args.items, args.delay, pystac_client_search)


if __name__ == "__main__":
    main()
