"""The `stacmask` command line: thin commands, each calling one library function."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from stacmask import __version__
from stacmask.constants import (
    BAND_KEY_PRESETS,
    DEFAULT_BAND_KEYS,
    DEFAULT_COLLECTION,
    DEFAULT_STAC_URL,
    BandKeys,
)
from stacmask.errors import StacmaskError, StacmaskWarning
from stacmask.methods import DEFAULT_METHOD, METHODS

app = typer.Typer(
    name="stacmask",
    help="Cloud, cloud-shadow and water masks for CBERS-4A WPM scenes, as a static STAC catalog.",
    no_args_is_help=True,
    add_completion=False,
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def parse_band_keys(value: str) -> BandKeys:
    """A preset name (bdc, inpe, aws) or BLUE,GREEN,RED,NIR[,XML] asset keys."""
    if value in BAND_KEY_PRESETS:
        return BAND_KEY_PRESETS[value]
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if len(parts) not in (4, 5):
        presets = ", ".join(BAND_KEY_PRESETS)
        raise typer.BadParameter(
            f"{value!r}: give a preset ({presets}) or BLUE,GREEN,RED,NIR[,XML] asset keys"
        )
    blue, green, red, nir = parts[:4]
    return BandKeys(blue, green, red, nir, parts[4] if len(parts) == 5 else None)


def parse_bbox(value: str | None) -> list[float] | None:
    """minx,miny,maxx,maxy in degrees."""
    if not value:
        return None
    try:
        box = [float(v) for v in value.split(",")]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: bbox must be four numbers minx,miny,maxx,maxy"
        ) from None
    if len(box) != 4 or box[0] > box[2] or box[1] > box[3]:
        raise typer.BadParameter(f"{value!r}: bbox must be minx,miny,maxx,maxy with min <= max")
    return box


def known_methods() -> list[str]:
    """Names of every mask method: the CBERS methods and those of the sensor profiles."""
    from stacmask.profiles import PROFILES

    names = set(METHODS)
    for profile in PROFILES.values():
        names.update(profile.methods)
    return sorted(names)


def check_method(value: str | None) -> str | None:
    """A known mask method name (None: the profile's default)."""
    if value is not None and value not in known_methods():
        raise typer.BadParameter(f"{value!r}: known methods are {', '.join(known_methods())}")
    return value


def check_cbers_method(value: str) -> str:
    """A mask method of the CBERS-4A WPM bands (the `mask` command)."""
    if value not in METHODS:
        raise typer.BadParameter(f"{value!r}: known methods are {', '.join(sorted(METHODS))}")
    return value


def check_profile(value: str) -> str:
    """A known sensor profile name."""
    from stacmask.profiles import PROFILES

    if value not in PROFILES:
        raise typer.BadParameter(f"{value!r}: known profiles are {', '.join(sorted(PROFILES))}")
    return value


def check_fmask_encoding(value: str) -> str:
    """A supported Fmask encoding."""
    from stacmask.fmask import FMASK_ENCODINGS

    if value not in FMASK_ENCODINGS:
        raise typer.BadParameter(f"{value!r}: supported encodings are {', '.join(FMASK_ENCODINGS)}")
    return value


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """stacmask: STAC-native cloud masks."""
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
def build(
    out: Path = typer.Option(
        ..., "--out", help="Catalog folder to create or extend, e.g. catalogs/NAME."
    ),
    stac_url: str = typer.Option(DEFAULT_STAC_URL, "--stac-url", help="STAC API to search."),
    collection: str | None = typer.Option(
        None,
        "--collection",
        help=f"Source collection id (default: the profile's, {DEFAULT_COLLECTION} for CBERS).",
    ),
    bbox: str | None = typer.Option(None, "--bbox", help="minx,miny,maxx,maxy (degrees)."),
    datetime: str | None = typer.Option(
        None, "--datetime", help="Instant or interval, e.g. 2021-01-01/2021-01-31 or 2021-01-01/.."
    ),
    ids: list[str] | None = typer.Option(
        None, "--ids", help="Scene ids (repeat the option or separate with commas)."
    ),
    max_items: int | None = typer.Option(
        None, "--max-items", min=1, help="At most this many scenes."
    ),
    method: str | None = typer.Option(
        None,
        "--method",
        callback=check_method,
        help=f"Mask method (default: the profile's; {DEFAULT_METHOD} for CBERS).",
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Scenes processed in parallel (processes)."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler address (e.g. tcp://host:8786): run the scenes on that cluster; "
        "this process still writes the catalog. Needs stacmask[dask].",
    ),
    force: bool = typer.Option(False, "--force", help="Redo scenes already in the catalog."),
    band_keys: str = typer.Option(
        DEFAULT_BAND_KEYS,
        "--band-keys",
        help="Asset keys: a preset (bdc: BAND1..BAND4 + BAND1_xml; inpe: blue..nir; aws: B1..B4 + "
        "metadata) or BLUE,GREEN,RED,NIR[,XML].",
    ),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="HTTP timeout in seconds."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    profile: str = typer.Option(
        "cbers4a-wpm",
        "--profile",
        callback=check_profile,
        help="Sensor profile: cbers4a-wpm, sentinel2-l1c (s2cloudless) or landsat-c2 (QA_PIXEL).",
    ),
    threshold: float = typer.Option(
        0.4, "--threshold", min=0.0, max=1.0, help="sentinel2-l1c: s2cloudless cloud threshold."
    ),
    resolution: float = typer.Option(
        60.0, "--resolution", min=10.0, help="sentinel2-l1c: working grid and mask pixel (m)."
    ),
    fmask_asset: str | None = typer.Option(
        None, "--fmask-asset", help="sentinel2-l1c: asset key of a per-scene Fmask result."
    ),
    fmask_encoding: str = typer.Option(
        "categorical",
        "--fmask-encoding",
        callback=check_fmask_encoding,
        help="Encoding of the Fmask asset: categorical, python-fmask, hls or force.",
    ),
    probability: bool = typer.Option(
        True,
        "--probability/--no-probability",
        help="sentinel2-l1c: also publish the cloud probability COG.",
    ),
) -> None:
    """Search a STAC API, mask every scene and publish a static STAC catalog of mask COGs."""
    from stacmask.build import BuildOptions
    from stacmask.build import build as run_build
    from stacmask.profiles import get_profile
    from stacmask.sensor_scene import SensorOptions

    sensor_profile = get_profile(profile)
    chosen_method = method or (
        DEFAULT_METHOD if profile == "cbers4a-wpm" else sensor_profile.default_method
    )
    allowed = list(METHODS) if profile == "cbers4a-wpm" else list(sensor_profile.methods)
    if chosen_method not in allowed:
        raise typer.BadParameter(
            f"{chosen_method!r} does not apply to profile {profile} (use {', '.join(allowed)})",
            param_hint="--method",
        )

    if scheduler and workers > 1:
        raise typer.BadParameter("give either --workers or --scheduler, not both")
    scene_ids = [i.strip() for value in ids or [] for i in value.split(",") if i.strip()]
    options = BuildOptions(
        out=out,
        keys=parse_band_keys(band_keys),
        stac_url=stac_url,
        collection=collection or sensor_profile.default_collection,
        bbox=parse_bbox(bbox),
        datetime=datetime,
        ids=scene_ids or None,
        max_items=max_items,
        method=chosen_method,
        workers=workers,
        force=force,
        timeout=timeout,
        profile=profile,
        sensor=SensorOptions(
            threshold=threshold,
            resolution=resolution,
            fmask_asset=fmask_asset,
            fmask_encoding=fmask_encoding,  # type: ignore[arg-type]
            probability_asset=probability,
        ),
        scheduler=scheduler,
    )
    try:
        report = run_build(options, echo=typer.echo, progress=not quiet)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"{len(report.done)} scene(s) added, {len(report.skipped)} already present, "
        f"{len(report.failed)} failed; catalog: {out / 'catalog.json'}"
    )
    if not report.ok:
        typer.secho(
            f"{len(report.failed)} scene(s) failed (see {out / 'failures.json'}); "
            "run the same command again to retry them",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


@app.command()
def mask(
    output: Path = typer.Argument(..., help="Mask COG to write."),
    bands: tuple[Path, Path, Path, Path] | None = typer.Option(
        None, "--bands", help="BLUE GREEN RED NIR band files (DN GeoTIFFs)."
    ),
    metadata: Path | None = typer.Option(
        None, "--metadata", help="INPE XML of the scene (gains, sun angles), with --bands."
    ),
    reflectance: Path | None = typer.Option(
        None,
        "--reflectance",
        help="A 4-band TOA reflectance GeoTIFF (blue, green, red, nir), instead of --bands.",
    ),
    scale: float = typer.Option(
        1.0, "--scale", help="With --reflectance: reflectance = stored value x SCALE."
    ),
    sun_elevation: float | None = typer.Option(
        None, "--sun-elevation", min=-90, max=90, help="Sun elevation, degrees."
    ),
    sun_azimuth: float | None = typer.Option(
        None, "--sun-azimuth", min=0, max=360, help="Sun azimuth, degrees clockwise from north."
    ),
    method: str = typer.Option(
        DEFAULT_METHOD, "--method", callback=check_cbers_method, help="Mask method."
    ),
    preview: Path | None = typer.Option(None, "--preview", help="Also write a preview PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print covers and inputs as JSON."),
) -> None:
    """Mask one scene from local files (the same engine as `build`)."""
    from stacmask.constants import DEFAULT_GAINS
    from stacmask.inputs import Radiometry, read_radiometry
    from stacmask.masking import mask_scene
    from stacmask.methods import get_method
    from stacmask.reading import RasterBandSource

    if (bands is None) == (reflectance is None):
        raise fail("give either --bands BLUE GREEN RED NIR or --reflectance STACK.tif")
    mask_method = get_method(method)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StacmaskWarning)
            if reflectance is not None:
                hrefs, indexes = [str(reflectance)] * 4, (1, 2, 3, 4)
                radiometry = Radiometry((scale,) * 4, "reflectance", None, None, None)
            else:
                assert bands is not None
                hrefs, indexes = [str(b) for b in bands], (1, 1, 1, 1)
                radiometry = read_radiometry(str(metadata) if metadata else None, None)
            if sun_elevation is not None or sun_azimuth is not None:
                radiometry = Radiometry(
                    radiometry.gains,
                    radiometry.calibration,
                    sun_elevation if sun_elevation is not None else radiometry.sun_elevation,
                    sun_azimuth if sun_azimuth is not None else radiometry.sun_azimuth,
                    radiometry.acquired,
                )
        from tqdm import tqdm

        with (
            tqdm(
                desc=f"{method} mask", unit=" rows", unit_scale=True, leave=False, disable=as_json
            ) as bar,
            RasterBandSource(
                hrefs,
                radiometry.scene_info(),
                indexes=indexes,
                progress=bar.update,
                cache_bands=not mask_method.reads_bands_once,
            ) as source,
        ):
            result = mask_scene(source, mask_method, output, preview)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        report = result.to_dict()
        report.update(
            output=str(output),
            bands=hrefs,
            metadata=str(metadata) if metadata else None,
            gains=None if reflectance is not None else list(radiometry.gains),
            default_gains_used=radiometry.gains == DEFAULT_GAINS,
            warnings=[str(w.message) for w in caught],
        )
        typer.echo(json.dumps(report, indent=2))
    else:
        for w in caught:
            typer.secho(f"warning: {w.message}", err=True, fg=typer.colors.YELLOW)
        typer.echo(
            f"{output}: cloud {result.cloud_cover:.2f}%, shadow {result.shadow_cover:.2f}%, "
            f"water {result.water_cover:.2f}% of {result.valid_pixels} valid pixels "
            f"({result.method} method, {result.calibration} calibration)"
        )


