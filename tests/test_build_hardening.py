"""Build hardening (issue 15): hostile ids, bad data and read errors fail their scene alone,
with a clear message naming the item or file; the catalog stays valid and the next run works."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacmask.catalog.folder import CatalogFolder
from tests.sample_api import SampleStacApi
from tests.test_build import COLLECTION, assert_valid, build, make_scenes


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    root = tmp_path / "served"
    root.mkdir()
    with SampleStacApi(root) as server:
        for scene in make_scenes(root, 2, size=256):
            server.add_scene(scene)
        yield server


def put_first(api: SampleStacApi, item: dict[str, Any]) -> None:
    """Publish `item` ahead of the others (the search answers in insertion order)."""
    others = dict(api.items)
    api.items.clear()
    api.items[item["id"]] = item
    api.items.update(others)


def twin(api: SampleStacApi, new_id: str) -> dict[str, Any]:
    """A copy of the first scene's item under another id."""
    item = copy.deepcopy(next(iter(api.items.values())))
    item["id"] = new_id
    return item


@pytest.mark.parametrize(
    "bad_id",
    [
        "collection.json",
        "Catalog.JSON",
        "failures.json",
        "CON",
        "nul.tif",
        "aux",
        "COM1",
        "trailing.",
    ],
)
def test_ids_that_clash_with_catalog_files_or_windows_names_are_refused(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, bad_id: str
) -> None:
    good = set(api.items)
    put_first(api, twin(api, bad_id))
    out = tmp_path / "cat"
    for _ in range(2):  # the next build into the same folder works as well
        result = build(out, api)
        assert result.exit_code == 1, result.output
        assert f"FAILED {bad_id!r} [item] ItemError" in result.output
        folder = CatalogFolder(out)
        assert folder.item_ids(COLLECTION) == good
        assert folder.failures()[bad_id]["error"] == "ItemError"
        assert (out / COLLECTION / "collection.json").is_file()
        assert not (out / COLLECTION / bad_id).is_dir()
        assert_valid(out, schema_map)


def test_band_read_errors_carry_gdal_message_and_href(tmp_path: Path, api: SampleStacApi) -> None:
    bad_id = next(iter(api.items))
    href = api.items[bad_id]["assets"]["BAND3"]["href"]
    served = api.root / href.split("/data/", 1)[1]
    data = served.read_bytes()
    served.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "cat"
    result = build(out, api)
    assert result.exit_code == 1, result.output
    message = CatalogFolder(out).failures()[bad_id]["message"]
    assert href in message, message
    assert "See previous exception" not in message, message
    assert "TIFFFillTile" in message or "Read error" in message, message
