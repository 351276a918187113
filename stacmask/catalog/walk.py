"""The one walk of a static catalog, used by validate, the geoparquet export and the index.

From `catalog.json` it follows `child` links (catalogs, collections) and `item` links, breadth
first, each file once. Catalogs and collections are read as they are reached; items are only
listed (`ItemLink`), so a caller that needs the files' metadata (the index, comparing sizes and
modification times) does not parse 100,000 JSON files to find the ten that changed.

Links are followed only when they are relative and lead to a file inside the catalog folder
(symlinks resolved): anything else is a problem, reported through `on_problem` with the file
that holds the link, and skipped. The default reporter warns (`StacmaskWarning`).
"""

from __future__ import annotations

import json
import os
import re
import stat
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from stacmask.errors import CatalogError, StacmaskWarning

JsonDict = dict[str, Any]
#: Called with the file at fault and what is wrong with it.
ProblemReporter = Callable[[Path, str], None]


def warn_problem(path: Path, message: str) -> None:
    """The default reporter: a `StacmaskWarning` naming the file."""
    warnings.warn(f"{path}: {message}", StacmaskWarning, stacklevel=4)


def raise_problem(path: Path, message: str) -> None:
    """A strict reporter: the first problem is a `CatalogError`."""
    raise CatalogError(f"{path}: {message}")


