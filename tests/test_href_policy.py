"""Band hrefs never reach GDAL unfiltered (issue 15, item 1), through `stacmask build` against a
STAC API on 127.0.0.1. Every hostile href here was read and published by the old reader."""

from __future__ import annotations

import copy
import gzip
import shutil
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stacmask.catalog.folder import CatalogFolder
from stacmask.cli import app
from tests.sample_api import SampleStacApi
from tests.scripted_http import Answer, Request, ScriptedServer, landing
from tests.test_build import COLLECTION, assert_valid, build, make_scenes, runner, serve_scenes


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    with serve_scenes(tmp_path, 2, size=256) as server:
        yield server


def _band_file(api: SampleStacApi, item_id: str) -> Path:
    href = api.items[item_id]["assets"]["BAND3"]["href"]
    return api.root / href.split("/data/", 1)[1]


def file_url(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    return _band_file(api, item_id).resolve().as_uri()


def local_path(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    return str(_band_file(api, item_id).resolve())


def vsizip(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    archive = tmp / "bands.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(_band_file(api, item_id), "b.tif")
    return f"/vsizip/{archive}/b.tif"


def vsigzip(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    packed = tmp / "b.tif.gz"
    packed.write_bytes(gzip.compress(_band_file(api, item_id).read_bytes()))
    return f"/vsigzip/{packed}"


def vsicurl(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    return "/vsicurl/" + api.items[item_id]["assets"]["BAND3"]["href"]


def vsisubfile(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    size = _band_file(api, item_id).stat().st_size
    return f"/vsisubfile/0_{size},{_band_file(api, item_id)}"


def vsistdin(api: SampleStacApi, item_id: str, tmp: Path) -> str:
    return "/vsistdin/"


HOSTILE: dict[str, Callable[[SampleStacApi, str, Path], str]] = {
    "file://": file_url,
    "local path": local_path,
    "/vsizip/": vsizip,
    "/vsigzip/": vsigzip,
    "/vsicurl/": vsicurl,
    "/vsisubfile/": vsisubfile,
    "/vsistdin/": vsistdin,
}


def raw_api(items: list[dict[str, Any]]) -> ScriptedServer:
    """A STAC API answering `items` as they are: no self links, so nothing resolves the hrefs
    against the server (a hostile API decides its links too)."""

    def answer(request: Request) -> Answer:
        if request.route == "/search":
            return Answer.json({"type": "FeatureCollection", "features": items, "links": []})
        if request.route == "/":
            return Answer.json(landing(hostile.url))
        return Answer.json({"code": "NotFound"}, 404)

    hostile = ScriptedServer(answer)
    return hostile


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_band_href_is_refused(
    tmp_path: Path, api: SampleStacApi, schema_map: Path, kind: str
) -> None:
    bad_id, good_id = list(api.items)
    items = [copy.deepcopy(api.items[item_id]) for item_id in (bad_id, good_id)]
    for item in items:
        item["links"] = []
    items[0]["assets"]["BAND3"]["href"] = HOSTILE[kind](api, bad_id, tmp_path)
    out = tmp_path / "cat"
    with raw_api(items) as hostile:
        result = runner.invoke(
            app, ["build", "--out", str(out), "--stac-url", hostile.url, "--quiet"]
        )
    assert result.exit_code == 1, result.output
    folder = CatalogFolder(out)
    assert folder.item_ids(COLLECTION) == {good_id}
    failure = folder.failures()[bad_id]
    assert (failure["stage"], failure["error"]) == ("item", "HrefRefused"), failure
    assert "refused" in failure["message"]
    assert not (out / COLLECTION / bad_id / f"{bad_id}_preview.png").exists()
    assert_valid(out, schema_map)


@pytest.mark.parametrize("scheme", ["ftp", "ftps"])
def test_a_redirect_never_takes_a_band_read_off_http(
    tmp_path: Path, api: SampleStacApi, scheme: str
) -> None:
    """curl (GDAL's HTTP) follows redirects to ftp(s)://; the reader must not."""
    connections: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(30)
    target = f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/b.tif"

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            connections.append(b"connected")
            conn.sendall(b"220 ready\r\n")

    threading.Thread(target=accept, daemon=True).start()

    def redirect(request: Request) -> Answer:
        return Answer(302, headers={"Location": target})

    bad_id, good_id = list(api.items)
    with ScriptedServer(redirect) as redirector:
        api.items[bad_id]["assets"]["BAND3"]["href"] = f"{redirector.url}/b.tif"
        out = tmp_path / "cat"
        result = build(out, api, "--timeout", "3")
    listener.close()
    assert result.exit_code == 1, result.output
    assert connections == []
    folder = CatalogFolder(out)
    assert folder.item_ids(COLLECTION) == {good_id}
    assert folder.failures()[bad_id]["stage"] == "read"


def test_bands_of_a_local_source_folder_read_on_purpose(tmp_path: Path) -> None:
    """`stacmask mask` reads the local files the user names (the policy's LOCAL access)."""
    scene = make_scenes(tmp_path, 1, size=256)[0]
    bands = [str(scene.bands[key]) for key in ("BAND1", "BAND2", "BAND3", "BAND4")]
    copy = tmp_path / "copy"
    copy.mkdir()
    for band in bands:
        shutil.copy(band, copy)
    result = runner.invoke(app, ["mask", str(tmp_path / "m.tif"), "--bands", *bands, "--json"])
    assert result.exit_code == 0, result.output


def test_an_item_without_datetime_is_recorded_alone(
    tmp_path: Path, api: SampleStacApi, schema_map: Path
) -> None:
    """Issue 15.5: the old search stopped at `Invalid Item: If datetime is None...` and built
    nothing; now that item fails alone, recorded with its id, and the others are built."""
    items = [copy.deepcopy(item) for item in api.items.values()]
    undated = copy.deepcopy(items[0])
    undated["id"] = "CBERS_4A_WPM_20210101_999_999_L4"
    undated["properties"] = {"datetime": None}
    out = tmp_path / "cat"
    with raw_api([items[0], undated, items[1]]) as server:
        result = runner.invoke(app, ["build", "--out", str(out), "--stac-url", server.url])
    assert result.exit_code == 1, result.output
    folder = CatalogFolder(out)
    assert folder.item_ids(COLLECTION) == {items[0]["id"], items[1]["id"]}
    failure = folder.failures()[undated["id"]]
    assert failure["stage"] == "search" and "datetime" in failure["message"]
    assert_valid(out, schema_map)
