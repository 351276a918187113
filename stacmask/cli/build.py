"""`stacmask build` and `stacmask demo`: masking the scenes of a STAC API into a catalog."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stacmask.cli.app import app, fail, parse_bbox
from stacmask.constants import (
    BAND_KEY_PRESETS,
    DEFAULT_BAND_KEYS,
    DEFAULT_COLLECTION,
    DEFAULT_STAC_URL,
    BandKeys,
)
from stacmask.errors import ProfileError, StacmaskError
from stacmask.methods.registry import DEFAULT_METHOD, METHODS
from stacmask.reading.storage import ACCESS_TOKEN_ENV, SIGNERS, StorageAccess
from stacmask.sensors.registry import DEFAULT_SENSOR, get_sensor, sensor_names


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


def known_methods() -> list[str]:
    """Names of every mask method: the registry's and those of every sensor."""
    names = set(METHODS)
    for name in sensor_names():
        try:
            names.update(get_sensor(name).methods)
        except ProfileError:
            continue  # a broken plugin is reported when it is asked for
    return sorted(names)


def check_method(value: str | None) -> str | None:
    """A known mask method name (None: the profile's default)."""
    if value is not None and value not in known_methods():
        raise typer.BadParameter(f"{value!r}: known methods are {', '.join(known_methods())}")
    return value


def check_profile(value: str) -> str:
    """A known sensor (a built-in or an installed plugin) that loads."""
    if value not in sensor_names():
        raise typer.BadParameter(f"{value!r}: known profiles are {', '.join(sensor_names())}")
    try:
        get_sensor(value)
    except ProfileError as exc:
        raise typer.BadParameter(str(exc)) from exc
    return value


def check_fmask_encoding(value: str) -> str:
    """A supported Fmask encoding."""
    from stacmask.methods.fmask import FMASK_ENCODINGS

    if value not in FMASK_ENCODINGS:
        raise typer.BadParameter(f"{value!r}: supported encodings are {', '.join(FMASK_ENCODINGS)}")
    return value


def parse_query(value: str | None) -> str | None:
    """A STAC query filter: a JSON object of property -> {operator: value}."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise typer.BadParameter('give a JSON object, e.g. {"cbers:data_type": {"eq": "L4"}}')
    return value


def check_signer(value: str | None) -> str | None:
    """A known signing service."""
    if value is not None and value not in SIGNERS:
        raise typer.BadParameter(f"{value!r}: known signers are {', '.join(SIGNERS)}")
    if value == "planetary-computer":
        try:
            import planetary_computer  # noqa: F401
        except ImportError as exc:
            raise typer.BadParameter(
                "needs the planetary-computer package: pip install 'stacmask[planetary-computer]'"
            ) from exc
    return value


@app.command()
def build(
    out: Path = typer.Option(
        ..., "--out", help="Catalog folder to create or extend, e.g. catalogs/NAME."
    ),
    stac_url: str = typer.Option(DEFAULT_STAC_URL, "--stac-url", help="STAC API to search."),
    collection: str | None = typer.Option(
        None,
        "--collection",
        help=f"Source collection id (default: the sensor's, {DEFAULT_COLLECTION} for CBERS).",
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
        help=f"Mask method (default: the sensor's; {DEFAULT_METHOD} for CBERS).",
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
        DEFAULT_SENSOR,
        "--profile",
        callback=check_profile,
        help="Sensor: cbers4a-wpm, sentinel2-l1c (s2cloudless), landsat-c2 (QA_PIXEL) or an "
        "installed plugin's (docs/sensors.md).",
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
        help="Also publish the method's cloud probability COG (hybrid, s2cloudless).",
    ),
    query: str | None = typer.Option(
        None,
        "--query",
        callback=parse_query,
        help='STAC query filter sent with the search, e.g. \'{"cbers:data_type": {"eq": "L4"}}\'.',
    ),
    alternate: str | None = typer.Option(
        None,
        "--alternate",
        help="Read each asset's alternate href of this name where it has one (e.g. s3).",
    ),
    sign: str | None = typer.Option(
        None,
        "--sign",
        callback=check_signer,
        help="Sign asset hrefs before reading them: planetary-computer (SAS tokens; token "
        "endpoint PC_SDK_SAS_URL, key PC_SDK_SUBSCRIPTION_KEY).",
    ),
    access_token: str | None = typer.Option(
        None,
        "--access-token",
        envvar=ACCESS_TOKEN_ENV,
        show_envvar=True,
        help="Brazil Data Cube access token for non-public collections: added to the search "
        "and to asset hrefs on the API's host, never written into the catalog.",
    ),
) -> None:
    """Search a STAC API, mask every scene and publish a static STAC catalog of mask COGs."""
    from stacmask.pipeline.build import BuildInterrupted, BuildOptions, stop_on_signals
    from stacmask.pipeline.build import build as run_build
    from stacmask.sensors.inputs import SensorOptions

    sensor = get_sensor(profile)
    chosen_method = method or sensor.default_method
    if chosen_method not in sensor.methods:
        raise typer.BadParameter(
            f"{chosen_method!r} does not apply to sensor {profile} "
            f"(use {', '.join(sensor.methods)})",
            param_hint="--method",
        )

    if scheduler and workers > 1:
        raise typer.BadParameter("give either --workers or --scheduler, not both")
    scene_ids = [i.strip() for value in ids or [] for i in value.split(",") if i.strip()]
    options = BuildOptions(
        out=out,
        keys=parse_band_keys(band_keys),
        stac_url=stac_url,
        collection=collection or sensor.default_collection,
        bbox=parse_bbox(bbox),
        datetime=datetime,
        ids=scene_ids or None,
        max_items=max_items,
        query=json.loads(query) if query else None,
        method=chosen_method,
        workers=workers,
        force=force,
        timeout=timeout,
        profile=profile,
        sensor=SensorOptions(
            threshold=threshold,
            resolution=resolution,
            fmask_asset=fmask_asset,
            fmask_encoding=fmask_encoding,
            probability_asset=probability,
            access=StorageAccess(
                alternate=alternate or None,
                sign="planetary-computer" if sign else None,
                access_token=access_token or None,
            ),
        ),
        scheduler=scheduler,
    )
    try:
        with stop_on_signals():
            report = run_build(options, echo=typer.echo, progress=not quiet)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    except BuildInterrupted as exc:  # the build said what was done and how to resume
        raise typer.Exit(128 + exc.signum) from None
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
    from stacmask.demo.run import run_demo

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
