"""Commands over a built catalog: validate, geoparquet, search, export, serve, browser."""

from __future__ import annotations

import json
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
    """Load the catalog and run one selection (stacmask.serve.query, as the server does)."""
    from stacmask.serve.query import CatalogIndex, build_search, select

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
    from stacmask.serve.query import item_with_local_paths

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
    from stacmask.catalog.export import export_masks

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
    uvicorn.run(server_app, host=host, port=port, log_level="warning")


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
