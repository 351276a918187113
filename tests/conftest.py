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
    """A small catalog in the layout `stacmask build` writes (see tests/serve_catalog.py)."""
    import warnings

    from tests.serve_catalog import make_test_catalog

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio: PNG previews have no georeference
        return make_test_catalog(tmp_path_factory.mktemp("catalog") / "masks")


@pytest.fixture(scope="session")
def api_server(mask_catalog: Path) -> Iterator[ServerThread]:
    """`stacmask serve` over `mask_catalog`, on 127.0.0.1, for the whole session."""
    from stacmask.server import create_app

    with ServerThread(create_app(mask_catalog)) as server:
        yield server
