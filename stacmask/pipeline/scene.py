"""One scene of a build: the task sent to a worker, what became of it, and the masking itself.

`process_scene` runs wherever the scene runs (the build process, a worker process, a Dask
worker): it writes the scene's files into the task's folder (a staging folder the catalog
publishes atomically, catalog/runs.py) and never raises for the scene's own faults.
"""

from __future__ import annotations

import errno
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pystac

from stacmask.catalog.folder import check_id
from stacmask.constants import BandKeys
from stacmask.errors import (
    BandReadError,
    EmptySceneError,
    ItemError,
    MetadataError,
    StacmaskWarning,
    as_hrefs,
    redact,
)
from stacmask.output.item import mask_item
from stacmask.pipeline.masking import MaskResult, mask_scene
from stacmask.reading.rasters import RasterBandSource
from stacmask.reading.storage import gdal_path, with_alternates, without_secrets
from stacmask.sensors.inputs import SensorOptions
from stacmask.sensors.registry import DEFAULT_SENSOR, get_sensor


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
    #: Folder for the scene's temporary files (the build's own, removed when it ends); None:
    #: the system's ($TMPDIR).
    scratch_dir: Path | None = None

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
    #: StacmaskWarnings raised while masking the scene (suspicious gains, DNs, ...).
    warnings: tuple[str, ...] = ()


#: The stage a scene's error is recorded at, by its type (else the stage it was raised in).
ERROR_STAGES: tuple[tuple[type[Exception], str], ...] = (
    (BandReadError, "read"),  # streamed bands are decoded while the method runs
    (MetadataError, "metadata"),
    (ItemError, "item"),
    (EmptySceneError, "mask"),
)


#: What a scene's message starts with when a disk filled up (scratch, mask, preview).
NO_SPACE = "no space left on device"


@contextmanager
def temporary_files_in(folder: Path | None) -> Iterator[None]:
    """Python's temporary files (tempfile: the methods' scratch folders, scratch rasters) go to
    `folder` while the scene runs (nothing changes when it is None or missing)."""
    if folder is None or not folder.is_dir():
        yield
        return
    before, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def process_scene(task: SceneTask) -> SceneOutcome:
    """Mask one scene into its item folder: sensor -> SceneInputs -> read -> method -> COGs and
    preview -> item. Never raises for a scene's own faults; its StacmaskWarnings go with it."""
    with (
        warnings.catch_warnings(record=True) as caught,
        temporary_files_in(task.scratch_dir),
    ):
        warnings.simplefilter("always", StacmaskWarning)
        outcome = _process_scene(task)
    said = [as_hrefs(str(w.message)) for w in caught if issubclass(w.category, StacmaskWarning)]
    return replace(outcome, warnings=tuple(dict.fromkeys(said)))


def _process_scene(task: SceneTask) -> SceneOutcome:
    started = time.monotonic()
    scene_id = str(task.item.get("id"))
    stage = "item"
    try:
        options = task.sensor_options
        source_item = pystac.Item.from_dict(with_alternates(task.item, options.access.alternate))
        check_id(source_item.id)
        if source_item.geometry is None:
            raise ItemError(
                f"item {source_item.id} has no geometry (null): its mask item needs the "
                "scene's footprint"
            )
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
        if result.valid_pixels == 0:
            raise EmptySceneError(
                f"scene {source_item.id}: no valid pixels (every band holds no data); not published"
            )
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
            message=redact(describe_error(exc)),
        )


def is_no_space(exc: BaseException) -> bool:
    """True for a full disk: ENOSPC, or GDAL's own words for it somewhere in the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current).lower()
        if "no space left on device" in text or "free disk space available is" in text:
            return True  # the second: GDAL's check before it writes a GeoTIFF
        current = current.__cause__ or current.__context__
    return False


def describe_error(exc: BaseException) -> str:
    """The message recorded for a scene's error; a full disk says so first."""
    text = str(exc) or repr(exc)
    if is_no_space(exc) and not text.lower().startswith(NO_SPACE):
        return f"{NO_SPACE}: {text}"
    return text
