"""The local BDC stand-in: STAC API search and paging, Range file serving, safety, faults."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pystac_client
import pytest
import rasterio
import requests
from pystac_client.exceptions import APIError

from stacmask.demo.sample_api import SampleStacApi, parse_datetime_range, serve_sample_scenes
from stacmask.demo.samples import SampleScene, write_sample_scene
from tests.conftest import shared_path

COLLECTION = "CB4A-WPM-L4-DN-1"
IDS = [
    "CBERS_4A_WPM_20210104_221_116_L4",
    "CBERS_4A_WPM_20210109_222_117_L4",
    "CBERS_4A_WPM_20210114_223_118_L4",
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleStacApi]:
    work = tmp_path_factory.mktemp("bdc")
    (work.parent / "secret.txt").write_text("TOP-SECRET-CONTENT")
    with serve_sample_scenes(work, n_scenes=3, size=256) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_faults(api: SampleStacApi) -> Iterator[None]:
    yield
    api.faults.clear()


def _path(href: str) -> str:
    return urlsplit(href).path


def _raw_get(api: SampleStacApi, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET with the path sent exactly as given (no client-side normalisation)."""
    url = urlsplit(api.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), body


def _ids(search: pystac_client.ItemSearch) -> list[str]:
    return sorted(item.id for item in search.items())


def test_landing_conformance_collections(api: SampleStacApi) -> None:
    client = pystac_client.Client.open(api.url)
    for conformance in ("CORE", "ITEM_SEARCH", "COLLECTIONS", "FEATURES"):
        assert client.conforms_to(conformance)
    rels = {(link.rel, link.extra_fields.get("method")) for link in client.links}
    assert {("search", "GET"), ("search", "POST"), ("conformance", None), ("data", None)} <= rels
    collection = client.get_collection(COLLECTION)
    assert collection.id == COLLECTION
    west, south, east, north = collection.extent.spatial.bboxes[0]
    assert west < east and south < north
    items = list(collection.get_items())
    assert sorted(i.id for i in items) == IDS
    item = collection.get_item(IDS[0])
    assert item is not None and item.collection_id == COLLECTION
    assert item.get_self_href() == api.item_url(IDS[0])


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_search_filters(api: SampleStacApi, method: str) -> None:
    client = pystac_client.Client.open(api.url)

    def search(**kwargs: Any) -> list[str]:
        return _ids(client.search(method=method, **kwargs))

    assert search(collections=[COLLECTION]) == IDS
    assert search(collections=["nope"]) == []
    assert search(ids=[IDS[1]]) == [IDS[1]]
    assert search(datetime="2021-01-05/2021-01-31") == IDS[1:]
    assert search(datetime="../2021-01-05") == IDS[:1]
    assert search(datetime="2021-01-10T00:00:00Z/..") == IDS[2:]
    assert search(datetime="2021-01-09T13:30:00Z") == [IDS[1]]
    assert search(datetime="2021-01-09T13:40:00Z") == []
    assert search(datetime="2021-01-09") == [IDS[1]]
    boxes = {item_id: item["bbox"] for item_id, item in api.items.items()}
    west, south, east, north = boxes[IDS[1]]
    assert search(bbox=[west + 0.001, south + 0.001, east - 0.001, north - 0.001]) == [IDS[1]]
    assert search(bbox=[0.0, 0.0, 1.0, 1.0]) == []
    point = {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]}
    assert search(intersects=point) == [IDS[1]]
    assert search(collections=[COLLECTION], datetime="2021-01-01/2021-01-05", ids=IDS) == IDS[:1]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_search_paging(api: SampleStacApi, method: str) -> None:
    client = pystac_client.Client.open(api.url)
    search = client.search(collections=[COLLECTION], limit=1, method=method)
    pages = list(search.pages())
    assert [len(page.items) for page in pages] == [1, 1, 1]
    assert sorted(i.id for page in pages for i in page.items) == IDS
    assert search.matched() == 3
    two = client.search(collections=[COLLECTION], limit=2, max_items=2, method=method)
    assert len(list(two.items())) == 2


