"""Scratch rasters: scene-sized arrays kept in a temporary file instead of memory.

A pass over a scene writes rows once; later passes read them back strip by strip. The file lives
until `close()`, so memory follows the strip, not the scene.
"""

from __future__ import annotations

import os
import tempfile
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray


class ScratchRaster:
    """`bands` x `height` x `width` values of one dtype in a temporary file, band-sequential."""

    def __init__(
        self,
        bands: int,
        height: int,
        width: int,
        dtype: DTypeLike,
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.bands, self.height, self.width = bands, height, width
        self.dtype = np.dtype(dtype)
        self._file: tempfile._TemporaryFileWrapper[bytes] | None = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives until close())
            prefix="stacmask-scratch-", suffix=".raw", dir=directory
        )
        self._file.truncate(bands * height * width * self.dtype.itemsize)

    def _offset(self, band: int, row: int) -> int:
        return (band * self.height + row) * self.width * self.dtype.itemsize

    def _opened(self) -> tempfile._TemporaryFileWrapper[bytes]:
        if self._file is None:
            raise RuntimeError("scratch raster is closed")
        return self._file

    def write(self, band: int, row: int, data: NDArray[Any]) -> None:
        """Store full-width rows of one band, starting at `row`."""
        file = self._opened()
        file.seek(self._offset(band, row))
        # a view, not tobytes(): a copy of every strip doubles the cost of writing the file
        file.write(memoryview(np.ascontiguousarray(data, dtype=self.dtype)).cast("B"))

    def read(self, row: int, rows: int) -> NDArray[Any]:
        """Full-width rows `row` .. `row + rows` of every band, shape (bands, rows, width)."""
        file = self._opened()
        out = np.empty((self.bands, rows, self.width), dtype=self.dtype)
        for band in range(self.bands):
            file.seek(self._offset(band, row))
            file.readinto(memoryview(out[band]).cast("B"))
        return out

    def close(self) -> None:
        """Remove the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ScratchRaster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
