"""The catalog at scale: `stacmask serve` and `stacmask search` on 10k, 100k and 1M items.

    python benchmarks/catalog.py                          # 10k, 100k and 1M items
    python benchmarks/catalog.py --sizes 10000,100000     # quicker

Synthetic items (tests/synthetic_catalog.py: JSON written directly, cached under --workdir)
in the layout `stacmask build` writes. For each size it prints, for the DuckDB index:
  - first start (no index yet: every item file read) and later start (index snapshot there) of
    `stacmask serve`, until it answers;
  - query latencies over HTTP, median of 5: filter + sort top 100, bbox + month, and 10,000
    results paged with limit 1000 (following the `next` links);
  - `stacmask search` (a fresh process, the query above);
  - the server's peak RSS;
  - 200 concurrent clients (an asyncio client, one connection each) on searches, and on range
    reads of a mask COG and a preview: requests per second, p50 and p99;
and the same start and queries for the JSON walk this index replaced (every item read into
memory, the filter evaluated item by item by `cql2`, sorted in Python), in its own process,
with the ratio index / JSON walk. The JSON walk is skipped above --baseline-max items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FILTER = '"eo:cloud_cover" < 20 AND "stacmask:shadow_cover" < 5'
SORTBY = "+eo:cloud_cover"
BBOX = "-60,-30,-45,-10"
MONTH = "2020-01-01T00:00:00Z/2020-01-31T23:59:59Z"
PAGED = '"eo:cloud_cover" >= 0'
QUERIES: dict[str, dict[str, Any]] = {
    "filter+sort top 100": {"filter": FILTER, "sortby": SORTBY, "limit": 100},
    "bbox+month": {"bbox": BBOX, "datetime": MONTH, "limit": 100},
}

BASELINE = r"""
import json, sys, time, resource
sys.path.insert(0, sys.argv[1])
import cql2
from shapely.geometry import box, shape
from stacmask.catalog.walk import ItemLink, walk_catalog
started = time.perf_counter()
items = [n.read() for n in walk_catalog(sys.argv[2]) if isinstance(n, ItemLink)]
shapes = [shape(i["geometry"]) for i in items]
start_s = time.perf_counter() - started
def run(expr, area=None, month=None, offset=0, limit=100, key=None):
    hits = []
    for item, geom in zip(items, shapes):
        p = item["properties"]
        if area is not None and not area.intersects(geom):
            continue
        if month is not None and not (month[0] <= p["datetime"] <= month[1]):
            continue
        if expr is not None and not expr.matches(item):
            continue
        hits.append(item)
    hits.sort(key=key or (lambda i: i["properties"]["datetime"]), reverse=key is None)
    return len(hits), hits[offset:offset + limit]
def timed(fn):
    runs = []
    for _ in range(3):
        t = time.perf_counter(); fn(); runs.append(time.perf_counter() - t)
    return sorted(runs)[1]
f = cql2.parse_text(sys.argv[3])
q1 = timed(lambda: run(f, key=lambda i: i["properties"]["eo:cloud_cover"]))
w, s, e, n = map(float, sys.argv[4].split(","))
q2 = timed(lambda: run(None, area=box(w, s, e, n), month=("2020-01-01", "2020-01-31T23:59:59Z")))
paged = cql2.parse_text(sys.argv[5])
t = time.perf_counter()
for page in range(10):
    run(paged, offset=page * 1000, limit=1000)
q3 = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"start": start_s, "filter+sort top 100": q1, "bbox+month": q2,
                  "paging 10k": q3, "peak_gb": peak}))
