"""`python -m stacmask` runs the command-line interface."""

from stacmask.cli import app

app()