@app.command()
def evaluate(
    predicted: Path = typer.Argument(..., help="Predicted mask (class codes)."),
    truth: Path = typer.Argument(..., help="Labelled truth (class codes, 255 unlabelled)."),
    labels: str = typer.Option(
        "full",
        "--labels",
        help="What the truth labels: full (every class), cloud (cloud only: 4 cloud, other "
        "codes not cloud) or shadow (shadow only: 2 shadow). One-class truth scores that "
        "class's precision, recall, F1 and cover error only.",
    ),
    complete: bool = typer.Option(
        False,
        "--complete",
        help="With --labels cloud/shadow: unlabelled truth (255) is not the class wherever the "
        "prediction has data (a painting taken as complete, e.g. Layton's shadow).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Score a mask against a labelled truth: confusion, accuracy, kappa, F1, cover errors."""
    from stacmask.evaluate import LABELS, SCORED, evaluate_class_files, evaluate_files

    if labels not in LABELS:
        raise fail(f"--labels must be one of {', '.join(LABELS)}, not {labels!r}")
    try:
        if labels != "full":
            one = evaluate_class_files(
                predicted,
                truth,
                "cloud" if labels == "cloud" else "shadow",
                complete=complete,
            )
            if as_json:
                typer.echo(json.dumps(one.to_dict(), indent=2))
                return
            typer.echo(
                f"{one.pixels} {labels}-labelled pixels; {labels} precision {one.precision:.4f}"
                f"  recall {one.recall:.4f}  F1 {one.f1:.4f}\n"
                f"{labels} cover {one.cover_predicted:.2f}% (true {one.cover_true:.2f}%, "
                f"error {one.cover_error:+.2f})"
            )
            return
        scores = evaluate_files(predicted, truth)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(scores.to_dict(), indent=2))
        return
    typer.echo(f"{scores.pixels} labelled pixels; rows truth, columns predicted")
    typer.echo(f"{'':>8}" + "".join(f"{name:>12}" for name in SCORED))
    for name, row in zip(SCORED, scores.confusion, strict=True):
        typer.echo(f"{name:>8}" + "".join(f"{v:>12}" for v in row))
    typer.echo(
        f"overall accuracy {scores.overall_accuracy:.4f}  kappa {scores.kappa:.4f}\n"
        f"cloud  F1 {scores.cloud_f1:.4f}  cover {scores.cloud_cover_predicted:.2f}% "
        f"(true {scores.cloud_cover_true:.2f}%, error {scores.cloud_cover_error:+.2f})\n"
        f"shadow F1 {scores.shadow_f1:.4f}  cover {scores.shadow_cover_predicted:.2f}% "
        f"(true {scores.shadow_cover_true:.2f}%, error {scores.shadow_cover_error:+.2f})"
    )


@app.command()
def validate(
    catalog: Path = typer.Argument(..., help="Catalog folder or catalog.json."),
    schema_map: Path | None = typer.Option(
        None,
        "--schema-map",
        help="YAML mapping schema URLs to local files, for offline validation.",
    ),
) -> None:
    """Validate every object of a catalog; exit non-zero on any problem."""
    from stacmask.validate import validate_catalog

    report = validate_catalog(catalog, schema_map)
    for problem in report.problems:
        typer.secho(str(problem), err=True, fg=typer.colors.RED)
    if not report.ok:
        raise fail(f"{len(report.problems)} problem(s) in {report.checked} object(s)", 1)
    typer.echo(f"valid: {report.checked} STAC object(s) in {catalog}")


@app.command()
def demo(
    out: Path = typer.Option(Path("catalogs/demo"), "--out", help="Catalog folder to write."),
    scenes: int = typer.Option(3, "--scenes", min=1, max=20, help="Number of sample scenes."),
    size: int = typer.Option(1024, "--size", min=256, max=8192, help="Scene size in pixels."),
    method: str = typer.Option(
        DEFAULT_METHOD, "--method", callback=check_method, help="Mask method."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Scenes processed in parallel."),
) -> None:
    """Build a catalog from embedded sample scenes served on 127.0.0.1 (no network needed)."""
    from stacmask.demo import run_demo

    try:
        report = run_demo(
            out, scenes=scenes, size=size, method=method, workers=workers, echo=typer.echo
        )
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"\n{len(report.done)} scene(s) added, {len(report.skipped)} already present, "
        f"{len(report.failed)} failed.\n"
        f"Catalog: {out / 'catalog.json'}\n"
        f"Validate it:  stacmask validate {out}\n"
        "  (offline, add --schema-map FILE mapping schema URLs to local copies)\n"
        f"Browse it:    stacmask serve {out}   then open the printed /browser/ address"
    )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def geoparquet(
    catalog: Path = typer.Argument(..., help="Catalog folder or catalog.json."),
    output: Path = typer.Argument(..., help="stac-geoparquet file to write, e.g. items.parquet."),
    ndjson: Path | None = typer.Option(
        None, "--ndjson", help="Also write the items as NDJSON (for `pypgstac load items`)."
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="URL the catalog folder is served from: hrefs become URLs under it "
        "(default: absolute file paths).",
    ),
) -> None:
    """Export every item of a catalog to stac-geoparquet, queryable with DuckDB or GeoPandas."""
    from stacmask.geoparquet import export_items

    try:
        report = export_items(catalog, output, ndjson=ndjson, base_url=base_url)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"{output}: {report.items} item(s) of {', '.join(report.collections)}"
        + (f"; NDJSON: {ndjson}" if ndjson else "")
    )


