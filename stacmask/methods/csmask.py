"""ukis-csmask's 4-band CNN (blue, green, red, nir) on TOA reflectance, on a ~30 m working grid.

ukis-csmask (DLR, Apache-2.0; Wieland, Li & Martinis 2019, RSE 230; Wieland et al. 2022) ships
U-Net (EfficientNet-B4) models as ONNX files in its wheel; they run offline on the CPU with
onnxruntime (optional extra ``stacmask[csmask]``). This module runs the 4-band Level-1C model the
way ``ukis_csmask.mask.CSmask`` does, but streamed so memory follows a band of tiles, not the
scene, and keeping the class probabilities (the ensemble method uses them):

- input: TOA reflectance 0-1 (float32), normalised (x - mean) / std with the dataset statistics
  of the model's JSON; cells with no valid pixel get the band mean (0 after normalising);
- resolution: the models are trained on ~30 m pixels (its README: best "resampled to
  approximately 30 m"); CSmask itself does not resample. The scene is block-averaged onto a
  working grid of k x k pixels, k = round(30 m / pixel size): 32 m cells for 8 m WPM, 30 m for
  10 m Sentinel-2, the pixels themselves at 30 m;
- 256 x 256 tiles (the JSON's target_size), overlap 0.2 (a step of 204 cells), symmetric
  padding of 51 cells, softmax, tiles blended with a Tukey window (alpha 0.4) as CSmask's
  untile_array; classes by argmax: 0 background, 1 cloud, 2 cloud shadow.

The probabilities are normalised by the summed window weights (CSmask only takes the argmax of
the weighted sum, which gives the same classes). The working grid is held in a temporary
memory-mapped file; a full 14198 x 14584 WPM scene is 3550 x 3646 cells (207 MB on disk).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numba
import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window
from scipy.signal.windows import tukey
from scipy.special import softmax

from stacmask.constants import (
    CLEAR,
    CLOUD,
    CSMASK_BACKGROUND,
    CSMASK_CLOUD,
    CSMASK_SHADOW,
    NODATA,
    SHADOW,
    WATER,
)
from stacmask.errors import DecodeError, MethodUnavailable
from stacmask.methods import MethodDefaults
from stacmask.methods.geometry import pixel_geometry
from stacmask.reading.band_source import BandSource

METHOD_NAME: Final = "csmask"
#: Shown when ukis-csmask or onnxruntime is missing.
INSTALL_HINT: Final = "pip install 'stacmask[csmask]' (ukis-csmask and onnxruntime)"

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class CsmaskConfig:
    """How the model is run; each value's source is in its comment."""

    #: Working-grid cell size the model expects, in metres (ukis-csmask README: ~30 m).
    resolution: float = 30.0
    #: "l1c" (TOA reflectance, what stacmask computes) or "l2a" (surface reflectance) model.
    product_level: str = "l1c"
    #: Tile overlap, as CSmask._csm (0.2); also the Tukey taper (alpha = 2 x overlap).
    overlap: float = 0.2
    #: Tiles per onnxruntime call (CSmask's default, 1). Measured on 2 cores: batches of 2-4
    #: are no faster and raise peak memory (~420 MB with 1, ~560 MB with 4, model included).
    batch_size: int = 1
    #: onnxruntime intra-op threads; 0 lets onnxruntime choose (all cores).
    threads: int = 0
    #: Test-time flips: 1 (none, as CSmask), 2 (also upside down) or 4 (also mirrored, and
    #: both); the probabilities of the flipped runs are averaged. Measured (4 against 1): On
    #: Cloud N jaag cloud F1 0.877 -> 0.883, Layton shadow F1 0.799 -> 0.808 and 0.782 -> 0.788,
    #: the labelled scene unchanged (0.902); each flip costs one more model run.
    flips: int = 1
    #: Most model cells (working cells x flips) per scene, None for no limit. Above it flips are
    #: dropped, then the working grid is coarsened (whole pixels per cell) until it fits: the
    #: model's time follows its cells (about 6 s per million here), so this bounds the time on
    #: a full WPM scene. Coarser cells cost accuracy (docs/methods.md).
    max_cells: int | None = None

    def __post_init__(self) -> None:
        if self.resolution <= 0:
            raise DecodeError(f"csmask resolution must be > 0 m, got {self.resolution}")
        if self.product_level not in ("l1c", "l2a"):
            raise DecodeError(f"csmask product_level must be l1c or l2a, not {self.product_level}")
        if not 0.0 <= self.overlap <= 0.5:
            raise DecodeError(f"csmask overlap must be within 0..0.5, got {self.overlap}")
        if self.batch_size < 1 or self.threads < 0:
            raise DecodeError("csmask batch_size must be >= 1 and threads >= 0")
        if self.flips not in (1, 2, 4):
            raise DecodeError(f"csmask flips must be 1, 2 or 4, got {self.flips}")
        if self.max_cells is not None and self.max_cells < 1:
            raise DecodeError(f"csmask max_cells must be >= 1, got {self.max_cells}")


