"""`stacmask mask`'s progress: the rows of each pass over the scene, the height as total."""

from __future__ import annotations

import io
from pathlib import Path

from tqdm import tqdm
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.cli.mask import PassProgress
from tests.conftest import shared_path


def test_each_pass_counts_up_to_the_scene_height() -> None:
    out = io.StringIO()
    with tqdm(file=out, unit=" rows", mininterval=0) as bar:
        progress = PassProgress(bar, "hybrid mask")
        progress(6)  # decoding into scratch, before the height is known to the bar
        assert bar.desc.startswith("hybrid mask, reading bands")
        progress.start(10)
        progress(6)
        progress(4)
        assert (bar.n, bar.total, progress.passes) == (10, 10, 1)
        progress(3)  # the next pass's first rows
        assert (bar.n, bar.total, progress.passes) == (3, 10, 2)
        assert bar.desc.startswith("hybrid mask, pass 2")


def test_mask_command_shows_its_passes(tmp_path: Path) -> None:
    reflectance = shared_path("data/labelled/sentinel2_reflectance.tif")
    result = CliRunner().invoke(
        app, ["mask", str(tmp_path / "mask.tif"), "--reflectance", str(reflectance)]
    )
    assert result.exit_code == 0, result.output
    assert "hybrid mask, pass 1" in result.output and "hybrid mask, pass 2" in result.output
    assert "1.02k" not in result.output  # no count past the 512 rows of the scene
