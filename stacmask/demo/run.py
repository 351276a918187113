"""`stacmask demo`: a real build with no network, from embedded sample scenes.

Synthetic CBERS-4A WPM scenes (clear, partly cloudy and overcast, with water, bright soil and
no-data corners; INPE-style XML with sun angles) are generated into a scratch folder and served
by the sample STAC API on 127.0.0.1, then built exactly as `stacmask build` builds INPE's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from stacmask.constants import BAND_KEY_PRESETS, DEFAULT_BAND_KEYS, DEFAULT_COLLECTION
from stacmask.methods import DEFAULT_METHOD
from stacmask.pipeline.build import BuildOptions, BuildReport, build


def run_demo(
    out: Path,
    *,
    scenes: int = 3,
    size: int = 1024,
    method: str = DEFAULT_METHOD,
    workers: int = 1,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> BuildReport:
    """Serve `scenes` sample scenes on 127.0.0.1 and build their catalog into `out`."""
    from stacmask.demo.sample_api import serve_sample_scenes

    with tempfile.TemporaryDirectory(prefix="stacmask-demo-") as scratch:
        echo(f"generating {scenes} sample scene(s) of {size} x {size} pixels ...")
        with serve_sample_scenes(Path(scratch), n_scenes=scenes, size=size, seed=2024) as api:
            echo(f"sample STAC API serving on {api.url}")
            options = BuildOptions(
                out=out,
                keys=BAND_KEY_PRESETS[DEFAULT_BAND_KEYS],
                stac_url=api.url,
                collection=DEFAULT_COLLECTION,
                method=method,
                workers=workers,
            )
            return build(options, echo=echo, progress=progress)
