"""The `stacmask` Typer app, its version option and the helpers every command shares."""

from __future__ import annotations

import typer

from stacmask import __version__

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


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """stacmask: STAC-native cloud masks."""
    if version:
        typer.echo(__version__)
        raise typer.Exit()
