"""The catalog's static files (`/catalog/...`): COGs with HTTP range requests, previews, JSON.

Files are served by Starlette's StaticFiles (symlinks resolved, nothing outside the folder),
with hidden files (`.stacmask-index/`, locks) refused. Files of up to FILE_MAX_BYTES are kept in
memory (an LRU of at most CACHE_MAX_BYTES, keyed by path, modification time and size, so a file
rewritten is read again): a GET of one of them, whole or one byte range, is answered from
memory without a thread hop for the file. Other requests (HEAD, several ranges, If-Range, big
files) get Starlette's FileResponse, read 1 MB at a time.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
from collections import OrderedDict
from typing import Any, Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

#: Largest file kept in memory (a preview, the mask COG of a scene of up to ~20,000 px a side).
FILE_MAX_BYTES: Final = 16 << 20
#: Memory for kept files, in all.
CACHE_MAX_BYTES: Final = 256 << 20
#: One byte range: "bytes=START-END", "bytes=START-" or "bytes=-SUFFIX".
_ONE_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")


class FileCache:
    """Contents of small files by (path, mtime, size), least recently used dropped first."""

    def __init__(self, max_bytes: int | None = None, file_max: int | None = None) -> None:
        self.max_bytes = CACHE_MAX_BYTES if max_bytes is None else max_bytes
        self.file_max = FILE_MAX_BYTES if file_max is None else file_max
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self.size = 0

    @staticmethod
    def key(path: str, status: os.stat_result) -> tuple[str, int, int]:
        """The entry of `path` as it is now."""
        return (path, status.st_mtime_ns, status.st_size)

    def get(self, path: str, status: os.stat_result) -> bytes | None:
        """The kept contents of `path` as `status` describes it, if kept."""
        with self.lock:
            data = self.entries.get(self.key(path, status))
            if data is not None:
                self.entries.move_to_end(self.key(path, status))
            return data

    def load(self, path: str, status: os.stat_result) -> None:
        """Keep `path` when it is small enough and not kept yet (call it off the event loop)."""
        if status.st_size > self.file_max or self.get(path, status) is not None:
            return
        with open(path, "rb") as handle:
            data = handle.read(self.file_max + 1)
        if len(data) != status.st_size:
            return  # changed while read: served from the file this time
        with self.lock:
            key = self.key(path, status)
            if key not in self.entries:
                self.entries[key] = data
                self.size += len(data)
            while self.size > self.max_bytes and self.entries:
                _, dropped = self.entries.popitem(last=False)
                self.size -= len(dropped)


class CatalogFiles(StaticFiles):
    """Static files of the catalog folder: no dot-files, nothing outside the folder.

    StaticFiles already resolves symlinks (follow_symlink=False) and refuses any path whose
    real location is outside the folder; this adds a refusal of hidden files (`.git`, lock)
    and answers GETs of small files from memory.
    """

    def __init__(self, *args: Any, cache: FileCache | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = cache if cache is not None else FileCache()

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        """The file for a URL path (kept in memory when small: this runs in a worker thread),
        or no file for dot-files and paths leaving the folder."""
        if any(part.startswith(".") for part in path.split("/")):
            return "", None
        full_path, status = super().lookup_path(path)
        if status is not None and stat.S_ISREG(status.st_mode):
            with contextlib.suppress(OSError):  # then served from the file, which says what fails
                self.cache.load(full_path, status)
        return full_path, status

    def file_response(
        self, full_path: Any, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """The file or one range of it from memory, else read in 1 MB chunks."""
        response = BigChunkFileResponse(full_path, status_code=status_code, stat_result=stat_result)
        request = Headers(scope=scope)
        if self.is_not_modified(response.headers, request):
            return NotModifiedResponse(response.headers)
        data = self.cache.get(str(full_path), stat_result)
        if data is None or scope["method"] != "GET" or "if-range" in request:
            return response
        headers = MutableHeaders(raw=list(response.raw_headers))
        wanted = request.get("range")
        if wanted is None:
            return Response(data, status_code=status_code, headers=dict(headers))
        found = _ONE_RANGE.fullmatch(wanted.strip())
        if found is None or not (found[1] or found[2]):
            return response  # several ranges, or malformed: Starlette answers
        size = len(data)
        if found[1]:
            start, end = int(found[1]), int(found[2]) if found[2] else size - 1
        else:
            start, end = max(size - int(found[2]), 0), size - 1
        end = min(end, size - 1)
        if start > end or start >= size:
            return PlainTextResponse(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        headers["content-range"] = f"bytes {start}-{end}/{size}"
        headers["content-length"] = str(end - start + 1)
        return Response(data[start : end + 1], status_code=206, headers=dict(headers))


class BigChunkFileResponse(FileResponse):
    """A file response that reads 1 MB at a time (Starlette's 64 kB costs a thread hop each)."""

    chunk_size = 1 << 20
