"""Shared fixtures: paths to ../shared data (a failure under CI when missing, never a skip)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

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


# --- serve / search / export (issue 4) --------------------------------------------------------
def ci() -> bool:
    """True under CI, where a missing tool is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class ServerThread:
    """An ASGI app served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", backlog=512)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def mask_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real catalog: `stacmask build` over a source STAC API on 127.0.0.1 (serve_catalog.py)."""
    from tests.serve_catalog import build_mask_catalog, make_source_catalog

    reflectance = shared_path("data/labelled/sentinel2_reflectance.tif")
    root = tmp_path_factory.mktemp("catalog")
    source = make_source_catalog(root / "source", reflectance)
    return build_mask_catalog(source, root / "masks")


@pytest.fixture(scope="session")
def scenes(mask_catalog: Path) -> tuple[Any, ...]:
    """The built items of `mask_catalog` (tests.serve_catalog.Scene), oldest first."""
    from tests.serve_catalog import load_scenes

    return load_scenes(mask_catalog)


@pytest.fixture(scope="session")
def api_server(mask_catalog: Path) -> Iterator[ServerThread]:
    """`stacmask serve` over `mask_catalog`, on 127.0.0.1, for the whole session."""
    from stacmask.serve.server import create_app

    with ServerThread(create_app(mask_catalog)) as server:
        yield server
