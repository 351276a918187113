"""Each fault gives a clear error for its scene, a failures.json entry, and a valid catalog."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stacmask.catalog.folder import CatalogFolder
from tests.sample_api import SampleStacApi
from tests.test_build import COLLECTION, assert_valid, build, serve_scenes

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<prdf xmlns="http://www.gisplan.com.br/xmlsat"><image>&lol4;</image></prdf>"""


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    with serve_scenes(tmp_path, 3, size=256) as server:
        yield server


def _asset_file(api: SampleStacApi, item: dict[str, Any], key: str) -> Path:
    href = item["assets"][key]["href"]
    return api.root / href.split("/data/", 1)[1]


def _asset_path(item: dict[str, Any], key: str) -> str:
    return "/" + item["assets"][key]["href"].split("/", 3)[3]


def band_500(api: SampleStacApi, item: dict[str, Any]) -> None:
    api.faults.fail(_asset_path(item, "BAND3"), 500)


def band_timeout(api: SampleStacApi, item: dict[str, Any]) -> None:
    api.faults.delay(_asset_path(item, "BAND2"), 4.0)


def truncated_tiff(api: SampleStacApi, item: dict[str, Any]) -> None:
    path = _asset_file(api, item, "BAND3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def missing_band(api: SampleStacApi, item: dict[str, Any]) -> None:
    del item["assets"]["BAND4"]


def malformed_xml(api: SampleStacApi, item: dict[str, Any]) -> None:
    _asset_file(api, item, "BAND1_xml").write_bytes(b"<prdf><image><path>209</pa")


def entity_expansion_xml(api: SampleStacApi, item: dict[str, Any]) -> None:
    _asset_file(api, item, "BAND1_xml").write_bytes(BILLION_LAUGHS)


def xml_500(api: SampleStacApi, item: dict[str, Any]) -> None:
    api.faults.fail(_asset_path(item, "BAND1_xml"), 503)


FAULTS: dict[str, tuple[Callable[[SampleStacApi, dict[str, Any]], None], str, str, str]] = {
    # name: (inject, stage, error type, text the message must contain)
    "band HTTP 500": (band_500, "read", "BandReadError", "BAND3"),
    "band timeout": (band_timeout, "read", "BandReadError", "BAND2"),
    "truncated TIFF": (truncated_tiff, "read", "BandReadError", "BAND3"),
    "missing band": (missing_band, "item", "ItemError", "BAND4"),
    "malformed XML": (malformed_xml, "metadata", "MetadataError", "BAND1.xml"),
    "entity expansion XML": (entity_expansion_xml, "metadata", "MetadataError", "BAND1.xml"),
    "XML HTTP 503": (xml_500, "metadata", "MetadataError", "BAND1.xml"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_fails_one_scene_only(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, fault: str
) -> None:
    inject, stage, error_type, needle = FAULTS[fault]
    bad_id = next(iter(api.items))
    inject(api, api.items[bad_id])
    out = tmp_path / "cat"
    result = build(out, api, "--timeout", "1")
    assert result.exit_code == 1, result.output
    assert f"FAILED {bad_id} [{stage}] {error_type}" in result.output
    assert "1 failed" in result.output
    folder = CatalogFolder(out)
    assert folder.item_ids(COLLECTION) == set(api.items) - {bad_id}
    failure = folder.failures()[bad_id]
    assert (failure["stage"], failure["error"]) == (stage, error_type)
    assert needle in failure["message"], failure["message"]
    assert_valid(out, schema_map)


def test_failed_scene_is_retried_by_the_next_run(tmp_path: Path, api: SampleStacApi) -> None:
    bad_id = next(iter(api.items))
    xml_500(api, api.items[bad_id])
    out = tmp_path / "cat"
    assert build(out, api).exit_code == 1
    assert build(out, api).exit_code == 1
    assert CatalogFolder(out).failures()[bad_id]["attempts"] == 2
    api.faults.clear()
    result = build(out, api)
    assert result.exit_code == 0, result.output
    assert "1 scene(s) added, 2 already present" in result.output
    assert CatalogFolder(out).failures() == {}


def test_search_errors_are_retried(tmp_path: Path, api: SampleStacApi) -> None:
    api.faults.fail("/search", 500, times=2)
    result = build(tmp_path / "cat", api)
    assert result.exit_code == 0, result.output
    assert api.faults.count("/search") >= 3


def test_search_that_keeps_failing_is_a_clear_error(tmp_path: Path, api: SampleStacApi) -> None:
    api.faults.fail("/search", 502)
    out = tmp_path / "cat"
    result = build(out, api, "--timeout", "2")
    assert result.exit_code == 2
    assert "search of CB4A-WPM-L4-DN-1 failed" in result.output
    assert api.url in result.output
    assert (out / "catalog.json").exists()


@pytest.mark.parametrize("bad_id", ["../../escaped", "a/b", "..", "x/../../y"])
def test_hostile_item_ids_never_become_paths(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, bad_id: str
) -> None:
    template = next(iter(api.items.values()))
    hostile = copy.deepcopy(template)
    hostile["id"] = bad_id
    api.items[bad_id] = hostile
    out = tmp_path / "deep" / "cat"
    result = build(out, api)
    assert result.exit_code == 1
    assert "not usable as a file name" in result.output
    failures = CatalogFolder(out).failures()
    assert failures[bad_id]["error"] == "ItemError"
    assert len(CatalogFolder(out).item_ids(COLLECTION)) == 3
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "served" not in p.parts}
    assert all(p.parts[:2] == ("deep", "cat") for p in written if len(p.parts) > 2)
    assert_valid(out, schema_map)
    json.loads((out / "failures.json").read_text())
