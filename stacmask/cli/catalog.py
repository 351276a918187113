"""Commands over a built catalog: validate, geoparquet, search, export, publish, serve, browser."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from stacmask.cli.app import app, fail
from stacmask.errors import StacmaskError


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
    from stacmask.catalog.validate import validate_catalog

    report = validate_catalog(catalog, schema_map)
    for problem in report.problems:
        typer.secho(str(problem), err=True, fg=typer.colors.RED)
    if not report.ok:
        raise fail(f"{len(report.problems)} problem(s) in {report.checked} object(s)", 1)
    typer.echo(f"valid: {report.checked} STAC object(s) in {catalog}")


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
    from stacmask.catalog.geoparquet import export_items

    try:
        report = export_items(catalog, output, ndjson=ndjson, base_url=base_url)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"{output}: {report.items} item(s) of {', '.join(report.collections)}"
        + (f"; NDJSON: {ndjson}" if ndjson else "")
    )


# --- search / export: the selection options, defined once ----------------------------------
CatalogArg = Annotated[Path, typer.Argument(help="Catalog folder (with catalog.json).")]


@dataclass(frozen=True)
class Selection:
    """What `stacmask search` and `export` select: the API's search parameters as text."""

    bbox: str | None = None
    intersects: str | None = None
    datetime: str | None = None
    ids: str | None = None
    collections: str | None = None
    filter: str | None = None
    sortby: str | None = None
    max_cloud: float | None = None
    limit: int | None = None


#: The command-line options of a `Selection`, by field.
SELECTION_OPTIONS: dict[str, Any] = {
    "bbox": Annotated[str | None, typer.Option(help="west,south,east,north in degrees.")],
    "intersects": Annotated[str | None, typer.Option(help="GeoJSON geometry (text).")],
    "datetime": Annotated[
        str | None,
        typer.Option(help="Instant, year, month, day or interval: 2021-01, 2021-01-05, 2021-01/.."),
    ],
    "ids": Annotated[str | None, typer.Option(help="Comma-separated item ids.")],
    "collections": Annotated[str | None, typer.Option(help="Comma-separated collection ids.")],
    "filter": Annotated[
        str | None, typer.Option(help='CQL2 filter, text or JSON, e.g. "eo:cloud_cover < 15".')
    ],
    "sortby": Annotated[
        str | None,
        typer.Option(help="Sort fields, e.g. +eo:cloud_cover,-datetime (default: newest first)."),
    ],
    "max_cloud": Annotated[
        float | None,
        typer.Option(help="Shortcut: keep items with eo:cloud_cover <= this percentage."),
    ],
    "limit": Annotated[int | None, typer.Option(min=1, help="At most this many items.")],
}


def with_selection(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the selection options; it receives them as one `selection` argument."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "selection"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in SELECTION_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        chosen = {name: kwargs.pop(name) for name in SELECTION_OPTIONS}
        command(selection=Selection(**chosen), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    return wrapper


def _select(catalog: Path, selection: Selection) -> tuple[Any, list[Any]]:
    """Open the catalog's index and run one selection (stacmask.serve.query, as the server)."""
    from stacmask.catalog.index import CatalogIndex
    from stacmask.serve.query import build_search, select

    options = {k: v for k, v in asdict(selection).items() if k != "limit"}
    search = build_search(**options)  # checks the query before the index is opened
    index = CatalogIndex(catalog)
    hits = select(index, search)
    return index, hits[: selection.limit] if selection.limit is not None else hits


@app.command()
@with_selection
def search(
    catalog: CatalogArg,
    selection: Selection,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a GeoJSON FeatureCollection of the items, not ids."),
    ] = False,
) -> None:
    """Search a local catalog without a server; print matching item ids (or JSON)."""
    from stacmask.serve.query import item_with_local_paths, load

    try:
        index, hits = _select(catalog, selection)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        features = [item_with_local_paths(entry) for entry in load(index, hits)]
        typer.echo(json.dumps({"type": "FeatureCollection", "features": features}, indent=2))
    else:
        for hit in hits:
            typer.echo(hit.id)


@app.command()
@with_selection
def export(
    catalog: CatalogArg,
    out: Annotated[
        Path, typer.Argument(help="Folder to write <item-id>_mask.tif and index.geojson into.")
    ],
    selection: Selection,
    overwrite: Annotated[bool, typer.Option(help="Replace files already in OUT.")] = False,
) -> None:
    """Copy the masks of the selected items out as GeoTIFFs, with an index.geojson."""
    from stacmask.catalog.export import export_masks
    from stacmask.serve.query import load

    try:
        index, hits = _select(catalog, selection)
        result = export_masks(index.root, load(index, hits), out, overwrite=overwrite)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{len(result.masks)} mask(s) and {result.index.name} written to {out}")


@app.command()
def publish(
    catalog: CatalogArg,
    pgstac: Annotated[
        str,
        typer.Option(
            "--pgstac",
            help="PostgreSQL DSN of a pgstac database, e.g. postgresql://user:pw@host/db "
            "(or set PGSTAC_DSN).",
            envvar="PGSTAC_DSN",
        ),
    ],
    base_url: Annotated[
        str | None,
        typer.Option(help="URL the catalog folder is served from: hrefs become URLs under it."),
    ] = None,
) -> None:
    """Load (upsert) the catalog's collections and items into pgstac; run again after a build."""
    from stacmask.catalog.pgstac import publish_catalog

    try:
        report = publish_catalog(catalog, pgstac, base_url=base_url)
    except StacmaskError as exc:
        raise fail(str(exc)) from exc
    typer.echo(
        f"pgstac: {report.collections} collection(s), {report.loaded} item(s) loaded, "
        f"{report.unchanged} unchanged"
    )


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

    from stacmask.serve.browser import browser_dist
    from stacmask.serve.server import create_app

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
    # h11 parses any request target and lets the app answer 414 for an overlong one (httptools,
    # when installed, would drop such requests with a bare 400).
    uvicorn.run(server_app, host=host, port=port, log_level="warning", http="h11")


browser_app = typer.Typer(help="STAC Browser for `stacmask serve`.", no_args_is_help=True)
app.add_typer(browser_app, name="browser")


@browser_app.command("build")
def browser_build(
    force: Annotated[bool, typer.Option(help="Rebuild even if already built.")] = False,
) -> None:
    """Build STAC Browser from npm into the cache ($STACMASK_CACHE or ~/.cache/stacmask)."""
    from stacmask.serve.browser import build_browser

    try:
        build_browser(force=force, log=lambda message: typer.echo(message, err=True))
    except StacmaskError as exc:
        raise fail(str(exc)) from exc


@browser_app.command("path")
def browser_path() -> None:
    """Print the folder of the built STAC Browser (exit 1 when not built)."""
    from stacmask.serve.browser import browser_dist

    dist = browser_dist()
    if dist is None:
        typer.echo("STAC Browser is not built: run `stacmask browser build`", err=True)
        raise typer.Exit(code=1)
    typer.echo(str(dist))
