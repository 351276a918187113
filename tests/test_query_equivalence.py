"""Every query form gives the same items: the index's SQL (GET and POST on `stacmask serve`,
`stacmask search`) against the `cql2` package evaluating the filter item by item over the JSON.

The cases cover the CQL2 the server accepts: comparisons of each property kind, LIKE, BETWEEN,
IN, IS NULL, NOT/AND/OR with properties no item has (three-valued logic), CASEI, ACCENTI,
arithmetic, property-property comparisons, the spatial, temporal and array functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cql2
import pytest
import requests
from typer.testing import CliRunner

from stacmask.catalog.index import CatalogIndex
from stacmask.cli import app
from stacmask.serve.params import build_search
from stacmask.serve.query import select
from stacmask.serve.server import create_app
from tests.conftest import ServerThread
from tests.synthetic_catalog import synthetic_item, write_catalog

COUNT = 400
T0 = "2020-01-01T13:30:00Z"
T3 = "2020-01-01T13:33:00Z"
T6 = "2020-01-01T13:36:00Z"
T3_10 = "2020-01-01T13:33:10Z"
T3_14 = "2020-01-01T13:33:14Z"
ONE = synthetic_item(41)
RING = ONE["geometry"]["coordinates"][0]
X, Y = (RING[0][0] + RING[2][0]) / 2, (RING[0][1] + RING[2][1]) / 2
POLYGON = "POLYGON((-60 -12, -50 -12, -50 -6, -60 -6, -60 -12))"
BIG = "POLYGON((-75 -20, -30 -20, -30 0, -75 0, -75 -20))"
WKT_ONE = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in RING) + "))"

CASES: list[str] = [
    *(f'"eo:cloud_cover" {op} 50' for op in ("=", "<>", "<", "<=", ">", ">=")),
    '"eo:cloud_cover" = 11.01',
    '"cbers:path" = 210',
    '"cbers:path" <> 210',
    '"cbers:path" < 205',
    '"cbers:path" >= 235',
    "\"stacmask:method\" = 'notebook'",
    "\"stacmask:method\" <> 'notebook'",
    "id < 'CBERS_4A_WPM_20200101_210'",
    "collection = 'CB4A-WPM-L4-DN-1-mask'",
    '"stacmask:band_mismatch" = true',
    '"stacmask:band_mismatch" = false',
    "id LIKE 'CBERS\\_4A\\_WPM\\_20200101\\_21%'",
    "id LIKE '%\\_00001%'",
    "NOT id LIKE '%5'",
    "\"stacmask:method\" LIKE 'phys_cal'",
    "\"stacmask:method\" LIKE 'PHYS%'",
    '"eo:cloud_cover" BETWEEN 10 AND 20',
    '"eo:cloud_cover" NOT BETWEEN 10 AND 20',
    '"cbers:row" BETWEEN 102 AND 104',
    '"cbers:path" IN (200, 201, 239)',
    "\"stacmask:method\" IN ('notebook', 'other')",
    f"id IN ('nope', '{ONE['id']}')",
    'NOT "cbers:row" IN (100, 101)',
    '"no:such" IS NULL',
    '"eo:cloud_cover" IS NULL',
    'NOT "eo:cloud_cover" IS NULL',
    '"no:such" = 1 OR "cbers:path" = 200',
    '"no:such" = 1 AND "cbers:path" = 200',
    'NOT "no:such" = 1',
    '"no:such" <> 1',
    '"no:such" < 1 OR NOT "cbers:path" = 200',
    '"eo:cloud_cover" < 30 AND "cbers:path" > 220',
    '"eo:cloud_cover" < 10 OR "eo:cloud_cover" > 90',
    'NOT ("eo:cloud_cover" < 50 AND "cbers:row" = 101)',
    '("cbers:path" = 200 OR "cbers:path" = 201) AND NOT "stacmask:band_mismatch" = true',
    "CASEI(\"stacmask:method\") = casei('NOTEBOOK')",
    "CASEI(id) LIKE casei('cbers%_0000%')",
    "ACCENTI(\"stacmask:method\") = accenti('nötebook')",
    "ACCENTI(platform) = 'CBERS-4A'",
    '"eo:cloud_cover" * 2 < 50',
    '"eo:cloud_cover" + "stacmask:water_cover" > 60',
    '"eo:cloud_cover" - 10 >= 5',
    '"eo:cloud_cover" / 4 < 5',
    '"cbers:path" % 2 = 0',
    '"cbers:path" div 7 = 30',
    '"eo:cloud_cover" ^ 2 < 100',
    '"cbers:row" * -1 > -103',
    '"stacmask:shadow_cover" > "stacmask:water_cover"',
    '"view:sun_elevation" < "view:sun_azimuth"',
    '"cbers:path" = "cbers:row" + 100',
    "S_INTERSECTS(geometry, BBOX(-60, -12, -50, -6))",
    f"S_INTERSECTS(geometry, POINT({X} {Y}))",
    f"S_INTERSECTS(geometry, {POLYGON})",
    f"S_WITHIN(geometry, {BIG})",
    f"S_WITHIN(geometry, {POLYGON})",
    f"S_CONTAINS(geometry, POINT({X} {Y}))",
    "S_DISJOINT(geometry, BBOX(-60, -12, -50, -6))",
    f"S_OVERLAPS(geometry, {POLYGON})",
    "S_CROSSES(geometry, LINESTRING(-65 -8, -40 -8))",
    f"S_EQUALS(geometry, {WKT_ONE})",
    f"datetime > TIMESTAMP('{T3}')",
    f"datetime = TIMESTAMP('{T3}')",
    f"datetime <= TIMESTAMP('{T3}')",
    f"created < TIMESTAMP('{T3}')",
    f"T_BEFORE(datetime, TIMESTAMP('{T3}'))",
    f"T_AFTER(datetime, TIMESTAMP('{T3}'))",
    f"T_EQUALS(datetime, TIMESTAMP('{T3}'))",
    f"T_INTERSECTS(datetime, INTERVAL('{T0}', '{T3}'))",
    f"T_DURING(datetime, INTERVAL('{T0}', '{T6}'))",
    f"T_DISJOINT(datetime, INTERVAL('{T3}', '{T6}'))",
    f"T_DURING(INTERVAL(start_datetime, end_datetime), INTERVAL('{T0}', '{T6}'))",
    f"T_CONTAINS(INTERVAL(start_datetime, end_datetime), TIMESTAMP('{T3}'))",
    f"T_OVERLAPS(INTERVAL(start_datetime, end_datetime), INTERVAL('{T3_10}', '{T6}'))",
    f"T_OVERLAPPEDBY(INTERVAL(start_datetime, end_datetime), INTERVAL('{T0}', '{T3_10}'))",
    f"T_STARTS(INTERVAL(start_datetime, end_datetime), INTERVAL('{T3}', '{T6}'))",
    f"T_STARTEDBY(INTERVAL('{T3}', '{T6}'), INTERVAL(start_datetime, end_datetime))",
    f"T_FINISHES(INTERVAL(start_datetime, end_datetime), INTERVAL('{T3}', '{T3_14}'))",
    f"T_MEETS(INTERVAL(start_datetime, end_datetime), INTERVAL('{T3_14}', '{T6}'))",
    f"T_METBY(INTERVAL('{T3_14}', '{T6}'), INTERVAL(start_datetime, end_datetime))",
    f"T_INTERSECTS(INTERVAL(start_datetime, end_datetime), INTERVAL('{T6}', '..'))",
    f"T_INTERSECTS(datetime, INTERVAL('..', '{T3}'))",
    "A_CONTAINS(instruments, ('WPM'))",
    "A_EQUALS(instruments, ('WPM'))",
    "A_OVERLAPS(instruments, ('WPM', 'MUX'))",
    "A_CONTAINEDBY(instruments, ('WPM', 'MUX'))",
    "A_CONTAINS(instruments, ('MUX'))",
    json.dumps({"op": "<", "args": [{"property": "properties.eo:cloud_cover"}, 25]}),
    json.dumps({"op": "between", "args": [{"property": "cbers:row"}, [101, 103]]}),
    json.dumps({"op": "and", "args": [{"op": "=", "args": [{"property": "cbers:path"}, 222]}]}),
    json.dumps(
        {
            "op": "s_intersects",
            "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [X, Y]}],
        }
    ),
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("equivalence") / "cat", COUNT)


@pytest.fixture(scope="module")
def items(catalog: Path) -> list[dict[str, Any]]:
    return [synthetic_item(number) for number in range(COUNT)]


@pytest.fixture(scope="module")
def index(catalog: Path) -> CatalogIndex:
    return CatalogIndex(catalog)


@pytest.fixture(scope="module")
def server(catalog: Path) -> Iterator[ServerThread]:
    with ServerThread(create_app(catalog)) as running:
        yield running


def reference(text: str, items: list[dict[str, Any]]) -> set[str]:
    """The items the cql2 package itself matches, one JSON item at a time."""
    raw = json.loads(text) if text.startswith("{") else None
    if raw is not None and raw.get("op") == "between" and isinstance(raw["args"][1], list):
        raw = {"op": "between", "args": [raw["args"][0], *raw["args"][1]]}
    if raw is not None and raw.get("op") == "and" and len(raw["args"]) == 1:
        raw = raw["args"][0]
    expr = cql2.parse_json(json.dumps(raw)) if raw is not None else cql2.parse_text(text)
    found = set()
    for item in items:
        try:
            if expr.matches(item):
                found.add(item["id"])
        except Exception:  # cql2 raises when it cannot decide: not a match
            continue
    return found


def test_the_cases_are_many_and_telling(items: list[dict[str, Any]]) -> None:
    assert len(CASES) >= 91
    sizes = [len(reference(case, items)) for case in CASES]
    assert sum(0 < size < COUNT for size in sizes) >= 70, "most cases must split the items"


@pytest.mark.parametrize("case", range(len(CASES)))
def test_index_get_post_and_cli_match_cql2_over_the_json(
    case: int,
    catalog: Path,
    items: list[dict[str, Any]],
    index: CatalogIndex,
    server: ServerThread,
) -> None:
    text = CASES[case]
    expected = reference(text, items)
    found = [hit.id for hit in select(index, build_search(filter=text))]
    assert set(found) == expected, text
    is_json = text.startswith("{")
    params = {"filter": text, "filter-lang": "cql2-json" if is_json else "cql2-text"}
    answer = requests.get(server.url + "/search", params={**params, "limit": 1000}, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert [f["id"] for f in answer.json()["features"]] == found
    body = {"filter": json.loads(text) if is_json else text, "limit": 1000}
    answer = requests.post(server.url + "/search", json=body, timeout=30)
    assert [f["id"] for f in answer.json()["features"]] == found
    cli = CliRunner().invoke(app, ["search", str(catalog), "--filter", text])
    assert cli.exit_code == 0, cli.output
    assert cli.output.split() == found
