"""The mask COG: valid, exact at full resolution, with mode overviews computed as strips arrive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

from stacmask.constants import CLEAR, CLOUD, NODATA, SHADOW, WATER
from stacmask.output.cog import MaskWriter, mode_2x2, overview_factors
from tests.rasters import TRANSFORM


def _reference_mode(classes: np.ndarray) -> np.ndarray:
    """Plain-python mode of each 2 x 2 block (NODATA only where all are NODATA; ties: first)."""
    rows, cols = classes.shape
    out = np.empty(((rows + 1) // 2, (cols + 1) // 2), np.uint8)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = [int(v) for v in classes[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel()]
            data = [v for v in block if v != NODATA]
            out[i, j] = max(data, key=data.count) if data else NODATA
    return out


def test_mode_2x2_matches_a_plain_evaluation() -> None:
    rng = np.random.default_rng(5)
    codes = np.array([CLEAR, WATER, SHADOW, CLOUD, NODATA], np.uint8)
    for shape in [(8, 8), (7, 9), (1, 5), (5, 1)]:
        classes = rng.choice(codes, size=shape, p=[0.3, 0.1, 0.1, 0.3, 0.2])
        assert np.array_equal(mode_2x2(classes), _reference_mode(classes))
    tie = np.array([[CLOUD, CLEAR], [CLEAR, CLOUD]], np.uint8)
    assert mode_2x2(tie)[0, 0] == CLOUD  # a tie goes to the code met first


def test_overview_factors_halve_until_one_tile() -> None:
    assert overview_factors(512, 300) == []
    assert overview_factors(513, 10) == [2]
    assert overview_factors(14198, 14584) == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("strip_rows", [64, 37])  # even strips, and odd ones that split blocks
def test_mask_cog_is_valid_with_mode_overviews(tmp_path: Path, strip_rows: int) -> None:
    rng = np.random.default_rng(9)
    height, width = 1300, 1100
    classes = np.repeat(
        np.repeat(rng.choice([0, 1, 2, 4, 255], (height // 4 + 1, width // 4 + 1)), 4, 0), 4, 1
    )
    classes = classes[:height, :width].astype(np.uint8)
    classes[::3, ::5] = CLOUD  # detail that only a mode keeps or drops, never invents
    path = tmp_path / "mask.tif"
    with MaskWriter(path, width, height, TRANSFORM, rasterio.crs.CRS.from_epsg(32723)) as writer:
        for top in range(0, height, strip_rows):
            rows = min(strip_rows, height - top)
            writer.write(Window(0, top, width, rows), classes[top : top + rows])
        writer.finish()
    assert cog_validate(path, quiet=True)[0]
    assert not [p for p in tmp_path.iterdir() if p != path], "no scratch left behind"
    with rasterio.open(path) as src:
        assert np.array_equal(src.read(1), classes)
        assert src.nodata == NODATA
        assert src.overviews(1) == [2, 4]
        expected = classes
        for level, factor in enumerate(src.overviews(1)):
            expected = _reference_mode(expected)
            with rasterio.open(path, overview_level=level) as overview:
                assert overview.shape == expected.shape, factor
                assert np.array_equal(overview.read(1), expected), factor
