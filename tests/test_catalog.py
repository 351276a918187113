"""The catalog folder: hostile ids, atomic JSON, failures, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pystac
import pytest

from stacmask.catalog.folder import CatalogFolder, check_id, write_bytes_atomic, write_json_atomic
from stacmask.errors import ItemError


@pytest.mark.parametrize(
    "bad",
    ["../evil", "a/b", "a\\b", "..", "x..y", "/abs", "", ".hidden", "a b", "a\x00b", "é" * 3],
)
def test_hostile_ids_are_refused(bad: str) -> None:
    with pytest.raises(ItemError, match="not usable as a file name"):
        check_id(bad)


def test_real_scene_ids_are_accepted() -> None:
    assert check_id("CBERS_4A_WPM_20200730_209_139_L4") == "CBERS_4A_WPM_20200730_209_139_L4"
    assert check_id("S2B_MSIL1C_20230101T133219_N0509_R081_T22KHV_20230101T150000.SAFE")


def test_atomic_write_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_writes_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "x.json", {"a": 1})
        write_bytes_atomic(tmp_path / "x.bin", b"\x00\x01")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "x.bin").stat().st_mode) == 0o644
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"


def _item(item_id: str, cloud: float) -> pystac.Item:
    item = pystac.Item(
        id=item_id,
        geometry={"type": "Point", "coordinates": [-45.0, -12.0]},
        bbox=[-45.0, -12.0, -45.0, -12.0],
        datetime=datetime(2021, 1, 5, tzinfo=timezone.utc),
        properties={"eo:cloud_cover": cloud, "stacmask:method": "notebook"},
    )
    return item


def _add_many(root: str, prefix: str, n: int) -> None:
    folder = CatalogFolder(Path(root))
    for i in range(n):
        folder.add_item(_item(f"{prefix}_{i:03d}", float(i)), "SRC-mask", {"id": "SRC"})


def test_failures_are_recorded_then_cleared(tmp_path: Path) -> None:
    folder = CatalogFolder(tmp_path / "cat")
    folder.ensure()
    folder.record_failure("SCENE_1", "read", "BandReadError", "x.tif: truncated")
    folder.record_failure("SCENE_1", "read", "BandReadError", "x.tif: truncated")
    failures = folder.failures()
    assert failures["SCENE_1"]["attempts"] == 2
    assert failures["SCENE_1"]["stage"] == "read"
    folder.add_item(_item("SCENE_1", 3.0), "SRC-mask", {"id": "SRC"})
    assert folder.failures() == {}
    assert folder.item_ids("SRC-mask") == {"SCENE_1"}


def test_two_writers_do_not_lose_items(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(str(root), p, 15)) for p in ("A", "B")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    folder = CatalogFolder(root)
    ids = folder.item_ids("SRC-mask")
    assert len(ids) == 30
    collection = json.loads(folder.collection_path("SRC-mask").read_text())
    assert collection["summaries"]["eo:cloud_cover"] == {"minimum": 0.0, "maximum": 14.0}
    catalog = json.loads(folder.catalog_path.read_text())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        "./SRC-mask/collection.json"
    ]
