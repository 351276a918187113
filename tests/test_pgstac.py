"""`stacmask publish --pgstac` against a real PostgreSQL 15 + PostGIS 3 + pgstac.

scripts/test starts the database (scripts/pgstac-db) and exports PGSTAC_TEST_DSN; without it
the tests skip locally and fail under CI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stacmask.catalog.index import CatalogIndex
from stacmask.catalog.pgstac import publish_catalog
from stacmask.cli import app
from stacmask.serve.params import build_search
from stacmask.serve.query import select
from tests.conftest import ci
from tests.synthetic_catalog import (
    COLLECTION,
    link_items,
    synthetic_item,
    write_catalog,
    write_items,
)


@pytest.fixture
def dsn() -> Iterator[str]:
    """The test database, emptied of the synthetic collection."""
    value = os.environ.get("PGSTAC_TEST_DSN")
    if not value:
        message = "PGSTAC_TEST_DSN not set: scripts/test starts pgstac (scripts/pgstac-db start)"
        if ci():
            pytest.fail(message)
        pytest.skip(message)
    _clear(value)
    yield value
    _clear(value)


def _query(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET search_path TO pgstac, public")
        cursor = connection.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []


def _clear(dsn: str) -> None:
    _query(dsn, "DELETE FROM items WHERE collection = %s", COLLECTION)
    _query(dsn, "DELETE FROM collections WHERE id = %s", COLLECTION)


def _pgstac_ids(dsn: str, cql2_json: dict[str, Any]) -> list[str]:
    """Ids that pgstac's own search returns, least cloudy first."""
    body = {
        "collections": [COLLECTION],
        "filter-lang": "cql2-json",
        "filter": cql2_json,
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "asc"}],
        "limit": 10_000,
    }
    ((result,),) = _query(dsn, "SELECT search(%s::jsonb)", json.dumps(body))
    return [feature["id"] for feature in result["features"]]


def test_publish_loads_then_only_what_changed(dsn: str, tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 50)
    first = publish_catalog(root, dsn, base_url="https://example.org/cat/")
    assert (first.collections, first.loaded, first.unchanged, first.deleted) == (1, 50, 0, 0)
    ((count,),) = _query(dsn, "SELECT count(*) FROM items WHERE collection = %s", COLLECTION)
    assert count == 50
    ((content,),) = _query(dsn, "SELECT content FROM items WHERE id = %s", synthetic_item(7)["id"])
    assert content["assets"]["mask"]["href"].startswith("https://example.org/cat/")

    # pgstac's search selects what stacmask's index selects.
    cloudy = {"op": "<", "args": [{"property": "eo:cloud_cover"}, 30]}
    index = CatalogIndex(root)
    ours = [
        h.id
        for h in select(index, build_search(filter=json.dumps(cloudy), sortby="+eo:cloud_cover"))
    ]
    assert _pgstac_ids(dsn, cloudy) == ours and 0 < len(ours) < 50

    again = publish_catalog(root, dsn, base_url="https://example.org/cat/")
    assert (again.loaded, again.unchanged, again.deleted) == (0, 50, 0)

    changed = synthetic_item(3)
    changed["properties"]["eo:cloud_cover"] = 0.001
    path = root / COLLECTION / changed["id"] / f"{changed['id']}.json"
    path.write_text(json.dumps(changed))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    kept = [synthetic_item(n)["id"] for n in range(3, 50)]  # three unlinked
    link_items(root, kept + write_items(root, range(50, 55)))
    later = publish_catalog(root, dsn, base_url="https://example.org/cat/")
    assert (later.loaded, later.unchanged, later.deleted) == (6, 46, 3)
    ((count,),) = _query(dsn, "SELECT count(*) FROM items WHERE collection = %s", COLLECTION)
    assert count == 52
    assert _pgstac_ids(dsn, cloudy)[0] == changed["id"]


def test_cli_publish(dsn: str, tmp_path: Path) -> None:
    root = write_catalog(tmp_path / "cat", 5)
    result = CliRunner().invoke(app, ["publish", str(root), "--pgstac", dsn])
    assert result.exit_code == 0, result.output
    assert "1 collection(s), 5 item(s) loaded, 0 unchanged" in result.output
    bad = dsn.rsplit("/", 1)[0] + "/no_such_database"
    result = CliRunner().invoke(app, ["publish", str(root), "--pgstac", bad])
    assert result.exit_code == 2 and "no_such_database" in result.output