@dataclass(frozen=True)
class CsmaskModel:
    """An onnxruntime session over one of ukis-csmask's 4-band models, and its statistics."""

    session: Any
    input_name: str
    mean: F32
    std: F32
    tile: int
    version: str


@lru_cache(maxsize=2)
def load_model(product_level: str = "l1c", threads: int = 0) -> CsmaskModel:
    """The 4-band model of ukis-csmask for `product_level`; MethodUnavailable if not installed."""
    try:
        import onnxruntime
        import ukis_csmask
    except ImportError as exc:
        raise MethodUnavailable(
            f"the csmask method needs the optional extra csmask ({exc.name} is missing): "
            f"{INSTALL_HINT}"
        ) from exc
    model_file = Path(ukis_csmask.__file__).parent / f"model_4b_{product_level}.onnx"
    if not model_file.exists():
        raise MethodUnavailable(
            f"{model_file}: ukis-csmask {ukis_csmask.__version__} has no 4-band "
            f"{product_level} model; {INSTALL_HINT}"
        )
    meta = json.loads(model_file.with_suffix(".json").read_text())
    stats = meta["data"]["dataset_statistics"]
    if [b.lower() for b in stats["band_names"]] != ["blue", "green", "red", "nir"]:
        raise MethodUnavailable(f"{model_file}: unexpected band order {stats['band_names']}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return CsmaskModel(
        session=session,
        input_name=session.get_inputs()[0].name,
        mean=np.asarray(stats["img"][0], np.float32),
        std=np.asarray(stats["img"][1], np.float32),
        tile=int(meta["data"]["target_size"][0]),
        version=str(meta["model"]["version"]),
    )


def working_factor(pixel_size: float, resolution: float) -> int:
    """Pixels per working cell side: round(resolution / pixel_size), at least 1."""
    return max(1, round(resolution / pixel_size))


def working_plan(
    width: int, height: int, pixel_size: float, config: CsmaskConfig
) -> tuple[int, int]:
    """(pixels per cell side, flips) within `config.max_cells`: the flips first go, then the
    cells grow past the ~30 m of `config.resolution`."""
    k = working_factor(pixel_size, config.resolution)
    flips = config.flips
    if config.max_cells is None:
        return k, flips

    def cells(f: int) -> int:
        return math.ceil(width / f) * math.ceil(height / f)

    while flips > 1 and cells(k) * flips > config.max_cells:
        flips //= 2
    while cells(k) > config.max_cells:
        k += 1
    return k, flips


@dataclass
class CsmaskGrid:
    """The model's result on the working grid: cells of `factor` x `factor` scene pixels."""

    factor: int
    #: Model classes (CSMASK_BACKGROUND, CSMASK_CLOUD, CSMASK_SHADOW); NODATA where no pixel.
    classes: NDArray[np.uint8]
    #: Cloud and cloud-shadow probabilities 0-1 (float16 to halve the memory).
    cloud: NDArray[np.float16]
    shadow: NDArray[np.float16]


def block_means(source: BandSource, k: int, out: F32) -> NDArray[np.bool_]:
    """Means of the valid reflectance of every k x k block of `source`, written into `out`
    (4, ceil(H/k), ceil(W/k)), strip by strip; returns the cells holding any valid pixel."""
    h, w = out.shape[1], out.shape[2]
    sums = np.zeros((4, h, w), np.float64)
    counts = np.zeros((h, w), np.int64)
    for window in source.strips():
        r = np.ascontiguousarray(source.read_reflectance(window), dtype=np.float32)
        _add_blocks(r, int(window.row_off), k, sums, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:] = (sums / counts).astype(np.float32)
    valid_cells: NDArray[np.bool_] = counts > 0
    return valid_cells


