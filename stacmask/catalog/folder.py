"""The output catalog folder: atomic writes under a lock, so it is valid after any kill.

Layout (links relative, so the folder can be copied or served anywhere):
  DIR/catalog.json
  DIR/failures.json                                 failed scenes, retried by the next run
  DIR/<collection>/collection.json
  DIR/<collection>/<item>/<item>.json, <item>_mask.tif, <item>_preview.png

A scene joins the catalog when its item is linked from collection.json. A build writes its files
into a staging folder first (catalog/runs.py), which becomes the item folder in one step
(replacing an old one whole with `--force`); the collection and catalog files are rewritten
atomically under an exclusive lock, so concurrent builds into one folder serialize their updates.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pystac
from pystac.utils import datetime_to_str, str_to_datetime

from stacmask.constants import (
    FAILURES_FILE,
    LOCK_FILE,
    PROP_SHADOW_COVER,
    PROP_WATER_COVER,
)
from stacmask.errors import CatalogError, ItemError
from stacmask.output.item import item_assets, processor_provider

#: Item and collection ids become folder and file names: letters, digits, '.', '_', '-' only.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
#: Properties whose ranges the collection summarizes.
SUMMARIZED = ("eo:cloud_cover", PROP_SHADOW_COVER, PROP_WATER_COVER)


#: Names of the catalog's own files: an item or collection folder of one of these names would
#: take its place (compared without case: macOS and Windows file systems ignore it).
CATALOG_FILES = frozenset(
    name.lower() for name in ("catalog.json", "collection.json", FAILURES_FILE, LOCK_FILE)
)
#: Device names Windows reserves in every folder, also with an extension ("CON.txt").
WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)


def check_id(identifier: str, what: str = "item") -> str:
    """Return `identifier` if it is safe as a file name on every system, else raise ItemError
    saying why."""
    if not SAFE_ID.match(identifier) or ".." in identifier:
        raise ItemError(
            f"{what} id {identifier!r} is not usable as a file name (allowed: letters, digits, "
            "'.', '_', '-'; no path separators or '..')"
        )
    if identifier.lower() in CATALOG_FILES:
        raise ItemError(
            f"{what} id {identifier!r} is the name of one of the catalog's own files; its folder "
            "would take that file's place"
        )
    if identifier.split(".", 1)[0].lower() in WINDOWS_RESERVED or identifier.endswith("."):
        raise ItemError(
            f"{what} id {identifier!r} is not usable as a file name on Windows (a reserved "
            "device name such as CON, NUL, AUX, COM1, or a trailing '.')"
        )
    return identifier


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to a temporary file beside `path`, fsync it and rename it over `path`."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside `path`, fsync it and rename it over `path`.

    The file gets the usual permissions (0666 less the umask), like any other written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: renameat2 flag: swap two paths atomically (Linux 3.15+; ext4, xfs, btrfs, tmpfs).
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(
        AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), ctypes.c_uint(RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def replace_folder(new: Path, target: Path) -> None:
    """Make folder `new` be `target`, replacing any old `target` whole (in one step on Linux;
    elsewhere the old folder is moved aside first, a moment without it). `new` is gone after."""
    if not target.exists():
        os.replace(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new)  # now the old folder
        return
    old = target.with_name(f"{new.name}.old")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: cannot read catalog file: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: not a JSON object")
    return data


class CatalogFolder:
    """A static STAC catalog folder that scenes are added to one at a time."""

    def __init__(self, root: Path, title: str | None = None) -> None:
        self.root = root
        self.title = title or f"stacmask masks ({root.name})"

    @property
    def catalog_path(self) -> Path:
        """Path of the root catalog.json."""
        return self.root / "catalog.json"

    def collection_path(self, collection_id: str) -> Path:
        """Path of a collection's collection.json."""
        return self.root / check_id(collection_id, "collection") / "collection.json"

    def item_dir(self, collection_id: str, item_id: str) -> Path:
        """Folder holding an item's JSON, mask and preview."""
        return self.root / check_id(collection_id, "collection") / check_id(item_id)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock over catalog updates (released by the OS if the process dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create catalog.json if the folder has none."""
        with self.locked():
            self._ensure_catalog()

    def item_ids(self, collection_id: str) -> set[str]:
        """Ids of the items the collection links to (the scenes already in the catalog)."""
        path = self.collection_path(collection_id)
        if not path.exists():
            return set()
        links = _read_json(path).get("links", [])
        return {str(link.get("title")) for link in links if link.get("rel") == "item"}

    def add_item(
        self,
        item: pystac.Item,
        collection_id: str,
        source_collection: dict[str, Any],
        staged: Path | None = None,
    ) -> Path:
        """Write the item's JSON and link it from its collection (created on first use).

        With `staged` (a folder beside the item folder holding the item's asset files), the
        JSON is written there and the folder becomes the item folder in one step, replacing
        any old one whole: a reader sees the old item and files or the new ones, never a mix.
        """
        item_dir = self.item_dir(collection_id, item.id)
        item_path = item_dir / f"{item.id}.json"
        item.clear_links("root")
        item.clear_links("parent")
        item.clear_links("collection")
        item.collection_id = collection_id
        for rel, href in (
            ("root", "../../catalog.json"),
            ("parent", "../collection.json"),
            ("collection", "../collection.json"),
        ):
            item.add_link(pystac.Link(rel, href, media_type=pystac.MediaType.JSON))
        data = item.to_dict(include_self_link=False, transform_hrefs=False)
        data["collection"] = collection_id
        with self.locked():
            self._ensure_catalog()
            if staged is None:
                write_json_atomic(item_path, data)
            else:
                write_json_atomic(staged / item_path.name, data)
                replace_folder(staged, item_dir)
            self._link_item(collection_id, data, source_collection)
            self._clear_failure(item.id)
        return item_path

    def _ensure_catalog(self) -> None:
        if not self.catalog_path.exists():
            catalog = pystac.Catalog(
                id=check_id(self.root.name or "stacmask", "catalog"),
                title=self.title,
                description="Cloud, cloud-shadow and water masks computed by stacmask, one item "
                "per source scene, linked to it with `derived_from`.",
            )
            write_json_atomic(self.catalog_path, _plain(catalog.to_dict(include_self_link=False)))

    def _link_item(
        self, collection_id: str, item: dict[str, Any], source_collection: dict[str, Any]
    ) -> None:
        path = self.collection_path(collection_id)
        collection = (
            _read_json(path)
            if path.exists()
            else new_collection(collection_id, source_collection, item)
        )
        href = f"./{item['id']}/{item['id']}.json"
        if not any(link.get("href") == href for link in collection["links"]):
            collection["links"].append(
                {"rel": "item", "href": href, "type": "application/geo+json", "title": item["id"]}
            )
        _extend(collection, item)
        write_json_atomic(path, collection)
        catalog = _read_json(self.catalog_path)
        child = f"./{collection_id}/collection.json"
        if not any(link.get("href") == child for link in catalog["links"]):
            catalog["links"].append(
                {"rel": "child", "href": child, "type": "application/json", "title": collection_id}
            )
            write_json_atomic(self.catalog_path, catalog)

    # -- failures ------------------------------------------------------------------------------
    @property
    def failures_path(self) -> Path:
        """Path of the failures file (not part of the STAC catalog)."""
        return self.root / FAILURES_FILE

    def failures(self) -> dict[str, dict[str, Any]]:
        """Failed scenes by id: stage, error type, message, time, attempts."""
        if not self.failures_path.exists():
            return {}
        data = _read_json(self.failures_path)
        scenes = data.get("scenes", {})
        return scenes if isinstance(scenes, dict) else {}

    def forget_failures(self, scene_ids: set[str]) -> None:
        """Drop the failures of these scenes (they are in the catalog: nothing to retry)."""
        with self.locked():
            scenes = self.failures()
            if scene_ids & set(scenes):
                kept = {k: v for k, v in scenes.items() if k not in scene_ids}
                write_json_atomic(self.failures_path, {"scenes": kept})

    def record_failure(self, scene_id: str, stage: str, error_type: str, message: str) -> None:
        """Record that a scene failed at `stage`; the next run retries it."""
        with self.locked():
            scenes = self.failures()
            previous = scenes.get(scene_id, {})
            scenes[scene_id] = {
                "stage": stage,
                "error": error_type,
                "message": message,
                "time": datetime_to_str(datetime.now(timezone.utc)),
                "attempts": int(previous.get("attempts", 0)) + 1,
            }
            write_json_atomic(self.failures_path, {"scenes": scenes})

    def _clear_failure(self, scene_id: str) -> None:
        scenes = self.failures()
        if scene_id in scenes:
            del scenes[scene_id]
            write_json_atomic(self.failures_path, {"scenes": scenes})


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data))  # type: ignore[no-any-return]


def new_collection(
    collection_id: str, source: dict[str, Any], item: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A mask collection for the scenes of source collection `source` (its JSON, may be {});
    its providers and keywords come from the source collection, else from its first mask
    `item` (which carries those its sensor gave)."""
    first = (item or {}).get("properties", {})
    source_id = source.get("id", collection_id.removesuffix("-mask"))
    collection = pystac.Collection(
        id=collection_id,
        title=f"Cloud, shadow and water masks of {source.get('title') or source_id}",
        description=(
            f"Cloud, cloud-shadow and water masks computed by stacmask for the scenes of "
            f"{source_id}. Each item carries eo:cloud_cover and the prefixed shadow and water "
            "covers, and links to its source scene with `derived_from`."
        ),
        extent=pystac.Extent(
            pystac.SpatialExtent([[0.0, 0.0, 0.0, 0.0]]),
            pystac.TemporalExtent([[datetime.now(timezone.utc), None]]),
        ),
        license=str(source.get("license") or "other"),
        providers=_source_providers(source) or _item_providers(first),
        keywords=_keywords(source, first),
    )
    data = _plain(collection.to_dict(include_self_link=False, transform_hrefs=False))
    data["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
    ]
    data["item_assets"] = _plain(item_assets(item))
    data["summaries"] = {}
    data["extent"] = {"spatial": {"bbox": []}, "temporal": {"interval": [[None, None]]}}
    for extension in (
        "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    ):
        if extension not in data.setdefault("stac_extensions", []):
            data["stac_extensions"].append(extension)
    return data


def _source_providers(source: dict[str, Any]) -> list[pystac.Provider]:
    """The source collection's own producers and licensors, then stacmask as processor.

    Empty when the source collection names none (then the mask item's are used).
    """
    kept: list[pystac.Provider] = []
    for entry in source.get("providers") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        roles = [r for r in entry.get("roles") or [] if r in ("producer", "licensor")]
        if roles:
            kept.append(pystac.Provider(name=str(entry["name"]), roles=roles, url=entry.get("url")))
    if not kept:
        return []
    return [*kept, processor_provider()]


def _item_providers(properties: dict[str, Any]) -> list[pystac.Provider]:
    """The providers a mask item carries (its sensor's and stacmask), else stacmask alone."""
    entries = [e for e in properties.get("providers") or [] if isinstance(e, dict)]
    kept = [pystac.Provider.from_dict(e) for e in entries if e.get("name")]
    return kept or [processor_provider()]


def _keywords(source: dict[str, Any], properties: dict[str, Any]) -> list[str]:
    """Keywords of a mask collection: the mask's own, then the source collection's (else the
    mask item's, from its sensor)."""
    own = ["cloud mask", "cloud shadow", "water"]
    extra = [str(k) for k in source.get("keywords") or [] if str(k) not in own]
    sensor = [str(k) for k in properties.get("keywords") or [] if str(k) not in own]
    return own + (extra or sensor)


def _extend(collection: dict[str, Any], item: dict[str, Any]) -> None:
    """Grow the collection's extent and summaries to cover `item`."""
    bbox = item.get("bbox")
    boxes = collection["extent"]["spatial"]["bbox"]
    if bbox:
        if boxes:
            old = boxes[0]
            boxes[0] = [
                min(old[0], bbox[0]),
                min(old[1], bbox[1]),
                max(old[2], bbox[2]),
                max(old[3], bbox[3]),
            ]
        else:
            boxes.append(list(bbox[:4]))
    props = item["properties"]
    start = props.get("start_datetime") or props.get("datetime")
    end = props.get("end_datetime") or props.get("datetime")
    interval = collection["extent"]["temporal"]["interval"][0]
    if start and (interval[0] is None or str_to_datetime(start) < str_to_datetime(interval[0])):
        interval[0] = start
    if end and (interval[1] is None or str_to_datetime(end) > str_to_datetime(interval[1])):
        interval[1] = end
    summaries = collection.setdefault("summaries", {})
    for key in SUMMARIZED:
        value = props.get(key)
        if value is None:
            continue
        current = summaries.get(key)
        if current is None:
            summaries[key] = {"minimum": value, "maximum": value}
        else:
            current["minimum"] = min(current["minimum"], value)
            current["maximum"] = max(current["maximum"], value)
    methods = summaries.setdefault("stacmask:method", [])
    if props.get("stacmask:method") not in methods:
        methods.append(props.get("stacmask:method"))
