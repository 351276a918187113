"""`stacmask build`: search a STAC API, mask every scene, publish each one as it finishes."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pystac

from stacmask.catalog.folder import CatalogFolder, check_id
from stacmask.constants import DEFAULT_COLLECTION, DEFAULT_STAC_URL, BandKeys
from stacmask.errors import BandReadError, ItemError, MetadataError, StacmaskError, redact
from stacmask.output.item import mask_item
from stacmask.pipeline.masking import MaskResult, mask_scene
from stacmask.pipeline.source_search import search_items, source_collection
from stacmask.reading.rasters import RasterBandSource
from stacmask.reading.storage import gdal_path, with_alternates, without_secrets
from stacmask.sensors.inputs import SensorOptions
from stacmask.sensors.registry import DEFAULT_SENSOR, get_sensor


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


@dataclass(frozen=True)
class SceneTask:
    """One scene to mask; plain data so that it can go to a worker process."""

    item: dict[str, Any]
    source_href: str | None
    item_dir: Path
    keys: BandKeys
    method: str | None
    timeout: float
    profile: str = DEFAULT_SENSOR
    sensor: SensorOptions = field(default_factory=SensorOptions)

    @property
    def sensor_options(self) -> SensorOptions:
        """`sensor` with the build's band keys and timeout."""
        return replace(self.sensor, keys=self.keys, timeout=self.timeout)


@dataclass(frozen=True)
class SceneOutcome:
    """What became of a scene: its mask item, or the stage and error that stopped it."""

    scene_id: str
    seconds: float
    item: dict[str, Any] | None = None
    result: MaskResult | None = None
    stage: str = ""
    error_type: str = ""
    message: str = ""


@dataclass
class BuildReport:
    """Counts of a build run, and the failures by scene id."""

    found: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return not self.failed


#: The stage a scene's error is recorded at, by its type (else the stage it was raised in).
ERROR_STAGES: tuple[tuple[type[Exception], str], ...] = (
    (BandReadError, "read"),  # streamed bands are decoded while the method runs
    (MetadataError, "metadata"),
    (ItemError, "item"),
)


def process_scene(task: SceneTask) -> SceneOutcome:
    """Mask one scene into its item folder: sensor -> SceneInputs -> read -> method -> COGs and
    preview -> item. Never raises for a scene's own faults."""
    started = time.monotonic()
    scene_id = str(task.item.get("id"))
    stage = "item"
    try:
        options = task.sensor_options
        source_item = pystac.Item.from_dict(with_alternates(task.item, options.access.alternate))
        check_id(source_item.id)
        sensor = get_sensor(task.profile)
        method = sensor.method(task.method, options)
        stage = "metadata"
        inputs = sensor.scene_inputs(source_item, options).with_hrefs(
            lambda href: gdal_path(href, options.access)
        )
        inputs.require(method.bands, f"the {method.name} method")
        stage = "read"

        def scene_file(suffix: str) -> Path:
            return task.item_dir / f"{source_item.id}_{suffix}"

        mask_path, preview_path = scene_file("mask.tif"), scene_file("preview.png")
        with RasterBandSource(
            inputs, timeout=task.timeout, cache_bands=not method.reads_bands_once
        ) as bands:
            stage = "mask"
            result = mask_scene(
                bands,
                method,
                mask_path,
                preview_path,
                layer_path=(lambda name: scene_file(f"{name}.tif"))
                if options.probability_asset
                else None,
            )
            info = bands.info
        stage = "item"
        item = mask_item(
            source_item,
            inputs,
            method,
            result,
            info,
            mask_path,
            preview_path,
            without_secrets(task.source_href),
        )
        return SceneOutcome(
            scene_id,
            time.monotonic() - started,
            item=item.to_dict(transform_hrefs=False),
            result=result,
        )
    except Exception as exc:  # one scene's fault, whatever it is, never stops the build
        return SceneOutcome(
            scene_id,
            time.monotonic() - started,
            stage=next((name for kind, name in ERROR_STAGES if isinstance(exc, kind)), stage),
            error_type=type(exc).__name__,
            message=redact(str(exc)),
        )


def _describe(outcome: SceneOutcome) -> str:
    if outcome.result is not None:
        r = outcome.result
        return (
            f"done   {outcome.scene_id}: cloud {r.cloud_cover:.2f}%, shadow {r.shadow_cover:.2f}%, "
            f"water {r.water_cover:.2f}% of {r.valid_pixels} valid pixels ({outcome.seconds:.1f} s)"
        )
    return f"FAILED {outcome.scene_id} [{outcome.stage}] {outcome.error_type}: {outcome.message}"


def _run(
    tasks: list[SceneTask], workers: int, scheduler: str | None = None
) -> Iterable[SceneOutcome]:
    if scheduler:
        from stacmask.pipeline.cluster import run_on_dask

        yield from run_on_dask(tasks, scheduler)
        return
    if workers <= 1:
        for task in tasks:
            yield process_scene(task)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[SceneOutcome], SceneTask] = {
            pool.submit(process_scene, task): task for task in tasks
        }
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def build(
    options: BuildOptions, echo: Callable[[str], None] = print, progress: bool = True
) -> BuildReport:
    """Run a build; each finished scene joins the catalog at once, failures go to failures.json."""
    from tqdm import tqdm

    folder = CatalogFolder(options.out)
    folder.ensure()
    report = BuildReport()

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
    tasks: list[SceneTask] = []
    for item in items:
        try:
            item_dir = folder.item_dir(options.output_collection, item.id)
        except StacmaskError as exc:
            folder.record_failure(item.id, "item", type(exc).__name__, str(exc))
            report.failed[item.id] = str(exc)
            echo(f"FAILED {item.id!r} [item] {type(exc).__name__}: {exc}")
            continue
        if item.id in present and not options.force:
            report.skipped.append(item.id)
            continue
        tasks.append(
            SceneTask(
                item=item.to_dict(transform_hrefs=False),
                source_href=item.get_self_href(),
                item_dir=item_dir,
                keys=options.keys,
                method=options.method,
                timeout=options.timeout,
                profile=options.profile,
                sensor=sensor_options,
            )
        )
    if report.skipped:
        echo(
            f"skipping {len(report.skipped)} scene(s) already in the catalog (use --force to redo)"
        )
    bar = tqdm(total=len(tasks), unit="scene", disable=not progress or not tasks, leave=False)
    try:
        for outcome in _run(tasks, options.workers, options.scheduler):
            if outcome.item is not None:
                item = pystac.Item.from_dict(outcome.item)
                folder.add_item(item, options.output_collection, collection_json)
                report.done.append(outcome.scene_id)
            else:
                folder.record_failure(
                    outcome.scene_id, outcome.stage, outcome.error_type, outcome.message
                )
                report.failed[outcome.scene_id] = f"[{outcome.stage}] {outcome.message}"
            bar.write(_describe(outcome))
            bar.update(1)
    finally:
        bar.close()
    return report
