"""Build hardening (issue 15) with real processes and real signals: `stacmask build` runs as a
subprocess against a fault-injecting STAC API on 127.0.0.1; builds and workers are killed; two
builds share a folder; a small tmpfs fills up. After every fault the catalog validates and the
next run ends with every good scene and nothing left behind."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stacmask.catalog.folder import CatalogFolder
from stacmask.output.item import multihash_sha256
from tests.conftest import REPO, ci
from tests.sample_api import SampleStacApi
from tests.test_build import COLLECTION, assert_valid, make_scenes

#: Seconds added to every band request, so that scenes last long enough to be killed mid-way.
SLOW = 0.15


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SampleStacApi]:
    root = tmp_path / "served"
    root.mkdir()
    with SampleStacApi(root) as server:
        for scene in make_scenes(root, 4, size=384):
            server.add_scene(scene)
        yield server


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a build whose $TMPDIR is a folder of this test."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    return {**os.environ, "TMPDIR": str(scratch)}


def command(out: Path, api: SampleStacApi, *extra: str) -> list[str]:
    build = [sys.executable, "-m", "stacmask", "build", "--out", str(out)]
    return [*build, "--stac-url", api.url, "--quiet", *extra]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def wait_for(condition: Callable[[], Any], timeout: float = 120.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what or condition}")


def children(pid: int) -> list[int]:
    """Live child processes of `pid` that are workers (multiprocessing spawn, not its tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def leftovers(out: Path, scratch: Path | None = None) -> list[Path]:
    """Temporary files and folders of builds: in the catalog, and in `scratch` ($TMPDIR)."""
    keep = {".stacmask.lock", ".stacmask-runs"}
    found = [
        p
        for p in out.rglob("*")
        if (p.name.startswith(".stacmask") and p.name not in keep) or p.name.endswith(".tmp")
    ]
    found += [p for p in (out / ".stacmask-runs").glob("*")]
    if scratch is not None:  # (other tools may keep files of their own there)
        found += [p for p in scratch.iterdir() if p.name.startswith("stacmask")]
    return found


def staged(out: Path) -> list[Path]:
    """Folders a build is writing scenes into (any temporary folder in the catalog)."""
    return [p for p in out.rglob(".stacmask-*") if p.is_dir() and p.name != ".stacmask-runs"]


def assert_resumes(
    out: Path, api: SampleStacApi, env: dict[str, str], schema_map: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    api.faults.clear()
    rerun = run(command(out, api, *extra), env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert CatalogFolder(out).item_ids(COLLECTION) == set(api.items)
    assert CatalogFolder(out).failures() == {}
    assert_valid(out, schema_map)
    return rerun


def slow_build_with_two_workers(
    tmp_path: Path, api: SampleStacApi, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], list[int], Path]:
    """`build --workers 2` into tmp_path/cat with slow band reads, once both workers run."""
    api.faults.delay("/data/", SLOW)
    log = tmp_path / "build.log"
    build = start(command(tmp_path / "cat", api, "--workers", "2"), env, log)
    workers = wait_for(lambda: len(children(build.pid)) == 2 and children(build.pid), what="2")
    return build, workers, log


def test_killing_the_build_kills_its_workers_and_the_resume_cleans_up(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    out = tmp_path / "cat"
    build, workers, _ = slow_build_with_two_workers(tmp_path, api, tmpdir_env)
    wait_for(lambda: staged(out), what="a scene being written")
    build.kill()
    build.wait()
    wait_for(lambda: not any(alive(w) for w in workers), timeout=10, what="workers to die")
    assert_valid(out, schema_map)
    rerun = assert_resumes(out, api, tmpdir_env, schema_map)
    assert "leftover(s) of earlier interrupted builds" in rerun.stdout
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []


def test_a_killed_worker_fails_its_scene_alone(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    out = tmp_path / "cat"
    build, workers, log = slow_build_with_two_workers(tmp_path, api, tmpdir_env)
    wait_for(lambda: staged(out), what="a scene being written")
    os.kill(workers[0], signal.SIGKILL)
    assert build.wait(timeout=300) == 1, log.read_text()
    output = log.read_text()
    assert "Traceback" not in output and "BrokenProcessPool" not in output, output
    failures = CatalogFolder(out).failures()
    assert len(failures) == 1, output
    (failure,) = failures.values()
    assert failure["stage"] == "worker"
    assert "killed by SIGKILL" in failure["message"]
    assert len(CatalogFolder(out).item_ids(COLLECTION)) == 3
    assert_valid(out, schema_map)
    assert_resumes(out, api, tmpdir_env, schema_map, "--workers", "2")
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_workers_and_say_how_to_resume(
    tmp_path: Path,
    api: SampleStacApi,
    tmpdir_env: dict[str, str],
    schema_map: Path,
    sig: signal.Signals,
    code: int,
) -> None:
    out = tmp_path / "cat"
    build, workers, log = slow_build_with_two_workers(tmp_path, api, tmpdir_env)
    wait_for(lambda: CatalogFolder(out).item_ids(COLLECTION), what="a first scene")
    build.send_signal(sig)
    assert build.wait(timeout=60) == code, log.read_text()
    assert not any(alive(w) for w in workers), "the workers must stop before the build exits"
    output = log.read_text()
    done = len(CatalogFolder(out).item_ids(COLLECTION))
    assert f"interrupted by {sig.name}: workers stopped" in output, output
    assert f"the catalog holds {done} scene(s)" in output
    assert "Run the same command again to resume" in output
    assert "Traceback" not in output, output
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []
    assert_valid(out, schema_map)
    rerun = assert_resumes(out, api, tmpdir_env, schema_map, "--workers", "2")
    assert f"{done} already present" in rerun.stdout


def test_leftovers_of_a_killed_build_are_cleaned_by_the_next_one(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    api.faults.delay("/data/", SLOW)
    out = tmp_path / "cat"
    scratch = Path(tmpdir_env["TMPDIR"])
    for _ in range(2):  # two kills: leftovers of both are cleaned at once
        build = start(command(out, api, "--method", "notebook"), tmpdir_env, tmp_path / "b.log")
        wait_for(lambda: staged(out), what="a scene being written")
        build.send_signal(signal.SIGKILL)
        build.wait()
        assert leftovers(out, scratch), "the kill must leave something to clean"
        assert_valid(out, schema_map)
    rerun = assert_resumes(out, api, tmpdir_env, schema_map, "--method", "notebook")
    assert "leftover(s) of earlier interrupted builds" in rerun.stdout
    assert leftovers(out, scratch) == []


def test_a_build_never_cleans_what_a_running_build_uses(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    first, *others = list(api.items)
    api.faults.delay(f"/data/{first}/", 1.0)  # every request for its files
    out = tmp_path / "cat"
    log = tmp_path / "slow.log"
    slow = start(command(out, api, "--ids", first), tmpdir_env, log)
    in_use = wait_for(lambda: staged(out), what="the slow build's staging folder")
    slow.send_signal(signal.SIGSTOP)  # a running build, stopped while the other one runs
    try:
        scratch = [p for p in Path(tmpdir_env["TMPDIR"]).iterdir() if "stacmask" in p.name]
        other = run(command(out, api, "--ids", ",".join(others)), tmpdir_env)
        assert other.returncode == 0, other.stdout + other.stderr
        assert "leftover" not in other.stdout
        assert all(path.exists() for path in [*in_use, *scratch])
    finally:
        slow.send_signal(signal.SIGCONT)
    assert slow.wait(timeout=300) == 0, log.read_text()
    assert CatalogFolder(out).item_ids(COLLECTION) == set(api.items)
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []
    assert_valid(out, schema_map)


def test_two_builds_at_once_into_one_folder(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    out = tmp_path / "cat"
    builds = [start(command(out, api), tmpdir_env, tmp_path / f"{n}.log") for n in range(2)]
    for number, build in enumerate(builds):
        assert build.wait(timeout=600) == 0, (tmp_path / f"{number}.log").read_text()
    assert CatalogFolder(out).item_ids(COLLECTION) == set(api.items)
    assert CatalogFolder(out).failures() == {}
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []
    assert_valid(out, schema_map)


def write_previews(path: Path, times: int) -> None:
    """Write the preview at `path` `times` times (run in two processes at once)."""
    from stacmask.output.preview import write_preview

    rgb = np.random.default_rng(0).random((3, 256, 256))
    classes = np.zeros((256, 256), np.uint8)
    for _ in range(times):
        write_preview(path, rgb, classes)


def test_two_processes_write_one_preview_at_once(tmp_path: Path) -> None:
    """Two builds redoing a scene at once write its preview at once (the fixed temporary name
    made one fail with FileNotFoundError)."""
    path = tmp_path / "scene_preview.png"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_previews, args=(path, 150)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def _consistent(out: Path) -> None:
    """Every item describes the files beside it (its assets' checksums match)."""
    for item_id in CatalogFolder(out).item_ids(COLLECTION):
        folder = out / COLLECTION / item_id
        item = json.loads((folder / f"{item_id}.json").read_text())
        checked = [(k, a) for k, a in item["assets"].items() if "file:checksum" in a]
        assert checked, f"{item_id}: no asset has a file:checksum"
        for key, asset in checked:
            path = folder / asset["href"].removeprefix("./")
            assert multihash_sha256(path) == asset["file:checksum"], f"{item_id} {key}"


def test_interrupted_force_replaces_item_and_files_together_or_not_at_all(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    out = tmp_path / "cat"
    first = run(command(out, api, "--method", "physical"), tmpdir_env)
    assert first.returncode == 0, first.stdout + first.stderr
    masks = {i: out / COLLECTION / i / f"{i}_mask.tif" for i in api.items}

    def replaced() -> bool:
        return any(not p.exists() or p.stat().st_ino != inodes[i] for i, p in masks.items())

    for _ in range(2):
        inodes = {i: p.stat().st_ino for i, p in masks.items()}
        cmd = command(out, api, "--force", "--method", "notebook")
        build = start(cmd, tmpdir_env, tmp_path / "force.log")
        with contextlib.suppress(AssertionError):
            wait_for(replaced, timeout=300, what="a mask replaced")
        build.kill()
        build.wait()
        _consistent(out)
        assert_valid(out, schema_map)
    methods = {
        json.loads((out / COLLECTION / i / f"{i}.json").read_text())["properties"][
            "stacmask:method"
        ]
        for i in api.items
    }
    assert methods <= {"physical", "notebook"}


def test_failures_of_scenes_in_the_catalog_are_cleared(
    tmp_path: Path, api: SampleStacApi, tmpdir_env: dict[str, str], schema_map: Path
) -> None:
    out = tmp_path / "cat"
    assert run(command(out, api), tmpdir_env).returncode == 0
    bad = next(iter(api.items))
    api.faults.fail("/" + api.items[bad]["assets"]["BAND3"]["href"].split("/", 3)[3], 500)
    forced = run(command(out, api, "--force", "--ids", bad, "--timeout", "2"), tmpdir_env)
    assert forced.returncode == 1
    assert bad in CatalogFolder(out).failures()
    assert bad in CatalogFolder(out).item_ids(COLLECTION)  # the old version stays
    assert_valid(out, schema_map)
    rerun = assert_resumes(out, api, tmpdir_env, schema_map)
    assert f"{len(api.items)} already present" in rerun.stdout


# --- full disks ---------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs (we run as root); skipped where it cannot be mounted, failed under CI."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
        if ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` up to `leave` free bytes with one file; returns it."""
    filler = disk / "filler"
    with filler.open("ab", buffering=0) as fh:
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - leave
        with contextlib.suppress(OSError):
            if free > 0:
                os.posix_fallocate(fh.fileno(), fh.tell(), free)
        if not leave:
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * 4096)
    return filler


def test_scratch_on_a_full_disk_fails_each_scene_with_no_space(
    tmp_path: Path, api: SampleStacApi, small_disk: Path, schema_map: Path
) -> None:
    env = {**os.environ, "TMPDIR": str(small_disk)}
    filler = fill(small_disk, leave=512 * 1024)
    out = tmp_path / "cat"
    result = run(command(out, api, "--method", "notebook"), env)
    assert result.returncode == 1, f"{result.returncode}\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    failures = CatalogFolder(out).failures()
    assert set(failures) == set(api.items)
    for failure in failures.values():
        assert failure["message"].startswith("no space left on device"), failure
        assert str(small_disk) in failure["message"]
    assert_valid(out, schema_map)
    filler.unlink()
    assert_resumes(out, api, env, schema_map, "--method", "notebook")
    assert leftovers(out, small_disk) == []


def test_a_catalog_on_a_full_disk_says_no_space_and_keeps_what_it_had(
    tmp_path: Path,
    api: SampleStacApi,
    small_disk: Path,
    tmpdir_env: dict[str, str],
    schema_map: Path,
) -> None:
    out = small_disk / "cat"
    first, *_ = list(api.items)
    assert run(command(out, api, "--ids", first), tmpdir_env).returncode == 0
    filler = fill(small_disk)
    result = run(command(out, api, "--force", "--ids", first, "--method", "notebook"), tmpdir_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"FAILED {first}" in result.stdout
    assert "no space left on device" in result.stdout
    assert "cannot update failures.json: no space left on device" in result.stdout
    assert CatalogFolder(out).item_ids(COLLECTION) == {first}
    _consistent(out)
    assert_valid(out, schema_map)
    filler.unlink()
    assert_resumes(out, api, tmpdir_env, schema_map)
    assert leftovers(out, Path(tmpdir_env["TMPDIR"])) == []
