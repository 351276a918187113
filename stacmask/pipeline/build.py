"""`stacmask build`: search a STAC API, mask every scene, publish each one as it finishes."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import pystac

from stacmask.catalog.folder import CatalogFolder
from stacmask.catalog.runs import BuildRun
from stacmask.constants import DEFAULT_COLLECTION, DEFAULT_STAC_URL, BandKeys
from stacmask.errors import StacmaskError, redact
from stacmask.pipeline.scene import (
    ERROR_STAGES,
    SceneOutcome,
    SceneTask,
    describe_error,
    process_scene,
)
from stacmask.pipeline.source_search import search_items, source_collection
from stacmask.sensors.inputs import SensorOptions
from stacmask.sensors.registry import DEFAULT_SENSOR

__all__ = [
    "ERROR_STAGES",
    "BuildInterrupted",
    "BuildOptions",
    "BuildReport",
    "SceneOutcome",
    "SceneTask",
    "build",
    "process_scene",
    "stop_on_signals",
]

#: Stage recorded when a finished scene cannot be written into the catalog (a full disk).
WRITE_STAGE = "write"


class BuildInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the build: it stops its workers, reports and exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise BuildInterrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise BuildInterrupted while inside (main thread only; elsewhere
    nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class BuildOptions:
    """Everything `stacmask build` was asked to do."""

    out: Path
    keys: BandKeys
    stac_url: str = DEFAULT_STAC_URL
    collection: str = DEFAULT_COLLECTION
    bbox: Sequence[float] | None = None
    datetime: str | None = None
    ids: Sequence[str] | None = None
    max_items: int | None = None
    #: STAC query-extension filter sent with the search, e.g. {"cbers:data_type": {"eq": "L4"}}.
    query: dict[str, Any] | None = None
    #: Mask method; None: the sensor's default.
    method: str | None = None
    workers: int = 1
    force: bool = False
    timeout: float = 60.0
    #: Sensor name (sensors/registry.py) and the options of the sensors and their methods.
    profile: str = DEFAULT_SENSOR
    sensor: SensorOptions = field(default_factory=SensorOptions)
    #: Dask scheduler address (e.g. tcp://host:8786): run the scenes on that cluster.
    scheduler: str | None = None

    @property
    def output_collection(self) -> str:
        """Id of the mask collection for the source collection."""
        return f"{self.collection}-mask"


@dataclass
class BuildReport:
    """Counts of a build run, and the failures by scene id."""

    found: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: Warnings by scene id (suspicious values; the scene was still published).
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return not self.failed


def _describe(outcome: SceneOutcome, quote: bool = False) -> str:
    if outcome.result is not None:
        r = outcome.result
        return (
            f"done   {outcome.scene_id}: cloud {r.cloud_cover:.2f}%, shadow {r.shadow_cover:.2f}%, "
            f"water {r.water_cover:.2f}% of {r.valid_pixels} valid pixels ({outcome.seconds:.1f} s)"
        )
    scene = repr(outcome.scene_id) if quote else outcome.scene_id
    return f"FAILED {scene} [{outcome.stage}] {outcome.error_type}: {outcome.message}"


def _warnings(outcome: SceneOutcome) -> str:
    return "".join(f"\nwarning {outcome.scene_id}: {text}" for text in outcome.warnings)


def _run(
    tasks: list[SceneTask], workers: int, scheduler: str | None = None
) -> Generator[SceneOutcome, None, None]:
    if scheduler:
        from stacmask.pipeline.cluster import run_on_dask

        yield from run_on_dask(tasks, scheduler)
        return
    if workers <= 1:
        for task in tasks:
            yield process_scene(task)
        return
    from stacmask.pipeline.workers import ScenePool

    yield from ScenePool(workers).run(tasks)


def build(
    options: BuildOptions, echo: Callable[[str], None] = print, progress: bool = True
) -> BuildReport:
    """Run a build; each finished scene joins the catalog at once, failures go to failures.json.

    Leftovers of earlier builds that died are removed first (catalog/runs.py). On SIGINT or
    SIGTERM (see `stop_on_signals`) the workers are stopped, what was done is reported and
    BuildInterrupted is raised again.
    """
    folder = CatalogFolder(options.out)
    folder.ensure()
    report = BuildReport()
    with BuildRun(folder) as run:
        if run.cleaned:
            echo(
                f"removed {run.cleaned} leftover(s) of earlier interrupted builds "
                f"({run.cleaned_bytes / 1e6:.1f} MB)"
            )
        try:
            _build(options, folder, run, report, echo, progress)
        except KeyboardInterrupt as exc:
            name = exc.args[0] if isinstance(exc, BuildInterrupted) else "SIGINT"
            echo(_interrupted(name, folder, options, report))
            raise
    return report


def _interrupted(
    name: str, folder: CatalogFolder, options: BuildOptions, report: BuildReport
) -> str:
    todo = report.found - len(report.done) - len(report.skipped) - len(report.failed)
    try:
        held = f"; the catalog holds {len(folder.item_ids(options.output_collection))} scene(s)"
    except StacmaskError:
        held = ""
    return (
        f"interrupted by {name}: workers stopped; {len(report.done)} scene(s) added by this run, "
        f"{len(report.failed)} failed, {max(todo, 0)} not done{held}. Run the same command "
        "again to resume: finished scenes are skipped."
    )


def _build(
    options: BuildOptions,
    folder: CatalogFolder,
    run: BuildRun,
    report: BuildReport,
    echo: Callable[[str], None],
    progress: bool,
) -> None:
    from tqdm import tqdm

    def rejected(item_id: str, reason: str) -> None:  # a bad search result fails alone
        reason = redact(reason)
        folder.record_failure(item_id or "(no id)", "search", "ItemError", reason)
        report.failed[item_id] = f"[search] {reason}"
        echo(f"FAILED {item_id!r} [search] ItemError: {reason}")

    items = list(
        search_items(
            options.stac_url,
            options.collection,
            bbox=options.bbox,
            datetime=options.datetime,
            ids=options.ids,
            max_items=options.max_items,
            query=options.query,
            timeout=options.timeout,
            access=options.sensor.access,
            rejected=rejected,
            notice=echo,
        )
    )
    report.found = len(items)
    echo(f"found {len(items)} scene(s) in {options.collection} at {options.stac_url}")
    collection_json = source_collection(
        options.stac_url, options.collection, options.timeout, options.sensor.access
    )
    present = folder.item_ids(options.output_collection)
    # A BDC access token goes to the API's own host only (reading/storage.py).
    sensor_options = replace(options.sensor, access=options.sensor.access.for_api(options.stac_url))
    if not options.force:
        _record(echo, folder.forget_failures, present)
    tasks: list[SceneTask] = []
    for item in items:
        try:
            stage_dir = run.stage_dir(options.output_collection, item.id)
        except StacmaskError as exc:
            _fail(
                folder,
                report,
                echo,
                SceneOutcome(
                    item.id, 0.0, stage="item", error_type=type(exc).__name__, message=str(exc)
                ),
                quote=True,
            )
            continue
        if item.id in present and not options.force:
            report.skipped.append(item.id)
            continue
        tasks.append(
            SceneTask(
                item=item.to_dict(transform_hrefs=False),
                source_href=item.get_self_href(),
                item_dir=stage_dir,
                keys=options.keys,
                method=options.method,
                timeout=options.timeout,
                profile=options.profile,
                sensor=sensor_options,
                scratch_dir=run.scratch_dir,
            )
        )
    if report.skipped:
        echo(
            f"skipping {len(report.skipped)} scene(s) already in the catalog (use --force to redo)"
        )
    bar = tqdm(total=len(tasks), unit="scene", disable=not progress or not tasks, leave=False)
    stages = {str(task.item.get("id")): task.item_dir for task in tasks}
    outcomes = _run(tasks, options.workers, options.scheduler)
    try:
        for outcome in outcomes:
            if outcome.item is not None:
                outcome = _publish(folder, options, outcome, collection_json, stages)
            if outcome.item is not None:
                report.done.append(outcome.scene_id)
                bar.write(_describe(outcome) + _warnings(outcome))
            else:
                run.discard(stages[outcome.scene_id])
                _fail(folder, report, bar.write, outcome)
            if outcome.warnings:
                report.warnings[outcome.scene_id] = list(outcome.warnings)
            bar.update(1)
    finally:
        outcomes.close()  # stops the workers now, also when interrupted in this loop's body
        bar.close()


def _publish(
    folder: CatalogFolder,
    options: BuildOptions,
    outcome: SceneOutcome,
    collection_json: dict[str, object],
    stages: dict[str, Path],
) -> SceneOutcome:
    """Put a finished scene into the catalog; a scene that cannot be written (a full disk)
    comes back as failed at the write stage."""
    assert outcome.item is not None
    try:
        item = pystac.Item.from_dict(outcome.item)
        folder.add_item(
            item, options.output_collection, collection_json, staged=stages[outcome.scene_id]
        )
    except (OSError, StacmaskError) as exc:
        return SceneOutcome(
            outcome.scene_id,
            outcome.seconds,
            stage=WRITE_STAGE,
            error_type=type(exc).__name__,
            message=describe_error(exc),
            warnings=outcome.warnings,
        )
    return outcome


def _fail(
    folder: CatalogFolder,
    report: BuildReport,
    echo: Callable[[str], None],
    outcome: SceneOutcome,
    quote: bool = False,
) -> None:
    """Report a failed scene and record it in failures.json (a full disk is said, not raised)."""
    report.failed[outcome.scene_id] = f"[{outcome.stage}] {outcome.message}"
    echo(_describe(outcome, quote) + _warnings(outcome))
    _record(
        echo,
        folder.record_failure,
        outcome.scene_id,
        outcome.stage,
        outcome.error_type,
        outcome.message,
    )


def _record(echo: Callable[[str], None], write: Callable[..., None], *args: object) -> None:
    """Update failures.json; when that fails (a full disk), say so and go on."""
    try:
        write(*args)
    except (OSError, StacmaskError) as exc:
        echo(f"warning: cannot update failures.json: {describe_error(exc)}")
