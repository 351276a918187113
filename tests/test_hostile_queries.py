"""Hostile and malformed queries against `stacmask serve` in its own process: each gets a 4xx
with a short JSON message, and the server stays up (the cql2 parser crashes the whole process
on some inputs, so they must never reach it)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.serve_catalog import Scene
from tests.stac_server import ServedCatalog, serve_process

NESTED = "(" * 2000 + "id = 'a'" + ")" * 2000  # 12 KB: segfaulted cql2
ANDED = " AND ".join(f'"eo:cloud_cover" < {i}' for i in range(20_000))  # 0.5 MB: segfaulted too


@pytest.fixture(scope="module")
def served(mask_catalog: Path) -> Iterator[ServedCatalog]:
    with serve_process(mask_catalog) as server:
        yield server


def _check(answer: requests.Response, status: int, fragment: str) -> None:
    assert answer.status_code == status, answer.text[:300]
    description = answer.json()["description"]
    assert fragment in description, description
    assert len(description) < 600, "the echo of the input is bounded"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"filter": NESTED}, "nested deeper than 40"),
        ({"filter": NESTED, "filter-lang": "cql2-text"}, "nested deeper than 40"),
        ({"filter": 'lte("eo:cloud_cover", 5)'}, "'lte'"),
        ({"filter": "eq(id, 'x')"}, "'eq'"),
        ({"filter": "FOO(id) = 1"}, "'FOO'"),
        ({"filter": "\"eo:cloud_cover\" < '50'"}, "compares a number with a string"),
        ({"datetime": "9999-12-31T23:00:00-05:00"}, "years 1 to 9999"),
        ({"datetime": "0001-01-01T01:00:00+05:00/.."}, "years 1 to 9999"),
        ({"datetime": "99999-01-01T00:00:00Z"}, "RFC 3339"),
        ({"limit": "9" * 40}, "limit"),
        ({"token": "9" * 40}, "token"),
    ],
)
def test_get_gets_400(served: ServedCatalog, params: dict[str, str], fragment: str) -> None:
    _check(requests.get(served.url + "search", params=params, timeout=30), 400, fragment)
    assert served.alive()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"bbox": 5}, "bbox"),
        ({"bbox": "0,0,1,1"}, "bbox"),  # text is the GET form
        ({"bbox": [0, 0, "1", 1]}, "bbox"),
        ({"ids": 5}, "ids"),
        ({"ids": ["x"] * 10_001}, "more than 10000 values"),
        ({"collections": {"a": 1}}, "collections"),
        ({"sortby": 5}, "sortby"),
        ({"sortby": [{"field": 5}]}, "sortby"),
        ({"limit": [1]}, "limit"),
        ({"intersects": "POINT(0 0)"}, "intersects"),
        ({"intersects": {"type": "Point", "coordinates": [0, 0, [1]]}}, "intersects"),
        ({"datetime": 5}, "datetime"),
        ({"datetime": "2021-01-01T00:00:00+24:00"}, "offset"),
        ({"filter": ANDED}, "longer than"),
        ({"filter": 5}, "filter"),
        ({"filter": {"op": "lte", "args": [{"property": "eo:cloud_cover"}, 5]}}, "'lte'"),
        ({"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, "50"]}}, "compares"),
        ({"filter-lang": 5, "filter": "id = 'a'"}, "filter-lang"),
    ],
)
def test_post_gets_400(served: ServedCatalog, body: dict[str, Any], fragment: str) -> None:
    _check(requests.post(served.url + "search", json=body, timeout=30), 400, fragment)
    assert served.alive()


def test_deep_json_gets_400(served: ServedCatalog) -> None:
    for depth in (1_100, 100_000):
        body = "[" * depth + "]" * depth
        answer = requests.post(
            served.url + "search",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 400, answer.text[:200]
    inner = '{"op": "=", "args": [{"property": "id"}, "a"]}'
    deep_filter = '{"op": "not", "args": [' * 300 + inner + "]}" * 300
    answer = requests.post(
        served.url + "search",
        data='{"filter": ' + deep_filter + "}",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    _check(answer, 400, "nested deeper than 40")
    assert served.alive()


def test_overlong_url_and_body(served: ServedCatalog) -> None:
    answer = requests.get(served.url + "search", params={"filter": ANDED[:60_000]}, timeout=30)
    _check(answer, 414, "request target over")
    answer = requests.get(served.url + "collections/" + "x" * 20_000, timeout=30)
    assert answer.status_code == 414
    big = json.dumps({"ids": ["x" * 100] * 20_000})
    answer = requests.post(
        served.url + "search", data=big, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 413
    assert served.alive()
    assert requests.get(served.url, timeout=10).status_code == 200


def test_cli_search_refuses_hostile_filters(mask_catalog: Path, scenes: tuple[Scene, ...]) -> None:
    """`stacmask search --filter` checks the same limits before cql2 parses anything."""
    for text, fragment in [(NESTED, "nested deeper than 40"), (ANDED[:100_000], "longer than")]:
        done = subprocess.run(
            [sys.executable, "-m", "stacmask", "search", str(mask_catalog), "--filter", text],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr[-500:]
        assert fragment in done.stderr
    assert len(scenes) > 0