@numba.njit(nogil=True, cache=True)
def _add_blocks(r: Any, row0: int, k: int, sums: Any, counts: Any) -> None:
    """Add a (4, n, W) strip starting at row `row0` to the block sums and counts of its
    pixels whose four bands are finite (one pass, no temporaries)."""
    for i in range(r.shape[1]):
        cell_row = (row0 + i) // k
        for j in range(r.shape[2]):
            b, g, red, nir = r[0, i, j], r[1, i, j], r[2, i, j], r[3, i, j]
            if math.isfinite(b) and math.isfinite(g) and math.isfinite(red) and math.isfinite(nir):
                cell_col = j // k
                sums[0, cell_row, cell_col] += b
                sums[1, cell_row, cell_col] += g
                sums[2, cell_row, cell_col] += red
                sums[3, cell_row, cell_col] += nir
                counts[cell_row, cell_col] += 1


def _reflect(index: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Indices into an axis of length n for numpy's 'symmetric' padding, any distance out."""
    period = 2 * n
    m = np.mod(index, period)
    folded: NDArray[np.int64] = np.where(m < n, m, period - 1 - m)
    return folded


def _tile_count(length: int, tile: int, step: int, margin: int) -> int:
    """Tiles along an axis so that every cell lies at least `margin` inside a tile."""
    return max(1, math.ceil((length + 2 * margin - tile) / step) + 1)


def predict(
    reflectance: F32,
    valid: NDArray[np.bool_],
    model: CsmaskModel,
    config: CsmaskConfig,
    factor: int = 1,
) -> CsmaskGrid:
    """Run the model over a (4, h, w) working-grid reflectance (array or memmap), one band of
    tiles at a time (memory: a band of tile rows across the grid)."""
    _, h, w = reflectance.shape
    tile = model.tile
    margin = int(tile * config.overlap)
    step = int(tile - tile * config.overlap)
    rows_n = _tile_count(h, tile, step, margin)
    cols_n = _tile_count(w, tile, step, margin)
    width_p = (cols_n - 1) * step + tile
    cols = _reflect(np.arange(width_p, dtype=np.int64) - margin, w)
    window1d = tukey(tile, alpha=2 * config.overlap).astype(np.float32)
    window2d = np.outer(window1d, window1d)
    mean, std = model.mean[:, None, None], model.std[:, None, None]
    acc = np.zeros((3, tile, width_p), np.float32)
    weight = np.zeros((tile, width_p), np.float32)
    classes = np.full((h, w), NODATA, np.uint8)
    cloud = np.zeros((h, w), np.float16)
    shadow = np.zeros((h, w), np.float16)
    for t in range(rows_n):
        top = t * step
        rows = _reflect(np.arange(top, top + tile, dtype=np.int64) - margin, h)
        band = np.asarray(reflectance[:, rows], np.float32)[:, :, cols]
        filled = np.where(np.isfinite(band), band, mean)
        normalised = ((filled - mean) / std).astype(np.float32)
        tiles = np.stack([normalised[:, :, c * step : c * step + tile] for c in range(cols_n)])
        for first in range(0, cols_n, config.batch_size):
            batch = np.ascontiguousarray(tiles[first : first + config.batch_size])
            logits = model.session.run(None, {model.input_name: batch})[0]
            probabilities = softmax(logits, axis=1).astype(np.float32)
            for i, p in enumerate(probabilities):
                c0 = (first + i) * step
                acc[:, :, c0 : c0 + tile] += p * window2d
                weight[:, c0 : c0 + tile] += window2d
        # Padded rows [top, top + step) are final (the whole band when it is the last one).
        done = tile if t == rows_n - 1 else step
        first_row, last_row = max(top, margin), min(top + done, margin + h)
        if last_row > first_row:
            local = slice(first_row - top, last_row - top)
            out = slice(first_row - margin, last_row - margin)
            p = acc[:, local, margin : margin + w] / np.maximum(
                weight[local, margin : margin + w], 1e-6
            )
            classes[out] = np.argmax(p, axis=0).astype(np.uint8)
            cloud[out] = p[CSMASK_CLOUD]
            shadow[out] = p[CSMASK_SHADOW]
        acc[:, : tile - step] = acc[:, step:]
        acc[:, tile - step :] = 0.0
        weight[: tile - step] = weight[step:]
        weight[tile - step :] = 0.0
    classes[~valid] = NODATA
    return CsmaskGrid(factor=factor, classes=classes, cloud=cloud, shadow=shadow)


#: Test-time flips: (upside down, mirrored) of each run, in the order `flips` adds them.
FLIPS: Final = ((False, False), (True, False), (False, True), (True, True))


def predict_flipped(
    reflectance: F32,
    valid: NDArray[np.bool_],
    model: CsmaskModel,
    config: CsmaskConfig,
    factor: int = 1,
    flips: int = 1,
) -> CsmaskGrid:
    """`predict` on `flips` flipped views of the grid, probabilities averaged (classes by the
    largest averaged probability); one run is `predict` itself."""
    if flips == 1:
        return predict(reflectance, valid, model, config, factor)
    cloud = np.zeros(valid.shape, np.float32)
    shadow = np.zeros(valid.shape, np.float32)
    for down, across in FLIPS[:flips]:
        rows = slice(None, None, -1 if down else 1)
        cols = slice(None, None, -1 if across else 1)
        run = predict(reflectance[:, rows, cols], valid[rows, cols], model, config, factor)
        cloud += run.cloud[rows, cols]
        shadow += run.shadow[rows, cols]
    cloud /= flips
    shadow /= flips
    classes = np.full(valid.shape, CSMASK_BACKGROUND, np.uint8)
    classes[(shadow > cloud) & (shadow > 1.0 - cloud - shadow)] = CSMASK_SHADOW
    classes[(cloud >= shadow) & (cloud > 1.0 - cloud - shadow)] = CSMASK_CLOUD
    classes[~valid] = NODATA
    return CsmaskGrid(factor, classes, cloud.astype(np.float16), shadow.astype(np.float16))


def csmask_grid(source: BandSource, config: CsmaskConfig | None = None) -> CsmaskGrid:
    """Pass 1 over `source` (block means into a temporary memmap), then the model (with the
    flips and on the grid that `config.max_cells` allows)."""
    config = config or CsmaskConfig()
    model = load_model(config.product_level, config.threads)
    info = source.info
    k, flips = working_plan(info.width, info.height, pixel_geometry(info).size, config)
    h, w = math.ceil(info.height / k), math.ceil(info.width / k)
    with tempfile.TemporaryDirectory(prefix="stacmask-csmask-") as scratch:
        grid: F32 = np.lib.format.open_memmap(
            Path(scratch) / "working.npy", mode="w+", dtype=np.float32, shape=(4, h, w)
        )
        valid = block_means(source, k, grid)
        result = predict_flipped(grid, valid, model, config, factor=k, flips=flips)
        del grid
    return result


def cells_of(grid: NDArray[Any], window: Window, k: int) -> NDArray[Any]:
    """The working-grid values under each pixel of `window` (nearest: the pixel's cell)."""
    rows = (int(window.row_off) + np.arange(int(window.height))) // k
    cols = (int(window.col_off) + np.arange(int(window.width))) // k
    picked: NDArray[Any] = grid[rows][:, cols]
    return picked


def codes_of(model_classes: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """stacmask class codes of the model's classes (background -> CLEAR; NODATA kept)."""
    lookup = np.full(256, NODATA, np.uint8)
    lookup[CSMASK_BACKGROUND], lookup[CSMASK_CLOUD], lookup[CSMASK_SHADOW] = CLEAR, CLOUD, SHADOW
    codes: NDArray[np.uint8] = lookup[model_classes]
    return codes


class CsmaskMethod(MethodDefaults):
    """ukis-csmask's 4-band CNN for cloud and shadow; water from the physical method's per-pixel
    Fmask water test (the CNN has no water class)."""

    name = METHOD_NAME
    reads_bands_once = False

    def __init__(self, config: CsmaskConfig | None = None) -> None:
        self.config = config or CsmaskConfig()
        self.grid: CsmaskGrid | None = None

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Class codes of every strip (pass 2 reads the reflectance again for water and no data)."""
        from stacmask.methods.physical import VALID, WATER_TEST, PhysicalConfig, pixel_tests

        grid = csmask_grid(source, self.config)
        self.grid = grid
        physical = PhysicalConfig()
        for window in source.strips():
            flags = pixel_tests(source.read_reflectance(window), physical)
            out = codes_of(cells_of(grid.classes, window, grid.factor))
            out[(out == CLEAR) & ((flags & WATER_TEST) > 0)] = WATER
            out[(flags & VALID) == 0] = NODATA
            # A valid pixel in a cell the model left as no data cannot happen (a cell is valid
            # when any of its pixels is), but keep the codes consistent if it did.
            out[(out == NODATA) & ((flags & VALID) > 0)] = CLEAR
            yield window, out
