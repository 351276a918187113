"""Builds on a real Dask LocalCluster (worker processes) against a STAC API on 127.0.0.1.

A Dask build must give the same catalog as a local build, resume like one, and record a failing
scene or a dead worker as that scene's failure.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import distributed
import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from stacmask.catalog.folder import CatalogFolder
from stacmask.catalog.validate import validate_catalog
from stacmask.cli import app
from stacmask.demo.sample_api import SampleStacApi
from stacmask.errors import StacmaskError, StacmaskWarning
from stacmask.pipeline.build import SceneTask, build
from stacmask.pipeline.cluster import RemoteOutcome, process_scene_remote, run_on_dask
from tests.sample_scenes import (
    BROKEN,
    COLLECTION,
    FIRST,
    KEYS,
    MASK_COLLECTION,
    QUADRANTS,
    build_options,
    serve_scenes,
)

#: Item fields that legitimately differ between two runs.
RUN_DEPENDENT = ("created", "updated")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleStacApi]:
    """Five scenes served over HTTP: four real-data quadrants and one with missing bands."""
    with serve_scenes(tmp_path_factory.mktemp("files")) as sample:
        yield sample


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes; a task whose worker dies is retried once."""
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"allowed_failures": 1},
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def local_catalog(api: SampleStacApi, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalog of a plain in-process build."""
    out = tmp_path_factory.mktemp("local") / "cat"
    build(build_options(api, out), echo=lambda _: None, progress=False)
    return out


@pytest.fixture(scope="module")
def dask_catalog(
    api: SampleStacApi, cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The catalog of `stacmask build --scheduler` on the LocalCluster."""
    out = tmp_path_factory.mktemp("dask") / "cat"
    args = ["build", "--out", str(out), "--stac-url", api.url, "--collection", COLLECTION]
    args += ["--scheduler", cluster.scheduler_address, "--timeout", "10", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # the broken scene fails
    assert "4 scene(s) added, 0 already present, 1 failed" in result.output
    return out


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _files(root: Path) -> dict[str, int]:
    """Every file under `root` with its permission bits."""
    return {
        p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in root.rglob("*")
        if p.is_file()
    }


def _comparable_item(path: Path) -> dict[str, Any]:
    item = _read(path)
    for key in RUN_DEPENDENT:
        item["properties"].pop(key, None)
    return item


def _comparable_collection(path: Path) -> dict[str, Any]:
    collection = _read(path)
    collection["links"] = sorted(collection["links"], key=lambda link: link["href"])
    return collection


def test_dask_build_gives_the_same_catalog_as_a_local_build(
    local_catalog: Path, dask_catalog: Path, schema_map: Path
) -> None:
    local, remote = CatalogFolder(local_catalog), CatalogFolder(dask_catalog)
    assert local.item_ids(MASK_COLLECTION) == set(QUADRANTS)
    assert remote.item_ids(MASK_COLLECTION) == set(QUADRANTS)
    assert _read(local.catalog_path) == _read(remote.catalog_path)
    assert _comparable_collection(local.collection_path(MASK_COLLECTION)) == (
        _comparable_collection(remote.collection_path(MASK_COLLECTION))
    )
    assert _files(local_catalog) == _files(dask_catalog)
    covers = set()
    for scene_id in QUADRANTS:
        a = local.item_dir(MASK_COLLECTION, scene_id)
        b = remote.item_dir(MASK_COLLECTION, scene_id)
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
        item = _comparable_item(a / f"{scene_id}.json")
        assert item == _comparable_item(b / f"{scene_id}.json")
        covers.add(item["properties"]["eo:cloud_cover"])
        with (
            rasterio.open(a / f"{scene_id}_mask.tif") as x,
            rasterio.open(b / f"{scene_id}_mask.tif") as y,
        ):
            assert x.profile == y.profile
            np.testing.assert_array_equal(x.read(1), y.read(1))
        # Identical pixels give identical files, so file:checksum agrees too (compared above).
        for suffix in ("_mask.tif", "_preview.png"):
            assert (a / f"{scene_id}{suffix}").read_bytes() == (
                b / f"{scene_id}{suffix}"
            ).read_bytes()
    assert len(covers) > 1, "the scenes must differ for the comparison to mean anything"
    report = validate_catalog(dask_catalog, schema_map)
    assert report.ok, [str(p) for p in report.problems]


def test_failing_scene_is_recorded_like_a_local_build(
    local_catalog: Path, dask_catalog: Path
) -> None:
    remote = CatalogFolder(dask_catalog).failures()
    local = CatalogFolder(local_catalog).failures()
    assert set(remote) == set(local) == {BROKEN}
    for key in ("stage", "error", "attempts"):
        assert remote[BROKEN][key] == local[BROKEN][key]
    assert remote[BROKEN]["stage"] == "read"
    assert "gone.tif" in remote[BROKEN]["message"]
    assert not CatalogFolder(dask_catalog).item_dir(MASK_COLLECTION, BROKEN).exists()


def test_second_dask_build_skips_finished_scenes_and_retries_failures(
    api: SampleStacApi, cluster: Any, dask_catalog: Path, tmp_path: Path
) -> None:
    out = tmp_path / "cat"
    shutil.copytree(dask_catalog, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    report = build(
        build_options(api, out, scheduler=cluster.scheduler_address),
        echo=lambda _: None,
        progress=False,
    )
    assert sorted(report.skipped) == sorted(QUADRANTS)
    assert report.done == []
    assert list(report.failed) == [BROKEN]
    assert CatalogFolder(out).failures()[BROKEN]["attempts"] == 2
    changed = {p for p in out.rglob("*") if p.is_file() and before.get(p) != p.stat().st_mtime_ns}
    assert changed == {out / "failures.json"}

    redo = FIRST
    report = build(
        build_options(api, out, scheduler=cluster.scheduler_address, ids=[redo], force=True),
        echo=lambda _: None,
        progress=False,
    )
    assert report.done == [redo]
    assert CatalogFolder(out).item_ids(MASK_COLLECTION) == set(QUADRANTS)


def die_on_first_scene(task: SceneTask) -> RemoteOutcome:
    """Kill the worker process on the first quadrant (after the others have had time to
    finish, so that only this scene's task is on a dying worker); mask the others normally."""
    if task.item["id"] == FIRST:
        time.sleep(1.0)
        os._exit(13)
    return process_scene_remote(task)


def test_dead_worker_is_a_failure_of_its_scene(
    api: SampleStacApi, cluster: Any, tmp_path: Path
) -> None:
    survivor = list(QUADRANTS)[1]
    tasks = [
        SceneTask(
            item=api.items[scene_id],
            source_href=None,
            item_dir=tmp_path / scene_id,
            keys=KEYS,
            method="notebook",
            timeout=10,
        )
        for scene_id in (FIRST, survivor)
    ]
    # The LocalCluster keeps Dask's default worker environment, which stacmask warns about.
    with pytest.warns(StacmaskWarning, match="MALLOC_TRIM_THRESHOLD_"):
        outcomes = {
            o.scene_id: o
            for o in run_on_dask(tasks, cluster.scheduler_address, scene=die_on_first_scene)
        }
    dead = outcomes[FIRST]
    assert dead.item is None
    assert (dead.stage, dead.error_type) == ("worker", "KilledWorker")
    assert outcomes[survivor].item is not None
    assert sorted(p.name for p in (tmp_path / survivor).iterdir()) == [
        f"{survivor}_mask.tif",
        f"{survivor}_preview.png",
    ]
    assert not (tmp_path / FIRST).exists()


def lose_the_preview(task: SceneTask) -> RemoteOutcome:
    """Mask normally but send back only the mask file."""
    remote = process_scene_remote(task)
    files = {k: v for k, v in remote.files.items() if not k.endswith("_preview.png")}
    return RemoteOutcome(remote.outcome, files)


def test_missing_file_from_a_worker_is_a_write_failure(
    api: SampleStacApi, cluster: Any, tmp_path: Path
) -> None:
    task = SceneTask(next(iter(api.items.values())), None, tmp_path / "scene", KEYS, "notebook", 10)
    with pytest.warns(StacmaskWarning):
        (outcome,) = run_on_dask([task], cluster.scheduler_address, scene=lose_the_preview)
    assert (outcome.stage, outcome.error_type) == ("write", "FileNotFoundError")
    assert "_preview.png: the worker did not send" in outcome.message
    assert not (tmp_path / "scene").exists()


def test_scheduler_and_workers_are_exclusive(tmp_path: Path) -> None:
    args = ["build", "--out", str(tmp_path), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "not both" in result.output


def test_unreachable_scheduler_is_a_clear_error(api: SampleStacApi, tmp_path: Path) -> None:
    task = SceneTask(next(iter(api.items.values())), None, tmp_path, KEYS, "notebook", 10)
    with pytest.raises(StacmaskError, match=r"cannot connect to the Dask scheduler at tcp://"):
        list(run_on_dask([task], "tcp://127.0.0.1:9", connect_timeout=1))