# --- serve / search / export / browser (issue 4) ---------------------------------------------
CatalogArg = Annotated[Path, typer.Argument(help="Catalog folder (with catalog.json).")]
BboxOpt = Annotated[str | None, typer.Option(help="west,south,east,north in degrees.")]
IntersectsOpt = Annotated[str | None, typer.Option(help="GeoJSON geometry (text).")]
DatetimeOpt = Annotated[
    str | None,
    typer.Option(help="Instant, year, month, day or interval: 2021-01, 2021-01-05, 2021-01/.."),
]
IdsOpt = Annotated[str | None, typer.Option(help="Comma-separated item ids.")]
CollectionsOpt = Annotated[str | None, typer.Option(help="Comma-separated collection ids.")]
FilterOpt = Annotated[
    str | None, typer.Option(help='CQL2 filter, text or JSON, e.g. "eo:cloud_cover < 15".')
]
SortbyOpt = Annotated[
    str | None,
    typer.Option(help="Sort fields, e.g. +eo:cloud_cover,-datetime (default: newest first)."),
]
MaxCloudOpt = Annotated[
    float | None, typer.Option(help="Shortcut: keep items with eo:cloud_cover <= this percentage.")
]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="At most this many items.")]


def _select(catalog: Path, limit: int | None, **options: Any) -> tuple[Any, list[Any]]:
    """Load the catalog and run one selection (stacmask.query, as the server does)."""
    from stacmask.query import CatalogIndex, build_search, select

    index = CatalogIndex.load(catalog)
    entries = select(index, build_search(**options))
    return index, entries[:limit] if limit is not None else entries


