"""Shared fixtures: paths to ../shared data (a failure under CI when missing, never a skip)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def shared_path(relative: str) -> Path:
    """Path of a file under ../shared; skips locally but FAILS under CI when it is missing."""
    path = SHARED / relative
    if not path.exists():
        message = f"missing shared test data: {path}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def schema_map() -> Path:
    """The offline STAC schema map in ../shared/stac-schemas."""
    return shared_path("stac-schemas/schema-map.yaml")
