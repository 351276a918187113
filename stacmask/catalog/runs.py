"""A build's claim on its catalog folder and scratch; cleaning what dead builds left behind.

Each build (`BuildRun`) has a random token and holds two locks for as long as it runs (the OS
releases them when it dies, however it dies):
  DIR/.stacmask-runs/<token>.lock      its claim on the catalog folder
  $TMPDIR/stacmask-run-<token>.lock    its claim on its scratch folder $TMPDIR/stacmask-run-<token>
A scene is written into a staging folder DIR/<collection>/.stacmask-run-<token>-<item>/ that is
published as the item folder in one step (CatalogFolder.add_item). Whatever a build leaves behind
(staging folders, scratch folders, half-written catalog files) carries its token, or is a
temporary file that only a writer holding the catalog lock makes; so a build removes, on start,
exactly what builds whose lock is free left, and never what a running build is using.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

from stacmask.catalog.folder import CatalogFolder

#: Folder of the catalog's run locks.
RUNS_DIR = ".stacmask-runs"
#: Prefix of staging folders (in collection folders) and scratch folders (in $TMPDIR).
STAGE_PREFIX = ".stacmask-run-"
SCRATCH_PREFIX = "stacmask-run-"
#: A half-written catalog file (folder.write_bytes_atomic): .NAME.<32 hex>.tmp
TEMPORARY_FILE = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
TOKEN = re.compile(r"^[0-9a-f]{16}$")


def _hold(path: Path) -> IO[str]:
    """Open `path` (created if missing) and hold an exclusive lock on it."""
    handle = path.open("a")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle


def _abandoned(lock: Path) -> bool:
    """True when no process holds `lock` (its build is gone); the file is then removed."""
    try:
        handle = lock.open("a")
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        lock.unlink(missing_ok=True)
        return True


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path) -> int:
    """Remove a file or folder; the bytes it held (0 when it was gone already)."""
    try:
        size = _size(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        return 0
    return size


class BuildRun:
    """One build's token, locks, staging folders and scratch folder (a context manager)."""

    def __init__(self, folder: CatalogFolder, scratch_root: Path | None = None) -> None:
        self.folder = folder
        self.token = uuid.uuid4().hex[:16]
        self._scratch_root = Path(scratch_root or tempfile.gettempdir())
        self.scratch_dir = self._scratch_root / f"{SCRATCH_PREFIX}{self.token}"
        self._locks: list[IO[str]] = []
        #: Leftovers of dead builds removed on entry: how many, and their bytes.
        self.cleaned = 0
        self.cleaned_bytes = 0

    @property
    def _catalog_lock(self) -> Path:
        return self.folder.root / RUNS_DIR / f"{self.token}.lock"

    @property
    def _scratch_lock(self) -> Path:
        return self._scratch_root / f"{SCRATCH_PREFIX}{self.token}.lock"

    def __enter__(self) -> BuildRun:
        self._catalog_lock.parent.mkdir(parents=True, exist_ok=True)
        self._locks.append(_hold(self._catalog_lock))  # before any staging folder exists
        try:
            self._locks.append(_hold(self._scratch_lock))
            self.scratch_dir.mkdir()
        except OSError:  # no usable $TMPDIR: the scenes use the system's temporary folder
            self.scratch_dir = self._scratch_root
        self.clean_abandoned()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stage in self._own_stages():
            _remove(stage)
        if self.scratch_dir != self._scratch_root:
            _remove(self.scratch_dir)
        for lock in (self._catalog_lock, self._scratch_lock):
            lock.unlink(missing_ok=True)
        for handle in self._locks:
            handle.close()
        self._locks.clear()

    def stage_dir(self, collection_id: str, item_id: str) -> Path:
        """The folder a scene of this build is written into before it is published."""
        item_dir = self.folder.item_dir(collection_id, item_id)
        return item_dir.with_name(f"{STAGE_PREFIX}{self.token}-{item_dir.name}")

    def discard(self, stage: Path) -> None:
        """Remove a staging folder (its scene failed or was interrupted)."""
        _remove(stage)

    def _collection_dirs(self) -> list[Path]:
        root = self.folder.root
        return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def _own_stages(self) -> list[Path]:
        prefix = f"{STAGE_PREFIX}{self.token}-"
        try:
            return [
                p for d in self._collection_dirs() for p in d.iterdir() if p.name.startswith(prefix)
            ]
        except OSError:  # a folder gone meanwhile: what is left is cleaned by the next build
            return []

    def _stage_abandoned(self, name: str, verdicts: dict[str, bool]) -> bool:
        """Whether the staging folder `name` belongs to a dead build (its lock is free or gone;
        a build takes its lock before it makes any staging folder)."""
        token = name[len(STAGE_PREFIX) :].split("-", 1)[0]
        if token == self.token:
            return False
        if token not in verdicts:
            lock = self.folder.root / RUNS_DIR / f"{token}.lock"
            verdicts[token] = not lock.exists() or _abandoned(lock)
        return verdicts[token]

    def clean_abandoned(self) -> None:
        """Remove what dead builds left: their staging and scratch folders, and half-written
        catalog files (under the catalog lock, so none is being written)."""
        found: list[Path] = []
        verdicts: dict[str, bool] = {}
        with self.folder.locked():
            for directory in [self.folder.root, *self._collection_dirs()]:
                for path in directory.iterdir():
                    if TEMPORARY_FILE.match(path.name) or (
                        path.name.startswith(STAGE_PREFIX)
                        and self._stage_abandoned(path.name, verdicts)
                    ):
                        found.append(path)
        for lock in (self.folder.root / RUNS_DIR).glob("*.lock"):
            if lock.stem not in verdicts and lock.stem != self.token:
                _abandoned(lock)  # a dead build that left no staging folder: drop its lock
        for lock in self._scratch_root.glob(f"{SCRATCH_PREFIX}*.lock"):
            if TOKEN.match(lock.stem[len(SCRATCH_PREFIX) :]) and _abandoned(lock):
                found.append(lock.with_suffix(""))
        for path in found:
            if path.exists():
                self.cleaned_bytes += _remove(path)
                self.cleaned += 1