def read_json(path: Path) -> JsonDict:
    """A STAC JSON file as a dict; `CatalogError` naming the file when it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read STAC JSON ({exc})") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:  # orjson refuses some JSON that json reads (integers over 64 bits, NaN)
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise CatalogError(f"{path}: cannot read STAC JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: not a STAC object (the JSON is not an object)")
    return doc


@dataclass(frozen=True)
class CatalogNode:
    """A catalog or collection of the tree, read."""

    path: Path  # resolved
    relpath: str  # relative to the catalog folder, "/" separators
    doc: JsonDict
    #: The collection this node is, or lies in (None above any collection).
    collection: str | None
    #: (mtime_ns, size) of the file, taken before it was read: a later change shows as a
    #: different status, never as a status that matches a newer file than the one read.
    status: tuple[int, int] = (-1, -1)

    @property
    def is_collection(self) -> bool:
        """True for a STAC Collection."""
        return self.doc.get("type") == "Collection"


@dataclass(frozen=True)
class ItemLink:
    """An item the tree links to, not read yet (its file's status is known)."""

    file: str  # inside the catalog folder, symlinks resolved
    relpath: str
    collection: str | None
    #: The catalog or collection file that links to it.
    source: Path
    mtime_ns: int
    size: int

    @property
    def path(self) -> Path:
        """The item file (made on demand: a walk lists 100,000s of links)."""
        return Path(self.file)

    def read(self) -> JsonDict:
        """The item's JSON (`CatalogError` naming the file when unreadable)."""
        return read_json(self.path)


def catalog_file(catalog: Path | str) -> Path:
    """The root `catalog.json` of a catalog folder (or the file itself), resolved."""
    path = Path(catalog)
    path = path / "catalog.json" if path.is_dir() else path
    if not path.is_file():
        raise CatalogError(f"{path}: no catalog.json here")
    return path.resolve()


#: An href that is a plain relative path: no scheme, query, fragment or escapes.
_PLAIN = re.compile(r"[A-Za-z0-9._/-]+")


class _Resolver:
    """Where relative links lead inside one folder, checked with as few system calls as possible.

    A link is followed when its normalized path lies inside the folder and every directory on
    the way is a real directory (each checked once) and the target a regular file; a symlink on
    the way is resolved and must lead inside the folder too.
    """

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.verified: set[str] = {self.root}
        #: Real subdirectories of verified folders, listed once (a scandir, not a stat each).
        self.subfolders: dict[str, frozenset[str]] = {}

    def _real_folder(self, folder: str) -> bool:
        parent, name = os.path.split(folder)
        if parent not in self.verified:
            return stat.S_ISDIR(os.lstat(folder).st_mode)
        if parent not in self.subfolders:
            with os.scandir(parent) as entries:
                self.subfolders[parent] = frozenset(
                    e.name for e in entries if e.is_dir(follow_symlinks=False)
                )
        return name in self.subfolders[parent]

    def target(self, folder: str, href: str) -> tuple[str, os.stat_result] | str:
        """(path, lstat) of the file `href` (in a file in `folder`) leads to, or why it is not
        followed."""
        if not href or href.startswith("/"):
            return f"link {href!r} is not relative to the catalog; skipped"
        if _PLAIN.fullmatch(href):  # the common case, without the cost of urlsplit
            relative = href
        else:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc:
                return f"link {href!r} is not relative to the catalog; skipped"
            relative = unquote(parts.path)
        target = os.path.normpath(os.path.join(folder, relative))
        if not target.startswith(self.root + os.sep):
            return f"link {href!r} leads outside the catalog folder; skipped"
        try:
            pending = []
            folder = os.path.dirname(target)
            while folder not in self.verified:
                pending.append(folder)
                folder = os.path.dirname(folder)
            for folder in reversed(pending):  # from the verified ancestor down
                if not self._real_folder(folder):
                    if not os.path.exists(folder):
                        raise FileNotFoundError(folder)
                    return self._through_link(href, target)
                self.verified.add(folder)
            status = os.lstat(target)
        except OSError:
            return f"link {href!r} leads to no file; skipped"
        if stat.S_ISLNK(status.st_mode):
            return self._through_link(href, target)
        if not stat.S_ISREG(status.st_mode):
            return f"link {href!r} leads to no file; skipped"
        return target, status

    def _through_link(self, href: str, target: str) -> tuple[str, os.stat_result] | str:
        real = os.path.realpath(target)
        if not real.startswith(self.root + os.sep):
            return f"link {href!r} leads outside the catalog folder; skipped"
        try:
            status = os.stat(real)
        except OSError:
            return f"link {href!r} leads to no file; skipped"
        if not stat.S_ISREG(status.st_mode):
            return f"link {href!r} leads to no file; skipped"
        return real, status


def file_status(path: Path | str) -> tuple[int, int]:
    """(mtime_ns, size) of a file, (-1, -1) when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return (-1, -1)
    return (status.st_mtime_ns, status.st_size)


def walk_catalog(
    catalog: Path | str, on_problem: ProblemReporter = warn_problem, *, items: bool = True
) -> Iterator[CatalogNode | ItemLink]:
    """Every catalog, collection (read) and item (listed) reachable from the root, each once.

    The root catalog comes first; a node is yielded before the nodes and items it links to.
    With `items=False` only the catalogs and collections (their item links are not checked).
    """
    top = catalog_file(catalog)
    root = top.parent
    resolver = _Resolver(root)
    skip = len(str(root)) + 1
    seen: set[str] = {str(top)}
    pending: deque[tuple[Path, str | None]] = deque([(top, None)])
    wanted = ("child", "item") if items else ("child",)
    while pending:
        path, parent_collection = pending.popleft()
        node_status = file_status(path)
        try:
            doc = read_json(path)
        except CatalogError as exc:
            on_problem(path, str(exc).removeprefix(f"{path}: "))
            continue
        is_collection = doc.get("type") == "Collection"
        collection = str(doc.get("id")) if is_collection else parent_collection
        links = [
            (str(link["rel"]), str(link.get("href") or ""))
            for link in doc.get("links") or []
            if isinstance(link, dict) and link.get("rel") in wanted
        ]  # taken before the node is yielded: a caller may change its doc
        yield CatalogNode(path, str(path)[skip:], doc, collection, node_status)
        folder = str(path.parent)
        for rel, href in links:
            found = resolver.target(folder, href)
            if isinstance(found, str):
                on_problem(path, f"{rel} {found}")
                continue
            target, status = found
            if target in seen:
                continue
            seen.add(target)
            if rel == "item":
                relpath, mtime, size = target[skip:], status.st_mtime_ns, status.st_size
                yield ItemLink(target, relpath, collection, path, mtime, size)
            else:
                pending.append((Path(target), collection))