def test_items_endpoint_paging(api: SampleStacApi) -> None:
    page = requests.get(f"{api.url}collections/{COLLECTION}/items?limit=2", timeout=10).json()
    assert page["type"] == "FeatureCollection" and len(page["features"]) == 2
    (next_link,) = [link for link in page["links"] if link["rel"] == "next"]
    rest = requests.get(next_link["href"], timeout=10).json()
    assert [f["id"] for f in rest["features"]] == [IDS[2]]
    assert not [link for link in rest["links"] if link["rel"] == "next"]


def test_bad_requests_and_missing_things(api: SampleStacApi) -> None:
    for query in ("bbox=1,2,3", "bbox=a,b,c,d", "bbox=0,10,1,5", "datetime=yesterday", "limit=0"):
        response = requests.get(f"{api.url}search?{query}", timeout=10)
        assert response.status_code == 400, query
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["description"]
    response = requests.post(f"{api.url}search", data="{not json", timeout=10)
    assert response.status_code == 400
    response = requests.post(f"{api.url}search", json={"bbox": [0, 0, 1]}, timeout=10)
    assert response.status_code == 400 and "bbox" in response.json()["description"]
    assert requests.get(f"{api.url}collections/nope", timeout=10).status_code == 404
    missing = f"{api.url}collections/{COLLECTION}/items/nope"
    assert requests.get(missing, timeout=10).status_code == 404
    assert requests.get(f"{api.url}nothing/here", timeout=10).status_code == 404
    client = pystac_client.Client.open(api.url)
    with pytest.raises(APIError):
        list(client.search(bbox=[0, 10, 1, 5], method="GET").items())


def test_datetime_parsing() -> None:
    start, end = parse_datetime_range("2021-08-05")
    assert start is not None and end is not None and (end - start).days == 0 and end > start
    assert parse_datetime_range("../2021-08-05T00:00:00Z")[0] is None
    assert parse_datetime_range("2021-08-05T00:00:00Z/..")[1] is None


