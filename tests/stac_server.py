"""`stacmask serve` in a subprocess on 127.0.0.1, as a user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    """A TCP port free on 127.0.0.1 (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ServedCatalog:
    """A running `stacmask serve`: its root URL and its process."""

    url: str
    process: subprocess.Popen[str]

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.process.poll() is None


@contextmanager
def serve_process(catalog: Path, *options: str, timeout: float = 60) -> Iterator[ServedCatalog]:
    """Start `stacmask serve CATALOG` on a free port, wait until it answers, stop it after."""
    port = free_port()
    command = [sys.executable, "-m", "stacmask", "serve", str(catalog), "--port", str(port)]
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(url, timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    raise RuntimeError(f"stacmask serve did not start:\n{output}") from None
                time.sleep(0.1)
        yield ServedCatalog(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serve_subprocess(catalog: Path, *options: str) -> Iterator[str]:
    """`serve_process`, yielding just the root URL."""
    with serve_process(catalog, *options) as served:
        yield served.url
