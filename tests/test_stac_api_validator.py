"""The STAC API test suite (stac-api-validator) against `stacmask serve` on 127.0.0.1.

stac-api-validator runs from its own virtual environment (scripts/setup makes it: it pulls a
`stac-validator` shim that would overwrite stac_valid in stacmask's), offline through
../shared/tools/offline_schemas.py, which answers every STAC schema URL from ../shared
(tests/offline_pystac.py adds the schema reads pystac makes with urllib3).
Missing pieces skip the test locally and fail it under CI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from stacmask.serve.browser import cache_dir
from tests.conftest import ci, shared_path
from tests.serve_catalog import COLLECTION_ID, Scene
from tests.stac_server import serve_subprocess

VALIDATOR_VERSION = "0.6.8"
CLASSES = ("core", "features", "item-search", "collections", "filter", "item-search#sort")


def validator_python() -> Path:
    """The interpreter of stac-api-validator's own environment (made by scripts/setup)."""
    return cache_dir() / "tools" / f"stac-api-validator-{VALIDATOR_VERSION}" / "bin" / "python"


def test_stac_api_validator_finds_no_errors(mask_catalog: Path, scenes: tuple[Scene, ...]) -> None:
    python = validator_python()
    if not python.is_file():
        message = f"{python} missing: scripts/setup installs stac-api-validator {VALIDATOR_VERSION}"
        if ci():
            pytest.fail(message)
        pytest.skip(message)
    offline = shared_path("tools/offline_schemas.py")
    west, south, east, north = scenes[3].bbox
    point = {"type": "Point", "coordinates": [(west + east) / 2, (south + north) / 2]}
    with serve_subprocess(mask_catalog) as url:
        wrapper = Path(__file__).with_name("offline_pystac.py")
        command = [str(python), str(wrapper), str(offline), "stac-api-validator"]
        command += ["--root-url", url]
        for name in CLASSES:
            command += ["--conformance", name]
        command += ["--collection", COLLECTION_ID, "--geometry", json.dumps(point)]
        command += ["--validate-pagination", "--log-level", "WARNING"]
        env = {**os.environ, "NO_PROXY": "127.0.0.1"}
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=600, env=env, check=False
        )
    report = done.stdout + done.stderr
    print(report)
    errors = report.split("Errors:", 1)[1].strip() if "Errors:" in report else ""
    assert done.returncode == 0 and not errors.startswith("-"), report[-4000:]
    assert "[offline] missing schemas" not in report, report[-2000:]
