"""The catalog's DuckDB index (stacmask.catalog.index) keeps in step with the item files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from stacmask.catalog import index as index_module
from stacmask.catalog import walk as walk_module
from stacmask.catalog.index import INDEX_DIR, SNAPSHOT, CatalogIndex
from stacmask.errors import StacmaskWarning
from stacmask.serve.params import build_search
from stacmask.serve.query import select
from tests.synthetic_catalog import (
    COLLECTION,
    link_items,
    synthetic_item,
    write_catalog,
    write_items,
)


def _ids(index: CatalogIndex, **options: str) -> list[str]:
    return [hit.id for hit in select(index, build_search(**options))]


def test_a_second_open_reads_only_what_changed(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 60)
    first = CatalogIndex(root)
    assert first.item_count() == 60 and (root / INDEX_DIR / SNAPSHOT).is_file()
    assert first.read_at_open == 60
    assert CatalogIndex(root).read_at_open == 0  # nothing new: no item file read

    added = write_items(root, range(60, 65))
    link_items(root, added, replace=False)
    changed = synthetic_item(3)
    changed["properties"]["eo:cloud_cover"] = 99.5
    path = root / COLLECTION / changed["id"] / f"{changed['id']}.json"
    path.write_text(json.dumps(changed))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    later = CatalogIndex(root)
    assert later.read_at_open == 6 and later.item_count() == 65
    assert _ids(later, filter='"eo:cloud_cover" = 99.5') == [changed["id"]]
    assert later.refresh() == 0

    link_items(root, [synthetic_item(n)["id"] for n in range(10)])  # unlink all but ten
    assert later.refresh() == 0 and later.item_count() == 10
    assert CatalogIndex(root).item_count() == 10


def test_an_open_with_the_catalog_unchanged_looks_at_no_item_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_catalog(tmp_path / "cat", 40)
    assert CatalogIndex(root).read_at_open == 40
    resolved: list[str] = []
    original = walk_module._Resolver.target

    def counting(self: walk_module._Resolver, folder: str, href: str) -> object:
        resolved.append(href)
        return original(self, folder, href)

    monkeypatch.setattr(walk_module._Resolver, "target", counting)
    index = CatalogIndex(root)
    assert index.read_at_open == 0 and index.item_count() == 40
    assert all(not href.endswith(".json") or "collection" in href for href in resolved)
    assert set(index.collections) == {COLLECTION}

    link_items(root, write_items(root, range(40, 42)), replace=False)  # collection.json changes
    resolved.clear()
    later = CatalogIndex(root)
    assert later.read_at_open == 2 and later.item_count() == 42
    assert sum(href.endswith(".json") and "collection" not in href for href in resolved) == 42
    assert CatalogIndex(root).read_at_open == 0


def test_a_running_index_catches_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_catalog(tmp_path / "cat", 20)
    index = CatalogIndex(root)
    monkeypatch.setattr(index_module, "CHECK_INTERVAL", 0.0)
    link_items(root, write_items(root, range(20, 30)), replace=False)
    deadline = time.monotonic() + 30
    while index.item_count() != 30:  # the search triggers a catch-up in the background
        assert time.monotonic() < deadline, "the index did not catch up"
        _ids(index)
        time.sleep(0.05)
    assert len(_ids(index)) == 30


def test_two_processes_build_one_index_at_once(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 3000)
    script = (
        "import sys\nfrom stacmask.catalog.index import CatalogIndex\n"
        "print(CatalogIndex(sys.argv[1]).item_count())\n"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0].decode().split() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == [["3000"], ["3000"]]
    assert CatalogIndex(root).read_at_open == 0


def test_a_killed_first_build_resumes(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 4000)
    script = (
        "import sys\nimport stacmask.catalog.index as m\nm.CHECKPOINT_ROWS = 500\n"
        "m.CatalogIndex(sys.argv[1])\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script, str(root)])
    snapshot = root / INDEX_DIR / SNAPSHOT
    deadline = time.monotonic() + 120
    while not snapshot.exists():
        assert run.poll() is None and time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    resumed = CatalogIndex(root)
    assert 0 < resumed.read_at_open < 4000  # the checkpoints were kept
    assert resumed.item_count() == 4000
    assert len(_ids(resumed)) == 4000 == len(set(_ids(resumed)))


def test_a_damaged_snapshot_is_rebuilt(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 30)
    CatalogIndex(root)
    (root / INDEX_DIR / SNAPSHOT).write_bytes(b"not parquet")
    with pytest.warns(StacmaskWarning, match="unreadable index snapshot"):
        index = CatalogIndex(root)
    assert index.item_count() == 30


def test_an_unreadable_item_spoils_nothing_else(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 10)
    bad = synthetic_item(4)["id"]
    (root / COLLECTION / bad / f"{bad}.json").write_text("{ not json")
    with pytest.warns(StacmaskWarning, match=rf"{bad}\.json: cannot read STAC JSON"):
        index = CatalogIndex(root)
    assert index.item_count() == 9 and bad not in _ids(index)


def test_a_property_that_changes_kind_is_reindexed(tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 10)
    index = CatalogIndex(root)
    assert index.kinds["cbers:path"] == "integer"
    item = synthetic_item(2)
    item["properties"]["cbers:path"] = 221.5  # integer -> number: the column widens
    item["properties"]["stacmask:method"] = 7  # string -> mixed: rebuilt from the JSON
    path = root / COLLECTION / item["id"] / f"{item['id']}.json"
    path.write_text(json.dumps(item))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index.refresh()
    assert index.kinds["cbers:path"] == "number" and index.kinds["stacmask:method"] == "mixed"
    assert _ids(index, filter='"cbers:path" = 221.5') == [item["id"]]
    assert index.item_count() == 10