@app.command()
def search(
    catalog: CatalogArg,
    bbox: BboxOpt = None,
    intersects: IntersectsOpt = None,
    datetime: DatetimeOpt = None,
    ids: IdsOpt = None,
    collections: CollectionsOpt = None,
    filter: FilterOpt = None,
    sortby: SortbyOpt = None,
    max_cloud: MaxCloudOpt = None,
    limit: LimitOpt = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a GeoJSON FeatureCollection of the items, not ids."),
    ] = False,
) -> None:
    """Search a local catalog without a server; print matching item ids (or JSON)."""
    from stacmask.query import item_with_local_paths

    try:
        _, entries = _select(
            catalog,
            limit,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            ids=ids,
            collections=collections,
            filter=filter,
            sortby=sortby,
            max_cloud=max_cloud,
        )
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        features = [item_with_local_paths(entry) for entry in entries]
        typer.echo(json.dumps({"type": "FeatureCollection", "features": features}, indent=2))
    else:
        for entry in entries:
            typer.echo(entry.id)


@app.command()
def export(
    catalog: CatalogArg,
    out: Annotated[
        Path, typer.Argument(help="Folder to write <item-id>_mask.tif and index.geojson into.")
    ],
    bbox: BboxOpt = None,
    intersects: IntersectsOpt = None,
    datetime: DatetimeOpt = None,
    ids: IdsOpt = None,
    collections: CollectionsOpt = None,
    filter: FilterOpt = None,
    sortby: SortbyOpt = None,
    max_cloud: MaxCloudOpt = None,
    limit: LimitOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Replace files already in OUT.")] = False,
) -> None:
    """Copy the masks of the selected items out as GeoTIFFs, with an index.geojson."""
    from stacmask.export import export_masks

    try:
        index, entries = _select(
            catalog,
            limit,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            ids=ids,
            collections=collections,
            filter=filter,
            sortby=sortby,
            max_cloud=max_cloud,
        )
        result = export_masks(index, entries, out, overwrite=overwrite)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{len(result.masks)} mask(s) and {result.index.name} written to {out}")


