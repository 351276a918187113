"""Accuracy of every mask method on every real labelled scene of ../shared.

One command (see docs/methods.md, "Scores"):

    python benchmarks/accuracy.py                          # every scene x every method
    python benchmarks/accuracy.py --methods default,csmask --scenes sentinel2

Each method is run as a user would, `stacmask mask OUT.tif --reflectance FILE.tif --method M`
(in process), on the file as stored (no sun angles), then scored as `stacmask evaluate --labels
full|cloud|shadow [--complete]` scores it (accuracy.md's metrics; errors are predicted minus
true cover in points). A cell is "-" where the scene's truth does not label that metric; the
last column names the targets of issue 12 a row misses (TARGETS). It prints a markdown table
and, with --json, the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

#: Issue 12's targets by what the truth labels: (metric, bound, True for a floor / False for a
#: bound on the absolute value). The shadow-only target holds for dates with >= 4 % shadow
#: (both shared Layton dates).
TARGETS: dict[str, tuple[tuple[str, float, bool], ...]] = {
    "full": (
        ("kappa", 0.80, True),
        ("cloud_f1", 0.92, True),
        ("shadow_f1", 0.75, True),
        ("cloud_error", 3.0, False),
    ),
    "cloud": (("cloud_f1", 0.88, True), ("cloud_error", 5.0, False)),
    "shadow": (("shadow_f1", 0.70, True),),
}


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.3f}"


def missed(labels: str, scores: object) -> str:
    """The targets of TARGETS[labels] that `scores` (a SceneScores) misses, or "met"."""
    misses = []
    for metric, bound, floor in TARGETS[labels]:
        value = getattr(scores, metric)
        if floor and value < bound:
            misses.append(f"{metric} < {bound}")
        elif not floor and abs(value) > bound:
            misses.append(f"abs({metric}) > {bound}")
    return ", ".join(misses) or "met"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--scenes", default=None, help="comma-separated scene names")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from stacmask.methods.registry import DEFAULT_METHOD, METHODS
    from tests.labelled import SCENES, mask_file, score_mask

    methods = args.methods.split(",") if args.methods else list(METHODS)
    methods = [DEFAULT_METHOD if m == "default" else m for m in methods]
    scenes = [s for s in SCENES if args.scenes is None or s.name in args.scenes.split(",")]
    print(
        "| scene | labels | method | kappa | cloud F1 | shadow F1 | cloud err | shadow err "
        "| time s | targets |\n|---|---|---|---|---|---|---|---|---|---|",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="stacmask-accuracy-") as scratch:
        for scene in scenes:
            reflectance, truth = SHARED / scene.reflectance, SHARED / scene.truth
            if not reflectance.exists() or not truth.exists():
                raise SystemExit(f"missing shared data: {reflectance} or {truth}")
            for method in methods:
                out = Path(scratch) / f"{scene.name}_{method}.tif"
                started = time.perf_counter()
                mask_file(reflectance, out, method)
                elapsed = time.perf_counter() - started
                s = score_mask(out, truth, scene)
                name = f"{method} (default)" if method == DEFAULT_METHOD else method
                print(
                    f"| {scene.name} | {scene.labels} | {name} | {_cell(s.kappa)} "
                    f"| {_cell(s.cloud_f1)} | {_cell(s.shadow_f1)} "
                    f"| {_cell(s.cloud_error, True)} | {_cell(s.shadow_error, True)} "
                    f"| {elapsed:.1f} | {missed(scene.labels, s)} |",
                    flush=True,
                )
                row = {"scene": scene.name, "method": method, "seconds": elapsed}
                rows.append(row | asdict(s))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
