"""Scratch rasters: scene-sized arrays kept in a temporary file instead of memory.

A pass over a scene writes rows once; later passes read them back strip by strip, as views of a
memory map of the file (no copy out of the page cache). The pages of the strip read before are
handed back to the kernel when the next is read (they stay in the page cache), so resident
memory follows the strip, not the scene. The file lives until `close()`.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import tempfile
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import DTypeLike, NDArray

#: posix_fallocate errors of a file system that cannot preallocate.
UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


def _allocate(fd: int, size: int, directory: str) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except AttributeError:  # macOS has no posix_fallocate
        pass
    except OSError as exc:
        if exc.errno not in UNSUPPORTED:
            raise
    if shutil.disk_usage(directory).free < size:  # then the free space is checked instead
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.ftruncate(fd, size)


def reserve(fd: int, size: int, directory: str) -> None:
    """Allocate `size` bytes of disk for the file `fd` (in `directory`) now: a memory map of a
    sparse file on a disk that fills up dies of SIGBUS on first touch; a reservation fails here
    with ENOSPC, saying how much was asked where."""
    if not size:
        return
    try:
        _allocate(fd, size, directory)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise OSError(
            errno.ENOSPC,
            f"{os.strerror(errno.ENOSPC)}: no room for a {size / 1e6:.0f} MB scratch raster in "
            f"{directory} (set TMPDIR to a folder with more free space)",
        ) from exc


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
        # No name: the file goes with the process, also when it is killed.
        self._file: BinaryIO | None = tempfile.TemporaryFile(  # noqa: SIM115 (lives until close())
            prefix="stacmask-scratch-", suffix=".raw", dir=directory, buffering=0
        )
        size = bands * height * width * self.dtype.itemsize
        try:
            reserve(self._file.fileno(), size, os.fspath(directory or tempfile.gettempdir()))
            self._map = mmap.mmap(self._file.fileno(), size) if size else None
        except BaseException:
            self._file.close()
            raise
        self._last_read: tuple[int, int] | None = None

    def _offset(self, band: int, row: int) -> int:
        return (band * self.height + row) * self.width * self.dtype.itemsize

    def _opened(self) -> BinaryIO:
        if self._file is None:
            raise RuntimeError("scratch raster is closed")
        return self._file

    def write(self, band: int, row: int, data: NDArray[Any]) -> None:
        """Store full-width rows of one band, starting at `row`."""
        file = self._opened()
        file.seek(self._offset(band, row))
        # a view, not tobytes(): a copy of every strip doubles the cost of writing the file
        pending = np.ascontiguousarray(data, dtype=self.dtype).data.cast("B")
        while pending:  # an unbuffered write may take only part of the bytes
            pending = pending[file.write(pending) :]

    def view(self, row: int, rows: int, *, writeable: bool = False) -> NDArray[Any]:
        """Full-width rows `row` .. `row + rows` of every band, shape (bands, rows, width), as a
        view of the file (write into it to store rows without a copy); valid until `close()`."""
        self._opened()
        if self._map is None or rows == 0:
            return np.zeros((self.bands, rows, self.width), dtype=self.dtype)
        itemsize = self.dtype.itemsize
        view: NDArray[Any] = np.ndarray(
            (self.bands, rows, self.width),
            dtype=self.dtype,
            buffer=self._map,
            offset=self._offset(0, row),
            strides=(self.height * self.width * itemsize, self.width * itemsize, itemsize),
        )
        view.flags.writeable = writeable
        return view

    def read(self, row: int, rows: int) -> NDArray[Any]:
        """A read-only `view` of the rows; the pages of the rows read before are released."""
        if self._last_read is not None:
            self.release(*self._last_read)
        self._last_read = (row, rows)
        return self.view(row, rows)

    def release(self, row: int, rows: int) -> None:
        """Drop the pages of these rows from this process's memory; the file keeps the data
        (the kernel's page cache holds it, and a later view maps it again)."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page, length = mmap.PAGESIZE, rows * self.width * self.dtype.itemsize
        for band in range(self.bands):
            start = self._offset(band, row)
            first = start - start % page
            self._map.madvise(mmap.MADV_DONTNEED, first, length + start - first)

    def close(self) -> None:
        """Close (and so remove) the file."""
        # The map is not closed here: views handed out keep it (their base) and their data valid
        # until they go; closing it under them would crash. The last view unmaps it.
        self._map = None
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
