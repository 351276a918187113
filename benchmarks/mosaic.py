"""A full-size WPM-like test scene tiled from the real labelled chips of ../shared, and its score.

No full-size labelled WPM scene exists; this builds one from real labelled content so that the
full-scene settings of the default method (the CNN's budget, docs/methods.md "Speed and
memory") can be scored where they apply:

    python benchmarks/mosaic.py build /tmp/mosaic            # 14198 x 14584 at 8 m
    stacmask mask /tmp/mosaic/mask.tif --reflectance /tmp/mosaic/reflectance.tif
    python benchmarks/mosaic.py score /tmp/mosaic /tmp/mosaic/mask.tif

`build` resamples each chip to 8 m by nearest neighbour (ground sizes kept: the 30 m chips grow
3.75 times, the 10 m ones 1.25 times), cuts them into 640 x 640 tiles (the labelled Sentinel-2
scene gives 9, the 38-Cloud patch 4, On Cloud N jaag and holy one each), and fills a grid of
tiles, each drawn at random (seeded) by source with the shares of SOURCES (--weights; by blocks
of N x N tiles with --cluster N), in one of its eight flips and rotations. The truth is cloud
only (4 cloud, 0 not cloud, 255 not labelled), as the On Cloud N and 38-Cloud chips label it;
the labelled scene's full labels are reduced to cloud / not cloud.
Files: reflectance.tif (float32, 4 bands, tiled), truth.tif, sources.npy (source of each tile).
`score` prints cloud F1, precision, recall and cover error (as `stacmask evaluate --labels
cloud`) over the whole mosaic and over the tiles of each source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
FULL = (14584, 14198)  # rows, columns of a full WPM multispectral scene
PIXEL = 8.0
TILE = 640
CLOUD = 4
#: (name, reflectance and truth under ../shared/data, share of the tiles): small cumulus over
#: dark land (jaag) and broken cloud (the labelled scene, 38-Cloud) most, overcast (holy) least.
SOURCES = (
    ("sentinel2", "labelled/sentinel2_reflectance.tif", "labelled/sentinel2_truth.tif", 0.35),
    (
        "38cloud",
        "labelled-extra/38cloud_LC08_002053_20160520_p192_reflectance.tif",
        "labelled-extra/38cloud_LC08_002053_20160520_p192_truth.tif",
        0.25,
    ),
    (
        "jaag",
        "labelled-extra/oncloudn_jaag_reflectance.tif",
        "labelled-extra/oncloudn_jaag_truth.tif",
        0.3,
    ),
    (
        "holy",
        "labelled-extra/oncloudn_holy_reflectance.tif",
        "labelled-extra/oncloudn_holy_truth.tif",
        0.1,
    ),
)


def _tiles(reflectance: Path, truth: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The chip resampled to 8 m (nearest) and cut into TILE x TILE tiles (cloud-only truth)."""
    with rasterio.open(reflectance) as src:
        r = src.read().astype(np.float32)
        size = abs(src.res[0])
    with rasterio.open(truth) as src:
        t = src.read(1)
    t = np.where(t == 255, 255, np.where(t == CLOUD, CLOUD, 0)).astype(np.uint8)
    n = int(r.shape[1] * size / PIXEL), int(r.shape[2] * size / PIXEL)
    rows = ((np.arange(n[0]) + 0.5) * PIXEL / size).astype(int)
    cols = ((np.arange(n[1]) + 0.5) * PIXEL / size).astype(int)
    r, t = r[:, rows][:, :, cols], t[rows][:, cols]
    out = []
    for i in range(0, n[0] - TILE + 1, TILE):
        for j in range(0, n[1] - TILE + 1, TILE):
            out.append((r[:, i : i + TILE, j : j + TILE], t[i : i + TILE, j : j + TILE]))
    return out


def _dihedral(a: np.ndarray, v: int) -> np.ndarray:
    a = np.rot90(a, v % 4, axes=(-2, -1))
    return a[..., ::-1] if v >= 4 else a


