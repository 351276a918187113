"""RasterBandSource: cached and streamed decoding give the same bands, statistics and masks."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from stacmask.constants import CLEAR, CLOUD, DEFAULT_GAINS, SHADOW
from stacmask.errors import BandReadError
from stacmask.methods.notebook import NotebookMethod
from stacmask.methods.physical import PhysicalMethod
from stacmask.output.preview import preview_step
from stacmask.pipeline.masking import mask_scene
from stacmask.reading.rasters import RasterBandSource
from stacmask.reading.scratch import ScratchRaster
from stacmask.sensors.cbers4a.radiometry import Radiometry
from stacmask.sensors.local import band_files_inputs
from tests.conftest import shared_path
from tests.rasters import dn_from_reflectance, write_bands

RADIOMETRY = Radiometry(DEFAULT_GAINS, "default", 50.0, 40.0, None)


def _scene(tmp_path: Path, height: int = 700, width: int = 530) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(3)
    dn = rng.integers(1, 1000, size=(4, height, width), dtype=np.uint16)
    dn[:, :40, :] = 0  # a no-data band along the top
    dn[2, 100:103, 7] = 0  # red alone without data: footprint disagreement
    paths = write_bands(tmp_path / "bands", dn, blocksize=128)
    return [str(p) for p in paths], dn


def _source(hrefs: list[str], cache: bool, **kwargs: object) -> RasterBandSource:
    return RasterBandSource(
        band_files_inputs(hrefs, radiometry=RADIOMETRY),
        strip_pixels=50_000,
        cache_bands=cache,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("cache", [True, False])
def test_both_modes_read_the_same_bands_and_statistics(tmp_path: Path, cache: bool) -> None:
    hrefs, dn = _scene(tmp_path)
    rows_seen: list[int] = []
    with _source(hrefs, cache, progress=rows_seen.append) as source:
        strips = list(source.strips())
        assert len(strips) > 2
        assert sum(int(w.height) for w in strips) == dn.shape[1]
        for window in strips:
            top, rows = int(window.row_off), int(window.height)
            assert np.array_equal(source.read_raw(window), dn[:, top : top + rows])
        stats = source.stats
        step = preview_step(dn.shape[2], dn.shape[1])
        assert np.array_equal(source.thumbnail(step), dn[:, ::step, ::step])
    assert stats.minimum == (0, 0, 0, 0)
    assert stats.maximum == tuple(float(b.max()) for b in dn)
    assert stats.mismatch_pixels == 3
    assert sum(rows_seen) >= dn.shape[1]


def test_streamed_bands_are_read_once_in_order(tmp_path: Path) -> None:
    hrefs, _ = _scene(tmp_path)
    with _source(hrefs, cache=False) as source:
        first, second, *_ = source.strips()
        with pytest.raises(RuntimeError, match="complete once every strip"):
            _ = source.stats
        source.read_raw(first)
        source.read_reflectance(first)  # the current strip again: no new decode
        with pytest.raises(RuntimeError, match="out of turn"):
            source.read_raw(Window(0, 5, 10, 10))
        source.read_raw(second)
        with pytest.raises(RuntimeError, match="out of turn"):
            source.read_raw(first)  # already left behind
    # cached sources read any window, any number of times
    with _source(hrefs, cache=True) as source:
        window = Window(3, 5, 10, 10)
        assert np.array_equal(source.read_raw(window), source.read_raw(window))


def test_streamed_and_cached_masks_are_identical(tmp_path: Path) -> None:
    """The one-pass method gives the same mask, covers and preview either way (on the real
    labelled scene, as DN: clear land, clouds and shadows)."""
    with rasterio.open(shared_path("data/labelled/sentinel2_reflectance.tif")) as src:
        dn = dn_from_reflectance(src.read())
    hrefs = [str(p) for p in write_bands(tmp_path / "bands", dn, blocksize=128)]
    method = PhysicalMethod()
    assert method.reads_bands_once
    results, masks, previews = [], [], []
    for cache in (True, False):
        out, preview = tmp_path / f"mask_{cache}.tif", tmp_path / f"p_{cache}.png"
        with _source(hrefs, cache) as source:
            results.append(mask_scene(source, method, out, preview))
        with rasterio.open(out) as src:
            masks.append(src.read(1))
        previews.append(preview.read_bytes())
    assert np.array_equal(masks[0], masks[1])
    for code in (CLEAR, SHADOW, CLOUD):
        assert (masks[0] == code).any(), f"the scene must exercise class {code}"
    assert results[0] == results[1]
    assert previews[0] == previews[1]


def test_a_method_reading_twice_needs_cached_bands(tmp_path: Path) -> None:
    hrefs, _ = _scene(tmp_path)
    with (
        _source(hrefs, cache=False) as source,
        pytest.raises(RuntimeError, match="cache_bands=True"),
    ):
        mask_scene(source, NotebookMethod(), tmp_path / "mask.tif")


def test_a_corrupt_band_fails_when_streamed_naming_the_file(tmp_path: Path) -> None:
    hrefs, _ = _scene(tmp_path, height=2048, width=512)
    data = Path(hrefs[3]).read_bytes()
    Path(hrefs[3]).write_bytes(data[: len(data) * 2 // 3])  # truncated: later tiles are gone
    with _source(hrefs, cache=False) as source, pytest.raises(BandReadError, match="BAND4"):
        for window in source.strips():
            source.read_raw(window)


def test_scratch_raster_round_trip(tmp_path: Path) -> None:
    values = np.arange(2 * 5 * 7, dtype=np.int16).reshape(2, 5, 7)
    with ScratchRaster(2, 5, 7, np.int16, tmp_path) as scratch:
        for band in range(2):
            scratch.write(band, 0, values[band, :3])
            scratch.write(band, 3, values[band, 3:])
        assert np.array_equal(scratch.read(1, 3), values[:, 1:4])
        assert not list(tmp_path.iterdir())  # a file without a name: a kill leaves nothing
    with pytest.raises(RuntimeError, match="closed"):
        scratch.read(0, 1)


def test_scratch_views_outlive_the_scratch_file(tmp_path: Path) -> None:
    """A strip still held when the source closes (a method stopped by an error) stays valid."""
    with ScratchRaster(1, 4, 3, np.uint8, tmp_path) as scratch:
        scratch.write(0, 0, np.arange(12, dtype=np.uint8).reshape(4, 3))
        view = scratch.read(1, 2)
        writable = scratch.view(0, 1, writeable=True)
    assert not list(tmp_path.iterdir())
    assert view.tolist() == [[[3, 4, 5], [6, 7, 8]]]
    writable[0, 0, 0] = 9
    assert writable[0, 0, 0] == 9
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0, 0] = 1


@pytest.mark.parametrize("fallocate", [True, False])
def test_scratch_raster_larger_than_the_free_space_is_refused_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallocate: bool
) -> None:
    """A scratch file is reserved before it is mapped (a sparse map on a full disk dies of
    SIGBUS); without posix_fallocate (macOS) the free space is checked instead."""
    if not fallocate:
        monkeypatch.delattr(os, "posix_fallocate")
    too_big = shutil.disk_usage(tmp_path).free + (1 << 20)
    with pytest.raises(OSError, match=r"no room for a \d+ MB scratch raster in") as caught:
        ScratchRaster(1, 1, too_big, np.uint8, tmp_path)
    assert caught.value.errno == errno.ENOSPC
    assert not list(tmp_path.iterdir())
    with ScratchRaster(1, 2, 3, np.uint8, tmp_path) as scratch:
        scratch.write(0, 0, np.ones((2, 3), np.uint8))
        assert scratch.read(0, 2).sum() == 6