@app.command()
def serve(
    catalog: CatalogArg,
    host: Annotated[
        str, typer.Option(help="Address to bind; the default is reachable from this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve a catalog: STAC API at /, files at /catalog/, STAC Browser at /browser/."""
    import uvicorn

    from stacmask.browser import browser_dist
    from stacmask.server import create_app

    try:
        server_app = create_app(catalog)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"STAC API      http://{shown}:{port}/")
    typer.echo(f"static files  http://{shown}:{port}/catalog/catalog.json")
    if browser_dist() is not None:
        typer.echo(f"STAC Browser  http://{shown}:{port}/browser/")
    else:
        typer.echo("STAC Browser  not built: run `stacmask browser build`")
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: bound to {host}: other machines can read this catalog", err=True)
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


browser_app = typer.Typer(help="STAC Browser for `stacmask serve`.", no_args_is_help=True)
app.add_typer(browser_app, name="browser")


@browser_app.command("build")
def browser_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if already built.")] = False,
) -> None:
    """Build STAC Browser from npm into the cache ($STACMASK_CACHE or ~/.cache/stacmask)."""
    from stacmask.browser import build_browser

    try:
        build_browser(force=force, log=lambda message: typer.echo(message, err=True))
    except StacmaskError as exc:
        raise fail(str(exc)) from exc


@browser_app.command("path")
def browser_path() -> None:
    """Print the folder of the built STAC Browser (exit 1 when not built)."""
    from stacmask.browser import browser_dist

    dist = browser_dist()
    if dist is None:
        typer.echo("STAC Browser is not built: run `stacmask browser build`", err=True)
        raise typer.Exit(code=1)
    typer.echo(str(dist))