def build(
    out: Path, rows: int, cols: int, seed: int, weights: list[float], cluster: int = 1
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pools = [_tiles(SHARED / r, SHARED / t) for _, r, t, _ in SOURCES]
    rng = np.random.default_rng(seed)
    grid = (-(-rows // TILE), -(-cols // TILE))
    blocks = (-(-grid[0] // cluster), -(-grid[1] // cluster))
    share = np.array(weights) / sum(weights)
    drawn = rng.choice(len(SOURCES), size=blocks, p=share)
    sources = np.repeat(np.repeat(drawn, cluster, axis=0), cluster, axis=1)[: grid[0], : grid[1]]
    profile = dict(
        driver="GTiff", width=cols, height=rows, crs="EPSG:32723", tiled=True,
        blockxsize=512, blockysize=512, transform=from_origin(500000.0, 8000000.0, PIXEL, PIXEL),
    )  # fmt: skip
    with (
        rasterio.open(out / "reflectance.tif", "w", count=4, dtype="float32", **profile) as r_ds,
        rasterio.open(
            out / "truth.tif", "w", count=1, dtype="uint8", nodata=255, **profile
        ) as t_ds,
    ):
        for gi in range(grid[0]):
            h = min(TILE, rows - gi * TILE)
            band = np.empty((4, h, cols), np.float32)
            truth = np.empty((h, cols), np.uint8)
            for gj in range(grid[1]):
                w = min(TILE, cols - gj * TILE)
                pool = pools[sources[gi, gj]]
                r, t = pool[rng.integers(len(pool))]
                v = int(rng.integers(8))
                band[:, :, gj * TILE : gj * TILE + w] = _dihedral(r, v)[:, :h, :w]
                truth[:, gj * TILE : gj * TILE + w] = _dihedral(t, v)[:h, :w]
            window = Window(0, gi * TILE, cols, h)
            r_ds.write(band, window=window)
            t_ds.write(truth, 1, window=window)
        r_ds.descriptions = ("blue", "green", "red", "nir")
    np.save(out / "sources.npy", sources)
    counts = {name: int((sources == i).sum()) for i, (name, *_) in enumerate(SOURCES)}
    print(f"{out}: {rows} x {cols} at {PIXEL:g} m, tiles per source {counts}")


def score(workdir: Path, mask: Path) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(REPO))
    from stacmask.evaluate import score_class

    sources = np.load(workdir / "sources.npy")
    with rasterio.open(mask) as m, rasterio.open(workdir / "truth.tif") as t:
        predicted, truth = m.read(1), t.read(1)
    kind = np.repeat(np.repeat(sources.astype(np.uint8), TILE, axis=0), TILE, axis=1)[
        : truth.shape[0], : truth.shape[1]
    ]
    result = {}
    for name, index in [("all", None)] + [(s[0], i) for i, s in enumerate(SOURCES)]:
        where = np.ones_like(truth, bool) if index is None else kind == index
        if not where.any():
            continue
        one = score_class(predicted[where], truth[where], "cloud")
        result[name] = dict(
            f1=round(one.f1, 4), precision=round(one.precision, 4), recall=round(one.recall, 4),
            cover_error=round(one.cover_error, 2),
        )  # fmt: skip
        print(f"{name:10s} cloud F1 {one.f1:.3f}  precision {one.precision:.3f}  "
              f"recall {one.recall:.3f}  cover error {one.cover_error:+.2f}")  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the mosaic, its truth and its tile sources")
    b.add_argument("workdir", type=Path)
    b.add_argument("--size", default="full", help="'full' (14198 x 14584) or ROWSxCOLS")
    b.add_argument("--seed", type=int, default=12)
    b.add_argument(
        "--weights",
        default=",".join(str(w) for *_, w in SOURCES),
        help="share of the tiles per source, in SOURCES' order (sentinel2,38cloud,jaag,holy)",
    )
    b.add_argument("--cluster", type=int, default=1, help="draw sources by blocks of N x N tiles")
    s = sub.add_parser("score", help="score a mask of the mosaic (cloud only)")
    s.add_argument("workdir", type=Path)
    s.add_argument("mask", type=Path)
    s.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "build":
        rows, cols = FULL if args.size == "full" else map(int, args.size.split("x"))
        weights = [float(w) for w in args.weights.split(",")]
        if len(weights) != len(SOURCES) or min(weights) < 0 or sum(weights) <= 0:
            parser.error(f"--weights needs {len(SOURCES)} shares >= 0, not {args.weights!r}")
        build(args.workdir, rows, cols, args.seed, weights, args.cluster)
    else:
        result = score(args.workdir, args.mask)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