def test_rasterio_reads_a_band_over_http_with_ranges(api: SampleStacApi) -> None:
    item = api.items[IDS[1]]
    href = item["assets"]["BAND3"]["href"]
    path = _path(href)
    assert path.startswith(
        "/data/CB4A-WPM-L4-DN/2021_01/CBERS_4A_WPM_RAW_2021_01_09.13_25_00_ETC2/"
    )
    assert api.root is not None
    local = api.root / path.removeprefix("/data/")
    before = len(api.requests)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(href) as remote:
        data = remote.read(1)
    with rasterio.open(local) as ds:
        assert np.array_equal(data, ds.read(1))
    ranged = [r for r in api.requests[before:] if r.path == path and r.range]
    assert ranged and all(r.status == 206 for r in ranged)
    xml = requests.get(item["assets"]["BAND3_xml"]["href"], timeout=10)
    assert xml.status_code == 200 and xml.headers["Content-Type"] == "application/xml"
    assert xml.content.startswith(b"<?xml")
    thumb = requests.head(item["assets"]["thumbnail"]["href"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"


def test_range_edge_cases(api: SampleStacApi) -> None:
    href = api.items[IDS[0]]["assets"]["BAND1"]["href"]
    path = _path(href)
    status, headers, body = _raw_get(api, path)
    size = len(body)
    assert status == 200 and int(headers["Content-Length"]) == size > 1000
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "image/tiff; application=geotiff"
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=10-{size + 500}": (10, size - 1),
        f"bytes=-{size + 10}": (0, size - 1),
    }
    for spec, (first, last) in cases.items():
        status, headers, part = _raw_get(api, path, {"Range": spec})
        assert status == 206, spec
        assert headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert part == body[first : last + 1]
        assert int(headers["Content-Length"]) == len(part)
    for spec in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0"):
        status, headers, _ = _raw_get(api, path, {"Range": spec})
        assert status == 416, spec
        assert headers["Content-Range"] == f"bytes */{size}"
    for spec in ("bytes=5-2", "items=0-5", "bytes=0-1,5-6", "bytes=x-y"):  # ignored: whole file
        status, _, whole = _raw_get(api, path, {"Range": spec})
        assert status == 200 and whole == body, spec
    head = requests.head(href, timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == size
    assert head.content == b""


def test_hostile_paths_are_refused(api: SampleStacApi, tmp_path: Path) -> None:
    root = api.root
    assert root is not None
    (root / "plain.txt").write_text("served")
    assert _raw_get(api, "/data/plain.txt")[0] == 200
    outside = tmp_path / "outside.txt"
    outside.write_text("TOP-SECRET-CONTENT")
    (root / "link.txt").symlink_to(outside)
    (root / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    hostile = [
        "/data/../secret.txt",
        "/data/../../etc/passwd",
        "/data/%2e%2e/secret.txt",
        "/data/%2E%2E/%2e%2e/etc/passwd",
        "/data/CB4A-WPM-L4-DN/..%2f..%2fsecret.txt",
        "/data//etc/passwd",
        "/data/%2fetc%2fpasswd",
        "/data/./plain.txt",
        "/data/link.txt",
        "/data/linkdir/outside.txt",
        "/data/plain.txt%00.tif",
        "/data/..\\secret.txt",
        "/data/%252e%252e/secret.txt",
        "/data/",
        "/data/CB4A-WPM-L4-DN",
    ]
    for path in hostile:
        status, _, body = _raw_get(api, path)
        assert status in (403, 404), path
        assert b"TOP-SECRET" not in body and b"root:" not in body


def test_fault_injection_errors_then_ok(api: SampleStacApi) -> None:
    client = pystac_client.Client.open(api.url)
    api.faults.fail("/search", times=2, status=503)
    before = api.faults.count("/search")
    for _ in range(2):
        with pytest.raises(APIError):
            list(client.search(collections=[COLLECTION], method="POST").items())
    assert _ids(client.search(collections=[COLLECTION], method="POST")) == IDS
    assert api.faults.count("/search") == before + 3

    href = api.items[IDS[0]]["assets"]["BAND2"]["href"]
    path = _path(href)
    api.faults.fail("/data/")
    assert requests.get(href, timeout=10).status_code == 500
    assert requests.get(href, timeout=10).status_code == 500
    api.faults.clear()
    assert requests.get(href, timeout=10).status_code == 200
    assert api.faults.count(path, exact=True) >= 3
    assert api.faults.count("/data/") >= api.faults.count(path)
    assert api.faults.requests[path] == api.faults.count(path, exact=True)


def test_fault_injection_delay_and_drop(api: SampleStacApi) -> None:
    href = api.items[IDS[0]]["assets"]["BAND4"]["href"]
    api.faults.delay("/search", 1.5, times=1)
    with pytest.raises(requests.Timeout):
        requests.get(f"{api.url}search", timeout=0.3)
    started = time.monotonic()
    assert requests.get(f"{api.url}search", timeout=5).status_code == 200  # delay used up
    assert time.monotonic() - started < 1.0

    full = requests.get(href, timeout=10).content
    api.faults.drop(_path(href), times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(href, timeout=10)
    assert requests.get(href, timeout=10).content == full

    api.faults.drop("/search", times=1, after_bytes=10)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{api.url}search", timeout=10).json()
    assert requests.get(f"{api.url}search", timeout=10).json()["type"] == "FeatureCollection"


def test_real_xml_served_as_scene_metadata(tmp_path: Path) -> None:
    real = shared_path("data/inpe-xml/CBERS_4A_WPM_20200730_209_139_L4_BAND2.xml")
    scene: SampleScene = write_sample_scene(
        tmp_path, "CBERS_4A_WPM_20200730_209_139_L4", width=128, height=128
    )
    with SampleStacApi() as server:
        item = server.add_scene(scene, xml_paths={"BAND1": real, "BAND2": real})
        for key in ("BAND1_xml", "BAND2_xml"):
            assert (
                requests.get(item["assets"][key]["href"], timeout=10).content == real.read_bytes()
            )
        own = requests.get(item["assets"]["BAND3_xml"]["href"], timeout=10).content
        assert own == scene.xml["BAND3"].read_bytes()
        # without a root only registered files are served
        assert requests.get(f"{server.url}data/anything.tif", timeout=10).status_code == 404


def test_item_templates_and_extra_collections(tmp_path: Path) -> None:
    template = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": "CBERS_4A_WPM_20220101_100_100_L4",
        "collection": "CBERS4A_WPM_L4_DN",
        "geometry": {"type": "Point", "coordinates": [-47.0, -15.0]},
        "bbox": [-47.0, -15.0, -47.0, -15.0],
        "properties": {"datetime": "2022-01-01T13:00:00Z"},
        "assets": {"blue": {"href": "{base_url}/data/x/blue.tif"}},
        "links": [],
    }
    with SampleStacApi(tmp_path, items=[template]) as server:
        (stored,) = server.items.values()
        assert stored["assets"]["blue"]["href"] == f"{server.url}data/x/blue.tif"
        server.add_collection("extra", title="An extra collection")
        server.add_collection({**server.collections["extra"], "id": "copy"})
        client = pystac_client.Client.open(server.url)
        found = {c.id: c for c in client.get_collections()}
        assert set(found) == {"CBERS4A_WPM_L4_DN", "extra", "copy"}
        assert found["extra"].title == "An extra collection"
        assert _ids(client.search(collections=["CBERS4A_WPM_L4_DN"])) == [template["id"]]


def test_closing_releases_the_port(tmp_path: Path) -> None:
    server = SampleStacApi(tmp_path).start()
    port = urlsplit(server.url).port
    assert requests.get(server.url, timeout=5).json()["type"] == "Catalog"
    server.faults.delay("/slow", 30)
    with socket.create_connection(("127.0.0.1", port)) as sock:  # a request stuck in a delay
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 5
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=2)


def test_logging_is_quiet(api: SampleStacApi, capfd: pytest.CaptureFixture[str]) -> None:
    requests.get(f"{api.url}nothing", timeout=5)
    requests.get(f"{api.url}", timeout=5)
    assert capfd.readouterr().err == ""


def test_demo_scenes_vary_in_cloud_cover(api: SampleStacApi) -> None:
    landing = requests.get(f"{api.url}", timeout=5).json()
    assert json.dumps(landing).count("/search") == 2
    dates = sorted(i["properties"]["datetime"] for i in api.items.values())
    assert len(set(dates)) == 3
    root = api.root
    assert root is not None and os.path.isdir(root / "CB4A-WPM-L4-DN" / "2021_01")
    covers = []
    for item_id in IDS:
        truth = next(root.rglob(f"{item_id}_truth.tif"))
        with rasterio.open(truth) as ds:
            data = ds.read(1)
        valid = data != 255
        covers.append(float((data[valid] == 4).mean()))
    assert covers[0] == 0.0 and 0.2 < covers[1] < 0.3 and 0.65 < covers[2] < 0.75


def test_fault_rules_exact_times_and_request_log(api: SampleStacApi) -> None:
    href = api.items[IDS[2]]["assets"]["BAND1_xml"]["href"]
    path = _path(href)
    api.faults.fail(path + "-not-this", exact=True)  # exact: no effect on `path`
    api.faults.fail(path, 503, times=2)
    api.faults.delay(path, 0.2, times=1)
    started = time.monotonic()
    statuses = [requests.get(href, timeout=10).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert time.monotonic() - started >= 0.2
    records = [r for r in api.requests if r.path == path][-3:]
    assert [r.status for r in records] == [503, 503, 200]
    assert all(r.method == "GET" for r in records)
    with pytest.raises(ValueError):
        api.faults.fail(path, times=0)


def test_parallel_range_reads(api: SampleStacApi) -> None:
    href = api.items[IDS[1]]["assets"]["BAND2"]["href"]
    full = requests.get(href, timeout=10).content
    step = len(full) // 16

    def fetch(i: int) -> bytes:
        first, last = i * step, i * step + step - 1
        response = requests.get(href, headers={"Range": f"bytes={first}-{last}"}, timeout=10)
        assert response.status_code == 206
        return response.content

    with ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(fetch, range(16)))
    assert b"".join(parts) == full[: 16 * step]


def test_bad_content_length_is_refused(api: SampleStacApi) -> None:
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname or "", url.port or 80), timeout=10) as sock:
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")


def test_unsupported_methods_and_garbage(api: SampleStacApi) -> None:
    assert requests.put(f"{api.url}search", timeout=10).status_code == 501
    assert requests.delete(f"{api.url}data/x", timeout=10).status_code == 501
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname or "", url.port or 80), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert b"400" in sock.recv(4096)  # http.server answers HTTP/0.9 style here
    assert requests.get(api.url, timeout=10).status_code == 200  # still serving
