"""Parity of the windowed notebook method with the in-memory float64 oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from stacmask.constants import CLOUD, DEFAULT_GAINS, SHADOW, WATER
from stacmask.methods.notebook import NotebookMethod
from stacmask.methods.notebook_kernels import normalization_table
from stacmask.pipeline.masking import mask_scene
from stacmask.reading.band_source import ArrayBandSource
from stacmask.reading.rasters import RasterBandSource
from stacmask.sensors.cbers4a.radiometry import Radiometry
from stacmask.sensors.local import band_files_inputs
from tests.conftest import shared_path
from tests.notebook_oracle import notebook_oracle
from tests.rasters import dn_from_reflectance, scene_info, write_bands

RADIOMETRY = Radiometry(DEFAULT_GAINS, "default", 50.0, 40.0, None)


def _labelled_dn() -> np.ndarray:
    """The real labelled Sentinel-2 scene as 10-bit DN with no-data corners."""
    with rasterio.open(shared_path("data/labelled/sentinel2_reflectance.tif")) as src:
        return dn_from_reflectance(src.read())


def _check_parity(tmp_path: Path, dn: np.ndarray, blocksize: int) -> dict[str, float]:
    paths = write_bands(tmp_path / "bands", dn, blocksize=blocksize)
    with RasterBandSource(
        band_files_inputs(paths, radiometry=RADIOMETRY), strip_pixels=40_000
    ) as source:
        source_strips = list(source.strips())
        result = mask_scene(source, NotebookMethod(), tmp_path / "mask.tif")
    assert len(source_strips) > 1, "the test must exercise several strips"
    with rasterio.open(tmp_path / "mask.tif") as src:
        ours = src.read(1)
    oracle = notebook_oracle(dn, DEFAULT_GAINS)
    expected = oracle.classes()
    total = int(oracle.footprint.sum())
    agreement = {}
    for name, code in (("cloud", CLOUD), ("shadow", SHADOW), ("water", WATER)):
        agreement[name] = float(np.mean((ours == code) == (expected == code)))
        assert agreement[name] >= 0.999, f"{name} agreement {agreement[name]:.5f}"
    assert result.valid_pixels == total
    assert result.cloud_cover == pytest.approx(100 * np.sum(expected == CLOUD) / total, abs=0.1)
    assert result.shadow_cover == pytest.approx(100 * np.sum(expected == SHADOW) / total, abs=0.1)
    assert result.water_cover == pytest.approx(100 * np.sum(expected == WATER) / total, abs=0.1)
    assert result.band_mismatch == oracle.band_mismatch
    return agreement


def test_parity_on_real_labelled_scene(tmp_path: Path) -> None:
    dn = _labelled_dn()
    agreement = _check_parity(tmp_path, dn, blocksize=128)
    # On this input the windowed evaluation is exact, not merely within tolerance.
    assert agreement == {"cloud": 1.0, "shadow": 1.0, "water": 1.0}
    oracle = notebook_oracle(dn, DEFAULT_GAINS)
    assert oracle.cloud.any() and oracle.shadow.any(), "the scene must exercise the rules"


def test_parity_on_real_cbers_clip_int16(tmp_path: Path) -> None:
    """Real CBERS-4A WPM DN (int16, nodata 0); the clip has no NIR, so red stands in for it."""
    bands = []
    for name in ("BAND1", "BAND2", "BAND3", "BAND3"):
        with rasterio.open(shared_path(f"data/cbers4a-wpm-clips/{name}.tif")) as src:
            bands.append(src.read(1))
    dn = np.stack(bands)
    assert dn.dtype == np.int16
    _check_parity(tmp_path, dn, blocksize=64)


def test_band_mismatch_flag(tmp_path: Path) -> None:
    dn = _labelled_dn()
    dn[1, 100:120, 100:120] = 0  # green has a hole the other bands do not have
    paths = write_bands(tmp_path / "bands", dn, blocksize=128)
    with RasterBandSource(
        band_files_inputs(paths, radiometry=RADIOMETRY), strip_pixels=40_000
    ) as source:
        result = mask_scene(source, NotebookMethod(), tmp_path / "mask.tif")
    assert result.band_mismatch
    assert result.mismatch_pixels == 400
    assert notebook_oracle(dn, DEFAULT_GAINS).band_mismatch


def test_table_lookup_equals_the_arithmetic(tmp_path: Path) -> None:
    """Integer bands normalize through a look-up table, float bands by arithmetic: the same
    values give the same classes either way, exactly."""
    dn = _labelled_dn()
    gains = np.array(DEFAULT_GAINS, dtype=np.float64)
    minimum, maximum = dn.reshape(4, -1).min(axis=1), dn.reshape(4, -1).max(axis=1)
    table = normalization_table(dn.dtype, minimum.astype(float), maximum.astype(float), gains)
    assert table.shape == (4, int(maximum.max()) + 1)
    assert normalization_table(np.dtype(np.float32), minimum, maximum, gains).shape[1] == 0
    classes = {}
    for dtype in (np.uint16, np.float64):
        values = dn.astype(dtype)
        info = scene_info(RADIOMETRY, values.shape[2], values.shape[1])
        source = ArrayBandSource(values, info, nodata=0)
        classes[dtype] = np.concatenate([s[1] for s in NotebookMethod().classify(source)])
    assert np.array_equal(classes[np.uint16], classes[np.float64])
    assert np.array_equal(classes[np.uint16], notebook_oracle(dn, DEFAULT_GAINS).classes())


@pytest.mark.parametrize(
    ("setting", "value", "second_pass"),
    [
        (None, None, False),  # the sampled rows predict every quantile's bins: one pass
        ("KEEP_MAX", 0, True),  # nothing kept: the selection pass for every quantity
        ("SAMPLE_STEP", 100_000, True),  # one row per strip: some predictions miss
    ],
)
def test_quantiles_stay_exact_when_the_prediction_misses(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, value: int | None, second_pass: bool
) -> None:
    import stacmask.methods.notebook as notebook

    dn = _labelled_dn()
    if setting is not None:
        monkeypatch.setattr(notebook, setting, value)
    selected: list[int] = []
    select = NotebookMethod._select

    def counted(
        self: NotebookMethod, source: object, acc: object, wanted: np.ndarray, chunks: int
    ) -> None:
        selected.append(int(wanted.any(axis=1).sum()))
        select(self, source, acc, wanted, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(NotebookMethod, "_select", counted)
    info = scene_info(RADIOMETRY, dn.shape[2], dn.shape[1])
    source = ArrayBandSource(dn, info, nodata=0, strip_rows=64)
    classes = np.concatenate([s[1] for s in NotebookMethod().classify(source)])
    assert np.array_equal(classes, notebook_oracle(dn, DEFAULT_GAINS).classes())
    assert bool(selected) == second_pass
    if setting == "KEEP_MAX":
        assert selected == [6]  # every quantity with quantiles
