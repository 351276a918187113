"""Running a build's scenes on a Dask distributed cluster (`stacmask build --scheduler ADDRESS`).

Workers mask scenes in a private temporary folder and send the finished files (mask COG,
preview PNG) back with the item; the build process writes them into the catalog folder. So the
build process stays the only writer of the catalog, workers need no access to it (only to the
band and XML hrefs), and a worker that dies mid-scene leaves nothing behind. A task that raises,
or whose workers keep dying, becomes a recorded failure of its scene, retried by the next run.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from stacmask.catalog.folder import write_bytes_atomic
from stacmask.errors import StacmaskError, StacmaskWarning
from stacmask.pipeline.scene import SceneOutcome, SceneTask, process_scene

#: Stage recorded in failures.json for a scene whose task raised or whose workers died.
WORKER_STAGE = "worker"
#: Stage recorded when the build process cannot write a finished scene's files.
WRITE_STAGE = "write"
#: Seconds to wait for the scheduler when connecting.
CONNECT_TIMEOUT = 30.0
#: Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's
#: dynamic mmap threshold: every large numpy temporary is then a fresh mmap. Measured here:
#: 2.3-2.5 s instead of 1.0-1.2 s per 2048 x 2048 scene (docs/scale.md shows the fix).
SLOW_MALLOC_ENV = "MALLOC_TRIM_THRESHOLD_"


@dataclasses.dataclass(frozen=True)
class RemoteOutcome:
    """A scene's outcome and, when it succeeded, the bytes of its item's files by file name."""

    outcome: SceneOutcome
    files: dict[str, bytes]


def item_file_names(item: dict[str, Any]) -> list[str]:
    """File names of the item's assets that live in its folder (hrefs like ./NAME)."""
    names = []
    for asset in item.get("assets", {}).values():
        href = str(asset.get("href", ""))
        name = href.removeprefix("./")
        if name and "/" not in name and name not in (".", ".."):
            names.append(name)
    return names


def process_scene_remote(task: SceneTask) -> RemoteOutcome:
    """Mask one scene in a temporary folder of this worker; return the outcome and its files."""
    with tempfile.TemporaryDirectory(prefix="stacmask-scene-") as tmp:
        outcome = process_scene(dataclasses.replace(task, item_dir=Path(tmp)))
        files: dict[str, bytes] = {}
        if outcome.item is not None:
            files = {
                name: (Path(tmp) / name).read_bytes() for name in item_file_names(outcome.item)
            }
    return RemoteOutcome(outcome, files)


def malloc_trim_threshold() -> str | None:
    """This process's MALLOC_TRIM_THRESHOLD_ (run on the workers to warn about it)."""
    return os.environ.get(SLOW_MALLOC_ENV)


def _warn_if_slow_workers(client: Any) -> None:
    try:
        settings = client.run(malloc_trim_threshold)
    except Exception:  # a worker leaving mid-call; the check is advice, never fatal
        return
    slow = sorted(worker for worker, value in settings.items() if value is not None)
    if slow:
        warnings.warn(
            f"{len(slow)} Dask worker(s) run with {SLOW_MALLOC_ENV} set (Dask's default), which "
            "makes masking about 2x slower; start them with "
            f"distributed.nanny.pre-spawn-environ.{SLOW_MALLOC_ENV}: null (see docs/scale.md)",
            StacmaskWarning,
            stacklevel=3,
        )


def _failed(task: SceneTask, exc: BaseException, stage: str = WORKER_STAGE) -> SceneOutcome:
    return SceneOutcome(
        str(task.item.get("id")),
        0.0,
        stage=stage,
        error_type=type(exc).__name__,
        message=str(exc) or repr(exc),
    )


def run_on_dask(
    tasks: Sequence[SceneTask],
    address: str,
    *,
    scene: Callable[[SceneTask], RemoteOutcome] = process_scene_remote,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> Iterator[SceneOutcome]:
    """Run `scene` for every task on the cluster at `address`; yield outcomes as they finish.

    The files of each finished scene are in its item folder before its outcome is yielded.
    """
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise StacmaskError(
            "--scheduler needs Dask distributed: pip install 'stacmask[dask]'"
        ) from exc
    if not tasks:
        return
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise StacmaskError(f"cannot connect to the Dask scheduler at {address}: {exc}") from exc
    pending: dict[Any, SceneTask] = {}
    try:
        _warn_if_slow_workers(client)
        pending = {
            client.submit(
                scene, task, key=f"stacmask-{task.item.get('id')}-{uuid.uuid4().hex[:8]}"
            ): task
            for task in tasks
        }
        for future in as_completed(list(pending), loop=client.loop):  # type: ignore[no-untyped-call]
            task = pending.pop(future)
            try:
                remote: RemoteOutcome = future.result()
            except Exception as exc:  # the task raised, or its workers died: that scene failed
                yield _failed(task, exc)
                continue
            try:
                names = item_file_names(remote.outcome.item or {})
                for name in names:
                    if name not in remote.files:
                        raise FileNotFoundError(f"{name}: the worker did not send this asset file")
                for name in names:
                    write_bytes_atomic(task.item_dir / name, remote.files[name])
            except OSError as exc:
                yield _failed(task, exc, WRITE_STAGE)
                continue
            yield remote.outcome
    finally:
        if pending:
            client.cancel(list(pending))  # type: ignore[no-untyped-call]
        client.close()  # type: ignore[no-untyped-call]
