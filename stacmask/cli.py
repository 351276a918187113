"""The `stacmask` command line: thin commands, each calling one library function."""

from __future__ import annotations

import typer

from stacmask import __version__

app = typer.Typer(
    name="stacmask",
    help="Cloud, cloud-shadow and water masks for CBERS-4A WPM scenes, as a static STAC catalog.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    """stacmask: STAC-native cloud masks."""
    if version:
        typer.echo(__version__)
        raise typer.Exit()
