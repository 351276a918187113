"""`stacmask serve`: the STAC API and static files, queried over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from pystac_client import Client
from typer.testing import CliRunner

from stacmask.cli import app
from stacmask.serve.server import CONFORMANCE, create_app
from tests.conftest import ServerThread
from tests.serve_catalog import COLLECTION_ID, Scene

RECIPE_FILTER = '"cbers:path" = 221 AND "eo:cloud_cover" < 15'


def cli_ids(catalog: Path, *args: str) -> list[str]:
    """Item ids printed by `stacmask search CATALOG ARGS`."""
    result = CliRunner().invoke(app, ["search", str(catalog), *args])
    assert result.exit_code == 0, result.output
    return result.output.split()


def raw_get(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """One request with the target sent byte for byte (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --- the STAC API with pystac-client -----------------------------------------------------------
@pytest.fixture(scope="module")
def client(api_server: ServerThread) -> Client:
    return Client.open(api_server.url + "/")


def test_landing_conformance_and_collections(
    client: Client, api_server: ServerThread, scenes: tuple[Scene, ...]
) -> None:
    landing = requests.get(api_server.url + "/", timeout=10).json()
    assert landing["type"] == "Catalog"
    assert landing["conformsTo"] == list(CONFORMANCE)
    conformance = requests.get(api_server.url + "/conformance", timeout=10).json()
    assert conformance["conformsTo"] == list(CONFORMANCE)
    for name in ("core", "item_search", "filter", "sort", "collections", "features"):
        assert client.conforms_to(name)
    assert not client.conforms_to("query") and not client.conforms_to("fields")
    assert [c.id for c in client.get_collections()] == [COLLECTION_ID]
    items = list(client.get_collection(COLLECTION_ID).get_items())
    assert sorted(item.id for item in items) == sorted(scene.id for scene in scenes)


def _searches(scenes: tuple[Scene, ...]) -> list[tuple[dict[str, Any], list[str]]]:
    """Pairs of (pystac-client search keywords, the same query as `stacmask search` options)."""
    shadow = sorted(s.shadow for s in scenes)[len(scenes) // 2]
    shadow_json = {"op": "<=", "args": [{"property": "stacmask:shadow_cover"}, shadow]}
    west, south, east, north = next(s for s in scenes if s.path == 222).bbox
    point = {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]}
    box = [west - 0.01, south - 0.01, east + 0.01, north + 0.01]
    return [
        (
            {
                "filter": RECIPE_FILTER,
                "datetime": "2021-01-01/2021-01-31",
                "sortby": "+eo:cloud_cover",
            },
            [
                "--filter",
                RECIPE_FILTER,
                "--datetime",
                "2021-01-01/2021-01-31",
                "--sortby",
                "+eo:cloud_cover",
            ],
        ),
        ({"filter": shadow_json}, ["--filter", json.dumps(shadow_json)]),
        ({"bbox": box}, ["--bbox", ",".join(map(str, box))]),
        (
            {"datetime": "2021-01-06T00:00:00Z/..", "sortby": "-stacmask:water_cover"},
            ["--datetime", "2021-01-06T00:00:00Z/..", "--sortby", "-stacmask:water_cover"],
        ),
        (
            {"sortby": [{"field": "eo:cloud_cover", "direction": "desc"}]},
            ["--sortby", "-eo:cloud_cover"],
        ),
        ({"intersects": point}, ["--intersects", json.dumps(point)]),
        ({"ids": [scenes[0].id, scenes[3].id]}, ["--ids", f"{scenes[0].id},{scenes[3].id}"]),
        ({}, []),
    ]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("case", range(8))
def test_pystac_client_matches_stacmask_search(
    client: Client, mask_catalog: Path, scenes: tuple[Scene, ...], method: str, case: int
) -> None:
    search, cli = _searches(scenes)[case]
    # limit=2 makes pystac-client walk several pages through the `next` links.
    found = [item.id for item in client.search(method=method, limit=2, **search).items()]
    expected = cli_ids(mask_catalog, *cli)
    assert found == expected
    assert expected, "a query that finds nothing proves little"
    if search and "sortby" not in search:
        assert len(expected) < len(scenes), "a filter that keeps everything proves little"


def test_recipe_gives_least_cloudy_january_scenes_of_path_221(
    client: Client, scenes: tuple[Scene, ...]
) -> None:
    items = list(
        client.search(
            filter=RECIPE_FILTER, datetime="2021-01", sortby="+eo:cloud_cover", max_items=10
        ).items()
    )
    wanted = [s for s in scenes if s.path == 221 and s.date[:7] == "2021-01" and s.cloud < 15]
    assert [item.id for item in items] == [s.id for s in sorted(wanted, key=lambda s: s.cloud)]
    clouds = [item.properties["eo:cloud_cover"] for item in items]
    assert clouds == sorted(clouds) and len(items) >= 2
    assert {item.properties["cbers:path"] for item in items} == {221}


def test_paging_links_and_counts(api_server: ServerThread, scenes: tuple[Scene, ...]) -> None:
    page = requests.get(api_server.url + "/search", params={"limit": 4}, timeout=10).json()
    assert page["numberMatched"] == len(scenes) and page["numberReturned"] == 4
    nxt = next(link for link in page["links"] if link["rel"] == "next")
    second = requests.get(nxt["href"], timeout=10).json()
    assert second["numberReturned"] == len(scenes) - 4
    assert not [link for link in second["links"] if link["rel"] == "next"]
    first_ids = {f["id"] for f in page["features"]}
    assert first_ids.isdisjoint(f["id"] for f in second["features"])
    body = {"limit": 5, "filter": "eo:cloud_cover >= 0", "filter-lang": "cql2-text"}
    post = requests.post(api_server.url + "/search", json=body, timeout=10).json()
    link = next(link for link in post["links"] if link["rel"] == "next")
    assert link["method"] == "POST" and link["body"]["filter"] == body["filter"]


def test_item_links_and_assets_are_served(
    api_server: ServerThread, mask_catalog: Path, scenes: tuple[Scene, ...]
) -> None:
    scene = scenes[1]
    url = f"{api_server.url}/collections/{COLLECTION_ID}/items/{scene.id}"
    item = requests.get(url, timeout=10).json()
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["self"] == url
    assert links["collection"] == f"{api_server.url}/collections/{COLLECTION_ID}"
    assert links["derived_from"].startswith("http://127.0.0.1:")  # the source API
    mask_url = item["assets"]["mask"]["href"]
    assert mask_url.startswith(api_server.url + "/catalog/")
    local = mask_catalog / COLLECTION_ID / scene.id / f"{scene.id}_mask.tif"
    whole = requests.get(mask_url, timeout=10)
    assert whole.status_code == 200 and whole.content == local.read_bytes()
    # A COG reader asks for byte ranges.
    part = requests.get(mask_url, headers={"Range": "bytes=0-15"}, timeout=10)
    assert part.status_code == 206
    assert part.content == local.read_bytes()[:16]
    assert part.headers["content-range"] == f"bytes 0-15/{local.stat().st_size}"
    preview = requests.get(item["assets"]["thumbnail"]["href"], timeout=10)
    assert preview.status_code == 200 and preview.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert requests.get(f"{url}-nope", timeout=10).status_code == 404


def test_rasterio_reads_the_served_cog(
    api_server: ServerThread, mask_catalog: Path, scenes: tuple[Scene, ...]
) -> None:
    """GDAL's /vsicurl reads the COG over HTTP (range requests) to the same pixels."""
    scene = scenes[2]
    rel = f"{COLLECTION_ID}/{scene.id}/{scene.id}_mask.tif"
    # In another process: rasterio holds the GIL while GDAL fetches, which would block the
    # server thread of this process.
    script = (
        "import sys, hashlib, rasterio\n"
        "with rasterio.open(sys.argv[1]) as src:\n"
        "    print(hashlib.sha256(src.read(1).tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "NO_PROXY": "127.0.0.1"}
    remote = subprocess.run(
        [sys.executable, "-c", script, f"{api_server.url}/catalog/{rel}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    local = subprocess.run(
        [sys.executable, "-c", script, str(mask_catalog / rel)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert remote.stdout == local.stdout and len(remote.stdout.strip()) == 64


def test_cors_for_browsers(api_server: ServerThread) -> None:
    origin = {"Origin": "http://localhost:9999"}
    answer = requests.get(api_server.url + "/catalog/catalog.json", headers=origin, timeout=10)
    assert answer.headers["access-control-allow-origin"] == "*"
    preflight = requests.options(
        api_server.url + "/search",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_queryables_list_item_properties(api_server: ServerThread) -> None:
    doc = requests.get(api_server.url + "/queryables", timeout=10).json()
    props = doc["properties"]
    assert props["eo:cloud_cover"]["type"] == "number"
    assert props["stacmask:shadow_cover"]["type"] == "number"
    assert props["stacmask:water_cover"]["type"] == "number"
    per_collection = f"{api_server.url}/collections/{COLLECTION_ID}/queryables"
    assert requests.get(per_collection, timeout=10).json()["properties"] == props


# --- safety ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "fragment"),
    [
        ("/search", {"bbox": "1,2,3"}, "bbox"),
        (
            "/search",
            {"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'},
            "together",
        ),
        ("/search", {"datetime": "2021-13-45"}, "datetime"),
        ("/search", {"filter": "eo:cloud_cover <<< 3"}, "CQL2"),
        ("/search", {"filter": "{not json", "filter-lang": "cql2-json"}, "CQL2"),
        ("/search", {"filter": "\"eo:cloud_cover\" < '50'"}, "compares a number with a string"),
        ("/search", {"filter": 'lte("eo:cloud_cover", 5)'}, "unknown operator or function 'lte'"),
        ("/search", {"sortby": "-geometry"}, "cannot sort"),
        ("/search", {"limit": "-3"}, "limit"),
        ("/search", {"token": "abc"}, "token"),
        ("/search", {"query": "{}"}, "unsupported"),
        ("/search", {"fields": "id"}, "unsupported"),
        (f"/collections/{COLLECTION_ID}/items", {"datetime": "soon"}, "datetime"),
    ],
)
def test_bad_queries_get_400_with_a_message(
    api_server: ServerThread, path: str, params: dict[str, str], fragment: str
) -> None:
    answer = requests.get(api_server.url + path, params=params, timeout=10)
    assert answer.status_code == 400
    assert fragment in answer.json()["description"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps({"bbox": [0, 0, 1]}).encode(),
        json.dumps({"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}]}}).encode(),
        json.dumps({"sortby": [{"field": "eo:cloud_cover", "direction": "up"}]}).encode(),
        json.dumps({"query": {"eo:cloud_cover": {"lt": 5}}}).encode(),
    ],
)
def test_bad_post_bodies_get_400(api_server: ServerThread, body: bytes) -> None:
    answer = requests.post(
        api_server.url + "/search",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["description"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/collections",
        f"/collections/{COLLECTION_ID}/items",
        "/catalog/catalog.json",
        "/conformance",
    ],
)
def test_read_only(api_server: ServerThread, method: str, path: str) -> None:
    answer = requests.request(method, api_server.url + path, json={}, timeout=10)
    assert answer.status_code == 405


@pytest.fixture(scope="module")
def trap_server(mask_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A catalog whose folder holds symlinks that lead out of it, and a secret beside it."""
    root = tmp_path_factory.mktemp("trap")
    secret = root / "secret.txt"
    secret.write_text("TOP-SECRET")
    (root / "secrets").mkdir()
    (root / "secrets" / "key.txt").write_text("TOP-SECRET")
    catalog = root / "catalog"
    catalog.mkdir()
    empty = {
        "type": "Catalog",
        "id": "trap",
        "stac_version": "1.1.0",
        "description": "x",
        "links": [],
    }
    (catalog / "catalog.json").write_text(json.dumps(empty))
    (catalog / "link.txt").symlink_to(secret)
    (catalog / "linkdir").symlink_to(root / "secrets", target_is_directory=True)
    (catalog / ".hidden").write_text("TOP-SECRET")
    (catalog / "inside.txt").write_text("fine")
    with ServerThread(create_app(catalog, browser_dir=root / "none")) as server:
        yield server


@pytest.mark.parametrize(
    "target",
    [
        "/catalog/../secret.txt",
        "/catalog/%2e%2e/secret.txt",
        "/catalog/%2E%2E%2Fsecret.txt",
        "/catalog/..%2fsecret.txt",
        "/catalog/..%5csecret.txt",
        "/catalog/%252e%252e/secret.txt",
        "/catalog//" + "etc/passwd",
        "/catalog/%2Fetc%2Fpasswd",
        "/catalog/" + os.fspath(Path("/etc/passwd")),
        "/catalog/link.txt",
        "/catalog/linkdir/key.txt",
        "/catalog/.hidden",
        "/catalog/inside.txt/../../secret.txt",
        "/../secret.txt",
        "/catalog/..;/secret.txt",
        "http://127.0.0.1/catalog/../secret.txt",
    ],
)
def test_no_path_outside_the_catalog(trap_server: ServerThread, target: str) -> None:
    status, body = raw_get(trap_server.port, target)
    assert b"TOP-SECRET" not in body and b"root:" not in body
    assert status in (400, 404)


def test_files_inside_are_served(trap_server: ServerThread) -> None:
    assert raw_get(trap_server.port, "/catalog/inside.txt") == (200, b"fine")


def test_missing_browser_build_says_how_to_build(trap_server: ServerThread) -> None:
    status, body = raw_get(trap_server.port, "/browser/")
    assert status == 404 and b"stacmask browser build" in body


def test_200_concurrent_requests(api_server: ServerThread, scenes: tuple[Scene, ...]) -> None:
    """200 clients at once, each on its own connection: every answer is complete and right."""
    mask = f"/catalog/{COLLECTION_ID}/{scenes[0].id}/{scenes[0].id}_mask.tif"
    targets = ["/search?limit=3&sortby=-eo:cloud_cover", mask, "/collections", "/conformance"]

    ready = threading.Barrier(200)

    def fetch(number: int) -> tuple[int, int]:
        target = targets[number % len(targets)]
        connection = http.client.HTTPConnection("127.0.0.1", api_server.port, timeout=60)
        try:
            connection.connect()
            ready.wait(timeout=60)  # all 200 connections open before any request is sent
            connection.request("GET", target)
            response = connection.getresponse()
            return response.status, len(response.read())
        finally:
            connection.close()

    sizes: dict[int, set[int]] = {}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(fetch, range(200)))
    elapsed = time.monotonic() - started
    for number, (status, size) in enumerate(results):
        assert status == 200
        sizes.setdefault(number % len(targets), set()).add(size)
    assert all(len(found) == 1 for found in sizes.values())  # identical answers per target
    assert requests.get(api_server.url + "/", timeout=10).status_code == 200
    print(f"200 concurrent requests answered in {elapsed:.2f} s")


def test_cli_serve_binds_loopback_by_default(mask_catalog: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "stacmask", "serve", str(mask_catalog), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "stacmask serve did not start"
                time.sleep(0.2)
        assert answer.json()["conformsTo"] == list(CONFORMANCE)
        listening = _listening_addresses(port)
        assert listening == {"127.0.0.1"}, listening
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in output


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on `port` (from /proc/net)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            if len(address) == 8:
                found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
            else:
                found.add(address)
    return found


def test_a_demo_catalog_is_served_and_searched(tmp_path: Path) -> None:
    """`stacmask demo` output (synthetic scenes with XML) works with serve and search alike."""
    from stacmask.demo.run import run_demo

    out = tmp_path / "demo"
    report = run_demo(out, scenes=4, size=256, echo=lambda _: None, progress=False)
    assert report.ok and len(report.done) == 4
    with ServerThread(create_app(out)) as server:
        client = Client.open(server.url + "/")
        query = {"filter": '"cbers:path" = 221', "sortby": "+eo:cloud_cover"}
        found = [item.id for item in client.search(**query).items()]
        assert found == cli_ids(out, "--filter", query["filter"], "--sortby", query["sortby"])
        assert found and all("_221_" in item_id for item_id in found)
        item = next(client.search(ids=found[:1]).items())
        assert item.properties["view:sun_elevation"] is not None
        mask = requests.get(item.assets["mask"].href, headers={"Range": "bytes=0-3"}, timeout=10)
        assert mask.status_code == 206 and mask.content in (b"II*\x00", b"MM\x00*")
        # The source scene stays reachable: the demo's source catalog is served beside the masks.
        source_href = next(link.href for link in item.links if link.rel == "derived_from")
        assert source_href.startswith(server.url + "/catalog/source/")
        source = requests.get(source_href, timeout=10).json()
        assert source["id"] == item.id and source["properties"]["path"] == "221"  # BDC-style
        band = requests.get(urljoin(source_href, source["assets"]["BAND1"]["href"]), timeout=10)
        assert band.status_code == 200 and band.content[:2] in (b"II", b"MM")
    assert not (out / "source" / "catalog.json").read_text().count("127.0.0.1")


CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"


def _cql2_examples(catalog: Path, scenes: tuple[Scene, ...]) -> list[tuple[str, str, set[str]]]:
    """(declared CQL2 class, filter, ids it must select), computed from the items' JSON."""

    def origin(scene: Scene) -> float:
        item = json.loads((catalog / COLLECTION_ID / scene.id / f"{scene.id}.json").read_text())
        return float(item["properties"]["proj:transform"][2])

    west, south, east, north = next(s for s in scenes if s.path == 222).bbox
    x, y = (west + east) / 2, (south + north) / 2
    w, s_, e, n = west - 0.01, south - 0.01, east + 0.01, north + 0.01
    far = f"POLYGON(({w} {s_}, {e} {s_}, {e} {n}, {w} {n}, {w} {s_}))"
    path_222 = {s.id for s in scenes if s.path == 222}
    clouds = sorted(s.cloud for s in scenes)
    low, high = clouds[1], clouds[3]

    def ids(predicate: Any) -> set[str]:
        return {s.id for s in scenes if predicate(s)}

    return [
        (
            "basic-cql2",
            f'"eo:cloud_cover" < {high} AND NOT "cbers:row" = 121',
            ids(lambda s: s.cloud < high and s.row != 121),
        ),
        (
            "advanced-comparison-operators",
            f'"eo:cloud_cover" BETWEEN {low} AND {high}',
            ids(lambda s: low <= s.cloud <= high),
        ),
        (
            "advanced-comparison-operators",
            "id LIKE 'CBERS\\_4A\\_WPM\\_2021%'",
            ids(lambda s: s.date[:4] == "2021"),
        ),
        (
            "advanced-comparison-operators",
            '"cbers:row" IN (121, 122)',
            ids(lambda s: s.row in (121, 122)),
        ),
        (
            "basic-spatial-functions",
            f"S_INTERSECTS(geometry, BBOX({west}, {south}, {east}, {north}))",
            path_222,
        ),
        (
            "basic-spatial-functions-plus-points",
            f"S_INTERSECTS(geometry, POINT({x} {y}))",
            path_222,
        ),
        ("spatial-functions", f"S_WITHIN(geometry, {far})", path_222),
        ("spatial-functions", f"S_CONTAINS(geometry, POINT({x} {y}))", path_222),
        (
            "temporal-functions",
            "T_BEFORE(datetime, TIMESTAMP('2021-01-01T00:00:00Z'))",
            ids(lambda s: s.date < "2021"),
        ),
        (
            "temporal-functions",
            "T_DURING(INTERVAL(start_datetime, end_datetime), "
            "INTERVAL('2021-01-01T00:00:00Z', '2021-01-31T00:00:00Z'))",
            ids(lambda s: s.date[:7] == "2021-01"),
        ),
        ("arithmetic", f'"eo:cloud_cover" * 2 < {2 * high}', ids(lambda s: s.cloud < high)),
        (
            "property-property",
            '"stacmask:shadow_cover" > "eo:cloud_cover"',
            ids(lambda s: s.shadow > s.cloud),
        ),
        ("cql2-text", f'"eo:cloud_cover" <= {low}', ids(lambda s: s.cloud <= low)),
        (
            "cql2-json",
            json.dumps({"op": "<=", "args": [{"property": "eo:cloud_cover"}, low]}),
            ids(lambda s: s.cloud <= low),
        ),
        (
            "case-insensitive-comparison",
            "CASEI(id) LIKE casei('cbers\\_4a\\_wpm\\_2021%')",
            ids(lambda s: s.date[:4] == "2021"),
        ),
        (
            "accent-insensitive-comparison",
            "ACCENTI(id) LIKE ACCENTI('CBËRS\\_4A\\_WPM\\_2020%')",
            ids(lambda s: s.date[:4] == "2020"),
        ),
        (
            "array-functions",
            f'A_OVERLAPS("proj:transform", ({origin(scenes[0])}, {origin(scenes[3])}))',
            {s.id for s in scenes if origin(s) in (origin(scenes[0]), origin(scenes[3]))},
        ),
    ]


def test_every_declared_cql2_class_works(
    client: Client, mask_catalog: Path, scenes: tuple[Scene, ...]
) -> None:
    """Each CQL2 conformance class in /conformance has an example that selects the right items."""
    examples = _cql2_examples(mask_catalog, scenes)
    declared = {c.removeprefix(CQL2) for c in CONFORMANCE if c.startswith(CQL2)}
    assert declared == {name for name, _, _ in examples}
    for name, text, expected in examples:
        assert expected and len(expected) < len(scenes), f"{name}: a weak example {text}"
        method = "POST" if text.startswith("{") else "GET"
        query = json.loads(text) if method == "POST" else text
        found = {item.id for item in client.search(method=method, filter=query).items()}
        assert found == expected, f"{name}: {text}"


def test_a_rebuilt_item_is_served_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages are joined from rendered items kept between requests: an item a build redoes
    (its file and its collection rewritten) is served with its new content."""
    from stacmask.catalog import index as index_module
    from tests.synthetic_catalog import COLLECTION, link_items, synthetic_item, write_catalog

    monkeypatch.setattr(index_module, "CHECK_INTERVAL", 0.0)
    root = write_catalog(tmp_path / "cat", 12)
    redone = synthetic_item(5)
    with ServerThread(create_app(root)) as server:

        def cover() -> float:
            page = requests.get(f"{server.url}/search", params={"limit": 20}, timeout=10).json()
            found = [f for f in page["features"] if f["id"] == redone["id"]]
            assert len(found) == 1 and len(page["features"]) == 12
            return float(found[0]["properties"]["eo:cloud_cover"])

        before = cover()
        assert cover() == before  # served from the kept rendering
        redone["properties"]["eo:cloud_cover"] = 77.25
        path = root / COLLECTION / redone["id"] / f"{redone['id']}.json"
        path.write_text(json.dumps(redone))
        link_items(root, [synthetic_item(n)["id"] for n in range(12)])  # collection rewritten
        deadline = time.monotonic() + 30
        while cover() != 77.25:
            assert time.monotonic() < deadline, "the redone item was not served anew"
            time.sleep(0.05)


def test_range_reads_of_kept_and_big_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files are answered from memory, big ones from the file: the same bytes and
    headers either way, every kind of single range, 416 past the end, several ranges, and a
    file rewritten in place is served anew."""
    from stacmask.serve import files
    from tests.synthetic_catalog import write_catalog

    root = write_catalog(tmp_path / "cat", 3)
    small, big = root / "small.bin", root / "big.bin"
    small.write_bytes(os.urandom(300_000))
    big.write_bytes(os.urandom(400_000))
    monkeypatch.setattr(files, "FILE_MAX_BYTES", 350_000)  # big.bin is served from its file
    app = create_app(root)
    with ServerThread(app) as server:
        for path in (small, big):
            url = f"{server.url}/catalog/{path.name}"
            data = path.read_bytes()
            whole = requests.get(url, timeout=10)
            assert whole.status_code == 200 and whole.content == data
            assert whole.headers["accept-ranges"] == "bytes" and whole.headers["etag"]
            for wanted, start, end in [
                ("bytes=1000-1999", 1000, 1999),
                ("bytes=299000-", 299_000, len(data) - 1),
                ("bytes=-500", len(data) - 500, len(data) - 1),
                ("bytes=0-99999999", 0, len(data) - 1),
            ]:
                part = requests.get(url, headers={"Range": wanted}, timeout=10)
                assert part.status_code == 206, (path.name, wanted)
                assert part.content == data[start : end + 1], (path.name, wanted)
                assert part.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
            past = requests.get(url, headers={"Range": "bytes=500000-"}, timeout=10)
            assert past.status_code == 416
            assert past.headers["content-range"] == f"bytes */{len(data)}"
            several = requests.get(url, headers={"Range": "bytes=0-9,20-29"}, timeout=10)
            assert several.status_code == 206
            assert several.headers["content-type"].startswith("multipart/byteranges")
            etag = whole.headers["etag"]
            again = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
            assert again.status_code == 304
        changed = os.urandom(300_000)
        small.write_bytes(changed)
        os.utime(small, ns=(time.time_ns(), time.time_ns() + 10**9))
        fresh = requests.get(f"{server.url}/catalog/small.bin", timeout=10)
        assert fresh.content == changed
    kept = {key[0] for key in _file_cache(app).entries}
    assert str(small.resolve()) in kept and str(big.resolve()) not in kept


def _file_cache(app: Any) -> Any:
    """The FileCache of an app's /catalog mount."""
    from stacmask.serve.files import CatalogFiles

    mounts = [
        route.app for route in app.routes if isinstance(getattr(route, "app", None), CatalogFiles)
    ]
    return mounts[0].cache
