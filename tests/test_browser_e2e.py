"""STAC Browser on `stacmask serve`, driven in Debian's headless Chromium by playwright-core.

Needs what scripts/test sets up: the STAC Browser build (`stacmask browser build`),
/usr/bin/chromium (Debian package) and tests/e2e/node_modules/playwright-core. Missing
pieces skip the test locally and fail it under CI. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stacmask.serve.browser import browser_dist
from tests.conftest import REPO, ServerThread, ci
from tests.serve_catalog import COLLECTION_ID, Scene

CHROMIUM = Path("/usr/bin/chromium")
E2E = REPO / "tests" / "e2e"
ARTIFACTS = REPO / "test-artifacts" / "e2e"


def _require(condition: bool, message: str) -> None:
    if not condition:
        if ci():
            pytest.fail(f"{message} (scripts/test installs it)")
        pytest.skip(message)


def test_stac_browser_shows_items_and_searches(
    api_server: ServerThread, mask_catalog: Path, scenes: tuple[Scene, ...]
) -> None:
    _require(browser_dist() is not None, "STAC Browser not built: run `stacmask browser build`")
    _require(CHROMIUM.is_file(), f"{CHROMIUM} missing: apt-get install chromium")
    node = shutil.which("node")
    _require(node is not None, "node not found")
    _require(
        (E2E / "node_modules" / "playwright-core").is_dir(),
        "playwright-core missing: npm install in tests/e2e",
    )
    assert node is not None
    collection_file = mask_catalog / COLLECTION_ID / "collection.json"
    collection = json.loads(collection_file.read_text())
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    item = scenes[1]
    # A threshold between the 4th and 5th least cloudy items: the search must leave some out.
    clouds = sorted(s.cloud for s in scenes)
    max_cloud = round((clouds[3] + clouds[4]) / 2, 2)
    matching = sorted((s for s in scenes if s.cloud < max_cloud), key=lambda s: s.date)[::-1]
    config = {
        "url": api_server.url,
        "out": str(ARTIFACTS),
        "chromium": str(CHROMIUM),
        "catalogTitle": json.loads((mask_catalog / "catalog.json").read_text())["title"],
        "collectionTitle": collection["title"],
        "collection": COLLECTION_ID,
        "item": item.id,
        "cloud": item.cloud,
        "maxCloud": max_cloud,
        "searchIds": [s.id for s in matching],
        "excludedIds": [s.id for s in scenes if s.cloud >= max_cloud],
    }
    assert config["excludedIds"], "the search must leave something out to prove the filter"
    done = subprocess.run(
        [node, str(E2E / "stac_browser.mjs"), json.dumps(config)],
        cwd=E2E,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert done.returncode == 0, f"{done.stderr}\n{summary}"
    assert len(summary["screenshots"]) == 3
    assert all(Path(shot).stat().st_size > 10_000 for shot in summary["screenshots"])
    # Offline: only base-map tiles may have been asked of another host (and were blocked).
    assert all("tile" in origin for origin in summary["external"]), summary["external"]
