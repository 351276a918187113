"""`stacmask browser build`: the parts that need no npm download."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import requests

from stacmask.errors import BrowserBuildError
from stacmask.serve.browser import (
    CONFIG_TAG_BUILT,
    CONFIG_TAG_IN_SOURCE,
    STAMP_FILE,
    _enable_runtime_config,
    _unpack,
    browser_dist,
    build_browser,
)
from stacmask.serve.server import create_app
from tests.conftest import ServerThread


def test_no_npm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserBuildError, match="npm not found"):
        build_browser(tmp_path / "cache", log=lambda _: None)


def test_cached_build_is_reused_without_npm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STACMASK_CACHE", str(tmp_path))
    assert browser_dist() is None
    dist = tmp_path / "stac-browser"
    from stacmask.constants import STAC_BROWSER_VERSION

    dist = dist / STAC_BROWSER_VERSION / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("<html></html>")
    assert browser_dist() is None  # no stamp: an interrupted build is not a build
    (dist / STAMP_FILE).write_text("{}")
    assert browser_dist() == dist
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm: a cached build needs none
    messages: list[str] = []
    assert build_browser(log=messages.append) == dist
    assert "already built" in messages[0]


def test_runtime_config_tag(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(f"<head>{CONFIG_TAG_IN_SOURCE}</head>")
    _enable_runtime_config(page)
    assert page.read_text() == f"<head>{CONFIG_TAG_BUILT}</head>"
    with pytest.raises(BrowserBuildError, match="layout changed"):
        _enable_runtime_config(page)


def test_unpack_refuses_members_outside(tmp_path: Path) -> None:
    tgz = tmp_path / "evil.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises((BrowserBuildError, tarfile.TarError)):
        _unpack(tgz, dest)
    assert not (tmp_path / "escaped.txt").exists()


def test_served_config_opens_on_the_api(mask_catalog: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text('<script src="./config.js"></script>')
    with ServerThread(create_app(mask_catalog, browser_dir=dist)) as server:
        script = requests.get(server.url + "/browser/config.js", timeout=10)
        assert script.headers["content-type"].startswith("text/javascript")
        assert f'"catalogUrl": "{server.url}/"' in script.text
        page = requests.get(server.url + "/browser", timeout=10)
        assert page.url == server.url + "/browser/" and "config.js" in page.text