"""


def ensure_catalog(workdir: Path, count: int) -> Path:
    """The synthetic catalog of `count` items, written on first use."""
    from tests.synthetic_catalog import write_catalog

    root = workdir / f"catalog-{count}"
    if not (root / "catalog.json").is_file():
        print(f"writing {count} synthetic items into {root} ...", flush=True)
        started = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        write_catalog(root, count)
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    _fake_assets(root)
    return root


def _fake_assets(root: Path) -> None:
    """Mask and preview files (4 MB and 200 kB, one file hard-linked) for the first 200 items."""
    from tests.synthetic_catalog import COLLECTION, synthetic_item

    blob = root / ".bench-blob"
    if not blob.exists():
        blob.write_bytes(os.urandom(4 << 20))
        (root / ".bench-preview").write_bytes(os.urandom(200 << 10))
    for number in range(200):
        item = synthetic_item(number)["id"]
        for name, source in (
            (f"{item}_mask.tif", blob),
            (f"{item}_preview.png", root / ".bench-preview"),
        ):
            target = root / COLLECTION / item / name
            if not target.exists():
                os.link(source, target)


class Server:
    """`stacmask serve` in a subprocess: time to first answer, peak RSS."""

    def __init__(self, catalog: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stacmask", "serve", str(catalog), "--port", str(port)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        import requests

        while True:
            try:
                requests.get(self.url, timeout=5).raise_for_status()
                break
            except requests.RequestException:
                if self.process.poll() is not None:
                    error = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise SystemExit(error) from None
                time.sleep(0.05)
        self.start_s = time.perf_counter() - started

    def peak_gb(self) -> float:
        """Peak resident memory of the server so far (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024 / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _get(url: str) -> dict[str, Any]:
    import requests

    answer = requests.get(url, timeout=120)
    answer.raise_for_status()
    return dict(answer.json())


def query_times(url: str) -> dict[str, float]:
    """Each query the first time (its selection not cached yet) and the median of 5 more (the
    next pages of a query are slices of the cached selection); the 10 pages of 1000."""
    times: dict[str, float] = {}
    for name, params in QUERIES.items():
        runs = []
        for _ in range(6):
            started = time.perf_counter()
            _get(f"{url}search?{urlencode(params)}")
            runs.append(time.perf_counter() - started)
        times[name] = runs[0]
        times[f"{name} (cached)"] = statistics.median(runs[1:])
    started = time.perf_counter()
    page = _get(f"{url}search?{urlencode({'filter': PAGED, 'limit': 1000})}")
    pages = 1
    while pages < 10:
        following = next(link["href"] for link in page["links"] if link["rel"] == "next")
        page = _get(following)
        pages += 1
    times["paging 10k"] = time.perf_counter() - started
    return times


async def _client(host: str, port: int, targets: list[str], headers: str) -> list[float]:
    reader, writer = await asyncio.open_connection(host, port)
    latencies = []
    try:
        for target in targets:
            started = time.perf_counter()
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if status >= 300:
                raise RuntimeError(f"{target}: HTTP {status}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()
    return latencies


def load(url: str, clients: int, requests_each: int, target: Any, headers: str = "") -> str:
    """`clients` connections at once, each sending `requests_each` requests one after another."""
    parts = urlsplit(url)

    async def main() -> list[list[float]]:
        return await asyncio.gather(
            *(
                _client(
                    parts.hostname or "127.0.0.1",
                    parts.port or 80,
                    [target(c, r) for r in range(requests_each)],
                    headers,
                )
                for c in range(clients)
            )
        )

    started = time.perf_counter()
    latencies = sorted(t for client in asyncio.run(main()) for t in client)
    elapsed = time.perf_counter() - started
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return f"{len(latencies) / elapsed:.0f} req/s, p50 {p50:.2f} s, p99 {p99:.2f} s"


def cli_search(catalog: Path) -> float:
    """Wall time of one `stacmask search` in a fresh process (median of 3)."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "stacmask",
                "search",
                str(catalog),
                "--filter",
                FILTER,
                "--sortby",
                SORTBY,
                "--limit",
                "100",
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def baseline(catalog: Path) -> dict[str, float]:
    """The JSON walk, in its own process."""
    done = subprocess.run(
        [sys.executable, "-c", BASELINE, str(REPO), str(catalog), FILTER, BBOX, PAGED],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench(catalog: Path, count: int, clients: int, baseline_max: int) -> None:
    """Everything for one catalog size; prints as it goes."""
    from tests.stac_server import free_port

    print(f"\n== {count} items ==", flush=True)
    shutil.rmtree(catalog / ".stacmask-index", ignore_errors=True)
    server = Server(catalog, free_port())
    try:
        times = _measure(server, count, clients)
    finally:
        server.stop()
    later = Server(catalog, free_port())
    later.stop()
    print(f"later start (index snapshot there): {later.start_s:.1f} s", flush=True)
    print(f"stacmask search (fresh process): {cli_search(catalog):.2f} s", flush=True)
    if count > baseline_max:
        print(f"JSON walk: skipped (over {baseline_max} items)", flush=True)
        return
    walk = baseline(catalog)
    first, second = server.start_s / walk["start"], later.start_s / walk["start"]
    print(
        f"JSON walk: start {walk['start']:.1f} s (index first start x{first:.2f}, later start "
        f"x{second:.2f}), peak RSS {walk['peak_gb']:.2f} GB",
        flush=True,
    )
    for name in [*QUERIES, "paging 10k"]:
        print(
            f"JSON walk {name}: {walk[name]:.3f} s (index x{times[name] / walk[name]:.3f})",
            flush=True,
        )


def _measure(server: Server, count: int, clients: int) -> dict[str, float]:
    """Queries, memory and load on a running server."""
    from tests.synthetic_catalog import COLLECTION, synthetic_item

    print(f"first start (index built from the JSON): {server.start_s:.1f} s", flush=True)
    times = query_times(server.url)
    for name, seconds in times.items():
        print(f"{name}: {seconds:.3f} s", flush=True)
    print(f"server peak RSS after the queries: {server.peak_gb():.2f} GB", flush=True)
    offsets = max(1, min(count, 2000) // 10)

    def search(client: int, request: int) -> str:
        params = {"filter": FILTER, "sortby": SORTBY, "token": (client * 7 + request) % offsets}
        return f"/search?{urlencode(params)}"

    item = synthetic_item(0)["id"]
    mask = f"/catalog/{COLLECTION}/{item}/{item}_mask.tif"
    preview = f"/catalog/{COLLECTION}/{item}/{item}_preview.png"
    print(f"{clients} clients x 5 searches: {load(server.url, clients, 5, search)}", flush=True)
    ranged = "Range: bytes=1000000-1262143\r\n"
    print(
        f"{clients} clients x 5 COG range reads (256 kB): "
        f"{load(server.url, clients, 5, lambda c, r: mask, ranged)}",
        flush=True,
    )
    print(
        f"{clients} clients x 5 previews (200 kB): "
        f"{load(server.url, clients, 5, lambda c, r: preview)}",
        flush=True,
    )
    print(f"server peak RSS: {server.peak_gb():.2f} GB", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workdir", type=Path, default=REPO / ".cache" / "benchmarks")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--baseline-max", type=int, default=100_000)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for count in (int(size) for size in args.sizes.split(",")):
        bench(ensure_catalog(args.workdir, count), count, args.clients, args.baseline_max)


if __name__ == "__main__":
    main()
