"""The `stacmask` command line: thin commands, each calling one library function.

app.py holds the Typer app; each module registers the commands of one concern.
"""

from stacmask.cli import build, catalog, mask
from stacmask.cli.app import app

__all__ = ["app", "build", "catalog", "mask"]
