"""`stacmask export` and `stacmask search` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from typer.testing import CliRunner

from stacmask.cli import app
from tests.serve_catalog import COLLECTION_ID, Scene


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_export_copies_the_selected_masks(
    mask_catalog: Path, tmp_path: Path, scenes: tuple[Scene, ...]
) -> None:
    out = tmp_path / "gis"
    limit = sorted(s.cloud for s in scenes)[2]
    code, output = run(
        "export",
        str(mask_catalog),
        str(out),
        "--max-cloud",
        str(limit),
        "--sortby",
        "+eo:cloud_cover",
    )
    assert code == 0, output
    chosen = sorted((s for s in scenes if s.cloud <= limit), key=lambda s: s.cloud)
    assert 0 < len(chosen) < len(scenes)
    assert sorted(p.name for p in out.glob("*.tif")) == sorted(f"{s.id}_mask.tif" for s in chosen)
    for scene in chosen:
        source = mask_catalog / COLLECTION_ID / scene.id / f"{scene.id}_mask.tif"
        with rasterio.open(out / f"{scene.id}_mask.tif") as copy, rasterio.open(source) as orig:
            assert copy.crs == orig.crs and copy.transform == orig.transform
            assert copy.nodata == 255 and copy.dtypes == ("uint8",)
            assert np.array_equal(copy.read(1), orig.read(1))
    index = json.loads((out / "index.geojson").read_text())
    assert [f["id"] for f in index["features"]] == [s.id for s in chosen]
    first = index["features"][0]["properties"]
    assert first["mask_file"] == f"{chosen[0].id}_mask.tif"
    assert first["eo:cloud_cover"] == chosen[0].cloud


def test_export_refuses_to_overwrite(
    mask_catalog: Path, tmp_path: Path, scenes: tuple[Scene, ...]
) -> None:
    out = tmp_path / "gis"
    assert run("export", str(mask_catalog), str(out), "--ids", scenes[0].id)[0] == 0
    before = (out / "index.geojson").read_text()
    code, output = run("export", str(mask_catalog), str(out), "--limit", "2")
    assert code == 2 and "would overwrite" in output
    assert (out / "index.geojson").read_text() == before
    assert len(list(out.glob("*.tif"))) == 1
    code, output = run("export", str(mask_catalog), str(out), "--limit", "2", "--overwrite")
    assert code == 0, output
    assert len(json.loads((out / "index.geojson").read_text())["features"]) == 2


def test_search_json_and_errors(mask_catalog: Path, scenes: tuple[Scene, ...]) -> None:
    limit = sorted(s.cloud for s in scenes)[1]
    code, output = run("search", str(mask_catalog), "--max-cloud", str(limit), "--json")
    assert code == 0, output
    collection = json.loads(output)
    assert {f["id"] for f in collection["features"]} == {s.id for s in scenes if s.cloud <= limit}
    mask = Path(collection["features"][0]["assets"]["mask"]["href"])
    assert mask.is_file()
    code, output = run("search", str(mask_catalog), "--filter", "eo:cloud_cover <")
    assert code == 2 and "not valid CQL2" in output
    code, output = run("search", str(mask_catalog), "--datetime", "2021-02-30")
    assert code == 2 and "datetime" in output
    code, output = run("search", str(mask_catalog.parent / "nope"))
    assert code == 2 and "catalog.json" in output
