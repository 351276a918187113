"""stac-geoparquet export of a built catalog, queried with DuckDB; NDJSON for pgstac."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from stac_geoparquet.arrow import stac_table_to_items
from typer.testing import CliRunner

from stacmask.catalog.geoparquet import export_items
from stacmask.cli import app
from stacmask.pipeline.build import build
from tests.sample_scenes import MASK_COLLECTION, QUADRANTS, build_options, serve_scenes

QUERY = """
    SELECT id, "eo:cloud_cover" FROM read_parquet(?)
    WHERE "eo:cloud_cover" < ? ORDER BY "eo:cloud_cover", id
"""


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A catalog built from the served test scenes (one of them fails and is not in it)."""
    out = tmp_path_factory.mktemp("built") / "cat"
    with serve_scenes(tmp_path_factory.mktemp("files")) as api:
        report = build(build_options(api, out), echo=lambda _: None, progress=False)
    assert sorted(report.done) == sorted(QUADRANTS)
    yield out


def _item_jsons(catalog: Path) -> list[dict[str, Any]]:
    paths = sorted((catalog / MASK_COLLECTION).glob("*/*.json"))
    return [json.loads(p.read_text()) for p in paths]


def _python_selection(catalog: Path, limit: float) -> list[tuple[str, float]]:
    items = [(i["id"], i["properties"]["eo:cloud_cover"]) for i in _item_jsons(catalog)]
    return sorted(((i, c) for i, c in items if c < limit), key=lambda ic: (ic[1], ic[0]))


def test_duckdb_selects_the_same_items_as_python(catalog: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "items.parquet"
    report = export_items(catalog, parquet)
    assert report.items == len(QUADRANTS)
    assert report.collections == [MASK_COLLECTION]
    covers = sorted(i["properties"]["eo:cloud_cover"] for i in _item_jsons(catalog))
    median = covers[len(covers) // 2]
    with duckdb.connect() as db:
        (count,) = db.execute("SELECT count(*) FROM read_parquet(?)", [str(parquet)]).fetchone()
        assert count == len(QUADRANTS)
        for limit in (15.0, median):
            rows = db.execute(QUERY, [str(parquet), limit]).fetchall()
            assert rows == _python_selection(catalog, limit)
        # The median splits the scenes, so the comparison above is not all-or-nothing.
        assert 0 < len(db.execute(QUERY, [str(parquet), median]).fetchall()) < count


def test_parquet_round_trips_to_the_items_with_absolute_hrefs(
    catalog: Path, tmp_path: Path
) -> None:
    parquet = tmp_path / "items.parquet"
    export_items(catalog, parquet, ndjson=tmp_path / "items.ndjson")
    lines = (tmp_path / "items.ndjson").read_text().splitlines()
    exported = {i["id"]: i for i in map(json.loads, lines)}
    assert set(exported) == set(QUADRANTS)
    for item in stac_table_to_items(pq.read_table(parquet)):
        original = exported[item["id"]]
        assert item["properties"]["eo:cloud_cover"] == original["properties"]["eo:cloud_cover"]
        assert item["assets"] == original["assets"]
        assert item["bbox"] == original["bbox"]
    built = {i["id"]: i for i in _item_jsons(catalog)}
    for item_id, item in exported.items():
        assert item["properties"] == built[item_id]["properties"]
        for key, asset in item["assets"].items():
            assert Path(asset["href"]).is_file(), (item_id, key, asset["href"])
        self_href = next(link["href"] for link in item["links"] if link["rel"] == "self")
        assert (
            Path(self_href) == (catalog / MASK_COLLECTION / item_id / f"{item_id}.json").resolve()
        )
    metadata = json.loads(pq.read_schema(parquet).metadata[b"stac-geoparquet"])
    assert list(metadata["collections"]) == [MASK_COLLECTION]


def test_cli_export_with_base_url(catalog: Path, tmp_path: Path) -> None:
    base = "https://example.org/masks/"
    args = ["geoparquet", str(catalog), str(tmp_path / "x.parquet"), "--base-url", base]
    args += ["--ndjson", str(tmp_path / "out" / "x.ndjson")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(QUADRANTS)} item(s) of {MASK_COLLECTION}" in result.output
    for line in (tmp_path / "out" / "x.ndjson").read_text().splitlines():
        item = json.loads(line)
        folder = f"{base}{MASK_COLLECTION}/{item['id']}/"
        assert item["assets"]["mask"]["href"] == f"{folder}{item['id']}_mask.tif"
        links = {link["rel"]: link["href"] for link in item["links"]}
        assert links["self"] == f"{folder}{item['id']}.json"
        assert links["collection"] == f"{base}{MASK_COLLECTION}/collection.json"
        assert links["root"] == f"{base}catalog.json"
        assert links["derived_from"].startswith("http://127.0.0.1:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.parquet"]


def test_export_of_an_empty_or_missing_catalog_fails(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["geoparquet", str(tmp_path), str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert "no catalog.json" in result.output
    (tmp_path / "catalog.json").write_text(json.dumps({"type": "Catalog", "links": []}))
    result = CliRunner().invoke(app, ["geoparquet", str(tmp_path), str(tmp_path / "x.parquet")])
    assert result.exit_code == 2
    assert "no items" in result.output
    assert not (tmp_path / "x.parquet").exists()
