"""The source search against hostile STAC APIs on 127.0.0.1 (issue 15, items 3-5; issue 14.6).

Each test fails on the pystac-client search it replaces: the timeout never reached it, a
repeating `next` link was followed forever, duplicate ids came twice, no page size was sent, a
datetime-less item stopped the whole search and a non-JSON page printed a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stacmask.errors import SourceError
from stacmask.pipeline.source_search import PAGE_SIZE, search_items, source_collection
from tests.scripted_http import CONFORMANCE, GEOJSON, Answer, Request, ScriptedServer, landing

COLLECTION = "CB4A-WPM-L4-DN-1"


def feature(item_id: str, **properties: Any) -> dict[str, Any]:
    """A small valid STAC item (no assets: the search does not read them)."""
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Point", "coordinates": [-45.0, -15.0]},
        "bbox": [-45.0, -15.0, -45.0, -15.0],
        "properties": {"datetime": "2021-01-04T13:30:00Z", **properties},
        "links": [],
        "assets": {},
    }


def page(features: list[dict[str, Any]], next_link: dict[str, Any] | None = None) -> Answer:
    links = [] if next_link is None else [{"rel": "next", **next_link}]
    return Answer.json({"type": "FeatureCollection", "features": features, "links": links})


def api(pages: Callable[[str], dict[str, Answer]]) -> ScriptedServer:
    """A server answering the landing page and, for /search, the page named by the request's
    `token` (GET query or POST body), "first" when there is none; 404 for anything else.
    `pages(base_url)` makes the pages (their `next` hrefs are absolute, as the services'
    are)."""

    def answer(request: Request) -> Answer:
        if request.route == "/":
            return Answer.json(landing(server.url))
        if request.route != "/search":
            return Answer.json({"code": "NotFound"}, 404)
        body = request.json() or {}
        token = body.get("token") or (request.query.get("token") or ["first"])[0]
        return pages(server.url)[token]

    server = ScriptedServer(answer)
    return server


def ids(url: str, **kwargs: Any) -> list[str]:
    return [item.id for item in search_items(url, COLLECTION, timeout=5, **kwargs)]


def test_a_page_size_is_sent_and_next_links_are_followed() -> None:
    with api(
        lambda base: {
            "first": page([feature("a"), feature("b")], {"href": f"{base}/search?token=2"}),
            "2": page(
                [feature("c")], {"href": f"{base}/search", "method": "POST", "body": {"token": "3"}}
            ),
            "3": page([feature("d")]),
        }
    ) as server:
        assert ids(server.url + "/") == ["a", "b", "c", "d"]
        first = next(r for r in server.requests if r.route == "/search")
    assert first.method == "POST"
    assert first.json() == {"collections": [COLLECTION], "limit": PAGE_SIZE}


def test_an_api_with_get_search_only_is_searched_by_get() -> None:
    def answer(request: Request) -> Answer:
        if request.route == "/":
            only_get = landing(server.url)
            only_get["links"] = [link for link in only_get["links"] if link["method"] == "GET"]
            return Answer.json(only_get)
        if request.method != "GET":
            return Answer.json({"code": "MethodNotAllowed"}, 405)
        return page([feature("a")])

    with ScriptedServer(answer) as server:
        assert ids(server.url, bbox=[-46, -16, -44, -14]) == ["a"]
        search = next(r for r in server.requests if r.route == "/search")
    assert search.query["collections"] == [COLLECTION]
    assert search.query["bbox"] == ["-46,-16,-44,-14"]
    assert search.query["limit"] == [str(PAGE_SIZE)]


def test_bdc_page_and_merge_paging_keeps_the_filters() -> None:
    """BDC: `next` is a POST whose body {"page": n} is merged into the previous request."""
    bodies: list[dict[str, Any]] = []

    def answer(request: Request) -> Answer:
        if request.route == "/":
            # BDC's landing page: rc.1 conformance, a search link without a method
            bdc = landing(server.url) | {
                "conformsTo": [c.replace("v1.0.0", "v1.0.0-rc.1") for c in CONFORMANCE]
            }
            bdc["links"] = [{"rel": "search", "type": GEOJSON, "href": f"{server.url}/search"}]
            return Answer.json(bdc)
        bodies.append(request.json())
        number = bodies[-1].get("page", 1)
        nxt = {"href": f"{server.url}/search", "method": "POST", "body": {"page": number + 1}}
        return page([feature(f"s{number}")], nxt | {"merge": True} if number < 3 else None)

    with ScriptedServer(answer) as server:
        assert ids(server.url, bbox=[-46, -16, -44, -14]) == ["s1", "s2", "s3"]
    assert [body.get("page") for body in bodies] == [None, 2, 3]
    assert all(body["bbox"] == [-46, -16, -44, -14] for body in bodies)


def test_a_next_link_that_repeats_a_page_ends_the_paging() -> None:
    """The old search followed it forever (347,227 requests in 600 s)."""
    notices: list[str] = []

    def pages(base: str) -> dict[str, Answer]:
        loop = {"href": f"{base}/search", "method": "POST", "body": {"token": "2"}}
        if server.routes().count("/search") > 50:  # bound the old code's endless loop
            return {"2": Answer.json({"code": "stop"}, 400)}
        return {"first": page([feature("a")], loop), "2": page([feature("b")], loop)}

    with api(pages) as server:
        found = ids(server.url, notice=notices.append)
        searches = server.routes().count("/search")
    assert found == ["a", "b"]
    assert searches == 2
    assert len(notices) == 1 and "already read" in notices[0]


def test_a_page_with_nothing_new_ends_the_paging() -> None:
    """A server that hands out new tokens but the same items forever."""
    served = 0

    def answer(request: Request) -> Answer:
        nonlocal served
        if request.route == "/":
            return Answer.json(landing(server.url))
        served += 1
        if served > 50:  # bound the old code's endless loop
            return Answer.json({"code": "stop"}, 400)
        return page([feature("a"), feature("b")], {"href": f"{server.url}/search?token={served}"})

    notices: list[str] = []
    with ScriptedServer(answer) as server:
        assert ids(server.url, notice=notices.append) == ["a", "b"]
    assert served == 2
    assert "no new item" in notices[0]


def test_duplicate_ids_across_pages_come_once() -> None:
    with api(
        lambda base: {
            "first": page([feature("a"), feature("b")], {"href": f"{base}/search?token=2"}),
            "2": page([feature("b"), feature("c")]),
        }
    ) as server:
        assert ids(server.url) == ["a", "b", "c"]


def test_an_item_without_datetime_fails_alone() -> None:
    bad = feature("no-date")
    bad["properties"] = {"datetime": None}
    rejected: list[tuple[str, str]] = []
    with api(lambda base: {"first": page([feature("a"), bad, feature("c")])}) as server:
        found = ids(server.url, rejected=lambda i, why: rejected.append((i, why)))
    assert found == ["a", "c"]
    assert [item_id for item_id, _ in rejected] == ["no-date"]
    assert "datetime" in rejected[0][1]


def test_max_items_and_query_reach_the_search() -> None:
    with api(lambda base: {"first": page([feature("a"), feature("b"), feature("c")])}) as server:
        assert ids(server.url, max_items=2, query={"cbers:data_type": {"eq": "L4"}}) == ["a", "b"]
        body = next(r for r in server.requests if r.route == "/search").json()
    assert body["limit"] == 2
    assert body["query"] == {"cbers:data_type": {"eq": "L4"}}


def test_an_api_without_collections_is_not_crawled() -> None:
    """AWS CBERS: no /collections. The collection record is skipped in one request."""
    with api(lambda base: {"first": page([feature("a")])}) as server:
        assert ids(server.url) == ["a"]
        assert source_collection(server.url, COLLECTION, timeout=5) == {}
        routes = server.routes()
    assert routes == ["/", "/search", f"/collections/{COLLECTION}"]


def test_a_page_that_is_not_a_feature_collection_is_one_clear_error() -> None:
    not_a_page = Answer.json({"type": "Catalog", "links": []})
    with api(lambda base: {"first": not_a_page}) as server, pytest.raises(SourceError) as error:
        ids(server.url)
    assert "not an item search page" in str(error.value)


def _build(url: str, out: Path, timeout: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stacmask", "build", "--out", str(out), "--quiet"]
    return subprocess.run(
        [*command, "--stac-url", url, "--timeout", timeout],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_timeout_reaches_a_search_that_never_answers(tmp_path: Path) -> None:
    """The old search took 123 s at --timeout 5, and hung forever on a silent server."""

    def answer(request: Request) -> Answer:
        if request.route == "/":
            return Answer.json(landing(server.url))
        return Answer.json({}, 200) if request.route != "/search" else Answer(delay=600)

    with ScriptedServer(answer) as server:
        started = time.monotonic()
        result = _build(server.url, tmp_path / "cat", "2")
        took = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "no answer within 2 s" in result.stderr + result.stdout
    assert took < 30  # python start-up and imports included; the search itself waits 2 s


def test_a_non_json_search_answer_is_a_one_line_error(tmp_path: Path) -> None:
    """The old search printed a 105-line traceback."""
    html = b"<html><body>502 Bad Gateway (nginx)</body></html>"

    def answer(request: Request) -> Answer:
        if request.route == "/":
            return Answer.json(landing(server.url))
        return Answer(200, html, {"Content-Type": "text/html"})

    with ScriptedServer(answer) as server:
        result = _build(server.url, tmp_path / "cat", "5")
    output = result.stderr + result.stdout
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "answer is not JSON (starts with '<html><body>502 Bad Gateway" in output
    errors = [line for line in output.splitlines() if "not JSON" in line]
    assert len(errors) == 1
