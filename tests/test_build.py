"""End to end: a STAC API on 127.0.0.1 -> `stacmask build` -> a catalog that validates offline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from stacmask.catalog.folder import CatalogFolder
from stacmask.catalog.validate import validate_catalog
from stacmask.cli import app
from stacmask.constants import CLOUD, NODATA, SHADOW, WATER
from stacmask.demo.samples import SampleScene, scene_id_for, write_sample_scene
from stacmask.methods.registry import DEFAULT_METHOD
from stacmask.output.item import multihash_sha256
from tests.conftest import REPO
from tests.sample_api import SampleStacApi

SIZE = 640
COLLECTION = "CB4A-WPM-L4-DN-1-mask"
runner = CliRunner()


def make_scenes(root: Path, n: int, size: int = SIZE) -> list[SampleScene]:
    first = datetime(2021, 1, 4, 13, 30, tzinfo=timezone.utc)
    scenes = []
    for i in range(n):
        when = first + timedelta(days=5 * i)
        scene_id = scene_id_for(when, 221 + i, 116)
        scenes.append(
            write_sample_scene(
                root / scene_id,
                scene_id,
                width=size,
                height=size,
                seed=i,
                cloud_fraction=(0.05, 0.3, 0.6, 0.2, 0.4)[i % 5],
                acquired=when,
                blocksize=128,
                origin=(300_000.0 + 20_000.0 * i, 8_300_000.0),
                dtype="int16",  # BDC's files: int16 strips
                stripped=True,
            )
        )
    return scenes


@contextmanager
def serve_scenes(tmp_path: Path, count: int, size: int = SIZE) -> Iterator[SampleStacApi]:
    """The sample STAC API on 127.0.0.1 serving `count` scenes of `make_scenes`."""
    root = tmp_path / "served"
    root.mkdir()
    with SampleStacApi(root) as server:
        for scene in make_scenes(root, count, size=size):
            server.add_scene(scene)
        yield server


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    with serve_scenes(tmp_path, 3) as server:
        yield server


def build(out: Path, api: SampleStacApi, *extra: str) -> Any:
    return runner.invoke(
        app, ["build", "--out", str(out), "--stac-url", api.url, "--quiet", *extra]
    )


def assert_valid(out: Path, schema_map: Path) -> None:
    report = validate_catalog(out, schema_map)
    assert report.ok, "\n".join(map(str, report.problems))


def item_json(out: Path, item_id: str) -> dict[str, Any]:
    path = out / COLLECTION / item_id / f"{item_id}.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_build_end_to_end(tmp_path: Path, api: SampleStacApi, schema_map: Path) -> None:
    out = tmp_path / "catalogs" / "e2e"
    result = build(out, api)
    assert result.exit_code == 0, result.output
    assert "3 scene(s) added" in result.output
    assert_valid(out, schema_map)
    assert (
        runner.invoke(app, ["validate", str(out), "--schema-map", str(schema_map)]).exit_code == 0
    )

    catalog = json.loads((out / "catalog.json").read_text())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        f"./{COLLECTION}/collection.json"
    ]
    collection = json.loads((out / COLLECTION / "collection.json").read_text())
    assert {p["name"] for p in collection["providers"]} >= {"stacmask"}
    assert any("licensor" in p["roles"] for p in collection["providers"])
    # the default method's cloud probability is an asset of every item, so of item_assets too
    assert set(collection["item_assets"]) == {"mask", "thumbnail", "cloud_probability"}
    covers = []
    for item_id, source in api.items.items():
        item = item_json(out, item_id)
        props = item["properties"]
        assert item["id"] == item_id
        assert item["geometry"] == source["geometry"]
        assert item["bbox"] == source["bbox"]
        assert props["datetime"] == source["properties"]["datetime"]
        assert props["stacmask:calibration"] == "default"
        assert props["stacmask:method"] == DEFAULT_METHOD
        assert props["view:sun_elevation"] == pytest.approx(55.0)
        derived = [link["href"] for link in item["links"] if link["rel"] == "derived_from"]
        assert derived == [f"{api.url}collections/CB4A-WPM-L4-DN-1/items/{item_id}"]
        assert all(
            not link["href"].startswith("http")
            for link in item["links"]
            if link["rel"] != "derived_from"
        )
        mask_path = out / COLLECTION / item_id / f"{item_id}_mask.tif"
        assert cog_validate(mask_path, quiet=True)[0]
        asset = item["assets"]["mask"]
        assert asset["file:size"] == mask_path.stat().st_size
        assert asset["file:checksum"] == multihash_sha256(mask_path)
        assert [c["value"] for c in asset["classification:classes"]] == [0, 1, 2, 3, 4, 255]
        with rasterio.open(mask_path) as src:
            classes = src.read(1)
            assert src.nodata == NODATA
            assert src.overviews(1), "the COG must have overviews"
            assert src.crs.to_epsg() == 32723
        valid = np.count_nonzero(classes != NODATA)
        assert props["stacmask:valid_pixels"] == valid
        for key, code in (
            ("eo:cloud_cover", CLOUD),
            ("stacmask:shadow_cover", SHADOW),
            ("stacmask:water_cover", WATER),
        ):
            assert props[key] == pytest.approx(
                100 * np.count_nonzero(classes == code) / valid, abs=1e-3
            )
        covers.append(props["eo:cloud_cover"])
        assert (out / COLLECTION / item_id / f"{item_id}_preview.png").exists()
    summary = collection["summaries"]["eo:cloud_cover"]
    assert summary == {"minimum": min(covers), "maximum": max(covers)}


def test_rerun_skips_and_force_redoes(tmp_path: Path, api: SampleStacApi) -> None:
    out = tmp_path / "cat"
    first = build(out, api, "--max-items", "1")
    assert first.exit_code == 0, first.output
    assert len(CatalogFolder(out).item_ids(COLLECTION)) == 1
    second = build(out, api)
    assert second.exit_code == 0, second.output
    assert "2 scene(s) added, 1 already present" in second.output
    third = build(out, api, "--force", "--ids", next(iter(api.items)))
    assert "1 scene(s) added, 0 already present" in third.output
    assert len(CatalogFolder(out).item_ids(COLLECTION)) == 3


def test_search_filters_reach_the_api(tmp_path: Path, api: SampleStacApi) -> None:
    ids = list(api.items)
    out = tmp_path / "cat"
    result = build(out, api, "--datetime", "2021-01-08/2021-01-20", "--ids", f"{ids[0]},{ids[1]}")
    assert result.exit_code == 0, result.output
    assert CatalogFolder(out).item_ids(COLLECTION) == {ids[1]}
    bbox = api.items[ids[2]]["bbox"]
    out2 = tmp_path / "cat2"
    result = build(out2, api, "--bbox", ",".join(str(v) for v in bbox))
    assert ids[2] in CatalogFolder(out2).item_ids(COLLECTION)


def test_two_workers(tmp_path: Path, api: SampleStacApi, schema_map: Path) -> None:
    out = tmp_path / "cat"
    result = build(out, api, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert len(CatalogFolder(out).item_ids(COLLECTION)) == 3
    assert_valid(out, schema_map)


def test_killed_build_leaves_a_valid_catalog_and_resumes(tmp_path: Path, schema_map: Path) -> None:
    root = tmp_path / "served"
    root.mkdir()
    with SampleStacApi(root) as server:
        for scene in make_scenes(root, 5, size=768):
            server.add_scene(scene)
        out = tmp_path / "cat"
        command = [
            sys.executable,
            "-m",
            "stacmask",
            "build",
            "--out",
            str(out),
            "--stac-url",
            server.url,
            "--quiet",
        ]
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        folder = CatalogFolder(out)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(folder.item_ids(COLLECTION)) < 2:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done = folder.item_ids(COLLECTION)
        assert 2 <= len(done) < 5, "the kill must land mid-build"
        assert_valid(out, schema_map)
        rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
        assert f"{len(done)} already present" in rerun.stdout
        assert len(folder.item_ids(COLLECTION)) == 5
        assert_valid(out, schema_map)
