"""Speed and memory of `stacmask mask` against the floor of reading the bands.

One command (see README, "Benchmarks"):

    python benchmarks/run.py                      # 2048, 4096, 8192 and a full WPM scene
    python benchmarks/run.py --sizes 2048,4096    # quicker

For each scene size it writes a synthetic CBERS-4A WPM scene (four DEFLATE-tiled uint16 bands,
cached under --workdir), then runs, each in a fresh process so that peak RSS is its own:
  - the read floor: decoding the four bands once, tile by tile, on two threads;
  - stacmask's own decoding, streamed from local files and over HTTP from the sample API
    serving them on 127.0.0.1 from another process (what one-pass methods such as `physical`
    read), and into the scratch copy that methods making several passes (`notebook`) read;
  - `stacmask mask` with each method;
  - on sizes up to 8192 x 8192, the plain in-memory float64 numpy evaluation of the notebook
    rules (tests/notebook_oracle.py), the baseline the windowed engine replaces.
It prints time, peak RSS and the ratios, and how both grow with scene size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FULL = (14584, 14198)  # rows, columns of a full WPM multispectral scene

READ_FLOOR = """
import sys, rasterio
from concurrent.futures import ThreadPoolExecutor
def read(path):
    with rasterio.open(path) as ds:
        for _, window in ds.block_windows(1):
            ds.read(1, window=window)
with ThreadPoolExecutor(2) as pool:
    list(pool.map(read, sys.argv[1:]))
"""

DECODE = """
import sys
sys.path.insert(0, sys.argv[1])
from stacmask.constants import DEFAULT_GAINS
from stacmask.sensors.cbers4a.radiometry import Radiometry
from stacmask.sensors.local import band_files_inputs
from stacmask.reading.rasters import RasterBandSource
radiometry = Radiometry(DEFAULT_GAINS, "default", 55.0, 45.0, None)
inputs = band_files_inputs(sys.argv[3:], radiometry=radiometry)
with RasterBandSource(inputs, cache_bands=sys.argv[2] == "cached") as source:
    for window in source.strips():
        source.read_raw(window)
"""

SERVE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.sample_api import SampleStacApi
paths = [Path(p) for p in sys.argv[2:]]
with SampleStacApi(paths[0].parent) as api:
    print(" ".join(api.data_url(p) for p in paths), flush=True)
    sys.stdin.read()  # serve until the benchmark closes stdin
"""

IN_MEMORY = """
import sys, numpy as np, rasterio
sys.path.insert(0, sys.argv[1])
from tests.notebook_oracle import notebook_oracle
from stacmask.constants import DEFAULT_GAINS
dn = np.stack([rasterio.open(p).read(1) for p in sys.argv[2:]])
notebook_oracle(dn, DEFAULT_GAINS)
"""


def measure(command: list[str]) -> tuple[float, float]:
    """Wall time in seconds and peak RSS in GB of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"benchmark step failed ({status}): {' '.join(command)}")
    return elapsed, usage.ru_maxrss / 1024 / 1024  # ru_maxrss is in KiB on Linux


def scene(workdir: Path, rows: int, cols: int) -> list[Path]:
    """The four band files of a synthetic scene of this size, written on first use."""
    from stacmask.demo.samples import write_sample_scene

    folder = workdir / f"scene_{rows}x{cols}"
    scene_id = "CBERS_4A_WPM_20210115_221_116_L4"
    bands = [folder / f"{scene_id}_BAND{b}.tif" for b in range(1, 5)]
    if not all(p.exists() for p in bands):
        print(f"writing a {cols} x {rows} synthetic scene into {folder} ...", flush=True)
        started = time.perf_counter()
        written = write_sample_scene(
            folder, scene_id, width=cols, height=rows, seed=7, cloud_fraction=0.3, blocksize=512
        )
        bands = [written.bands[f"BAND{b}"] for b in range(1, 5)]
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    return bands


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="2048,4096,8192,full", help="square sizes, or 'full'")
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--workdir", type=Path, default=REPO / ".cache" / "benchmarks")
    parser.add_argument("--in-memory-max", type=int, default=8192, help="largest in-memory run")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from stacmask.methods.registry import METHODS

    methods = args.methods.split(",") if args.methods else list(METHODS)
    sizes = [FULL if s == "full" else (int(s), int(s)) for s in args.sizes.split(",")]
    rows_out = []
    for rows, cols in sizes:
        bands = scene(args.workdir, rows, cols)
        mpx = rows * cols / 1e6
        floor_s, floor_gb = measure([sys.executable, "-c", READ_FLOOR, *map(str, bands)])
        row = {"size": f"{cols}x{rows}", "mpx": mpx, "read": (floor_s, floor_gb)}
        decode = [sys.executable, "-c", DECODE, str(REPO)]
        row["decode-local"] = measure([*decode, "streamed", *map(str, bands)])
        row["decode-local-cached"] = measure([*decode, "cached", *map(str, bands)])
        with subprocess.Popen(
            [sys.executable, "-c", SERVE, str(REPO), *map(str, bands)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as server:
            assert server.stdout is not None and server.stdin is not None
            urls = server.stdout.readline().split()
            row["decode-http"] = measure([*decode, "streamed", *urls])
            server.stdin.close()
        for method in methods:
            out = args.workdir / f"mask_{method}_{rows}x{cols}.tif"
            row[method] = measure(
                [
                    sys.executable,
                    "-m",
                    "stacmask",
                    "mask",
                    str(out),
                    "--method",
                    method,
                    "--bands",
                    *map(str, bands),
                ]
            )
        if max(rows, cols) <= args.in_memory_max:
            row["in-memory"] = measure(
                [sys.executable, "-c", IN_MEMORY, str(REPO), *map(str, bands)]
            )
        rows_out.append(row)
        report(rows_out, methods)


def report(rows: list[dict[str, object]], methods: list[str]) -> None:
    """Print the table so far (markdown)."""
    print()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    header = (
        "| scene | Mpx | read floor s | stacmask decode local s | over HTTP s (x local) | "
        + "decode into scratch s | "
        + " | ".join(f"{m} s (x floor) | {m} peak GB" for m in methods)
        + " | in-memory notebook s | in-memory peak GB | speed-up vs in-memory, per method |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for row in rows:
        floor_s, _ = row["read"]  # type: ignore[misc]
        local_s, _ = row["decode-local"]  # type: ignore[misc]
        http_s, _ = row["decode-http"]  # type: ignore[misc]
        cached_s, _ = row["decode-local-cached"]  # type: ignore[misc]
        cells = [
            str(row["size"]),
            f"{row['mpx']:.0f}",
            f"{floor_s:.1f}",
            f"{local_s:.1f}",
            f"{http_s:.1f} ({http_s / local_s:.2f}x)",
            f"{cached_s:.1f}",
        ]
        for m in methods:
            s, gb = row[m]  # type: ignore[misc]
            cells += [f"{s:.1f} ({s / floor_s:.1f}x)", f"{gb:.2f}"]
        if "in-memory" in row:
            s, gb = row["in-memory"]  # type: ignore[misc]
            speed_ups = [f"{m} {s / row[m][0]:.1f}x" for m in methods]  # type: ignore[index]
            cells += [f"{s:.1f}", f"{gb:.2f}", ", ".join(speed_ups)]
        else:
            cells += ["-", "-", "-"]
        print("| " + " | ".join(cells) + " |")
    print(flush=True)


if __name__ == "__main__":
    main()
