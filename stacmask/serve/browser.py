"""STAC Browser for `stacmask serve`: built from its npm package into stacmask's cache.

The npm package @radiantearth/stac-browser ships source only. `build_browser` packs it with
npm, installs its dependencies (plus the ol-stac release a working build needs), switches
on the runtime config script (`config.js`, which `stacmask serve` writes per request so the
app opens on the served API) and builds it with hash history and relative paths, so the
result works from any URL prefix. Nothing of it is ever committed: it lives in
`$STACMASK_CACHE/stac-browser/<version>/dist` (default `~/.cache/stacmask`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from stacmask.constants import (
    CACHE_ENV,
    OL_STAC_VERSION,
    STAC_BROWSER_PACKAGE,
    STAC_BROWSER_VERSION,
)
from stacmask.errors import BrowserBuildError

#: The commented-out runtime config tag in STAC Browser's public/index.html, and what
#: replaces it: a plain script, so the settings exist before the deferred app scripts run.
CONFIG_TAG_IN_SOURCE = '<!-- <script defer="defer" src="/config.js"></script> -->'
CONFIG_TAG_BUILT = '<script src="./config.js"></script>'
STAMP_FILE = "stacmask-build.json"
#: Build options, passed as STAC Browser's SB_* environment variables.
BUILD_ENV = {"SB_historyMode": "hash", "SB_pathPrefix": "./", "SB_noSourceMaps": "true"}


def cache_dir() -> Path:
    """stacmask's cache folder: $STACMASK_CACHE, else $XDG_CACHE_HOME/stacmask or ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stacmask"


def browser_home(cache: Path | None = None) -> Path:
    """Folder of this STAC Browser version in the cache."""
    return (cache or cache_dir()) / "stac-browser" / STAC_BROWSER_VERSION


def browser_dist(cache: Path | None = None) -> Path | None:
    """The built STAC Browser (folder with index.html), or None when not built yet."""
    dist = browser_home(cache) / "dist"
    return dist if (dist / "index.html").is_file() and (dist / STAMP_FILE).is_file() else None


def build_browser(
    cache: Path | None = None, *, force: bool = False, log: Callable[[str], None] = print
) -> Path:
    """Build STAC Browser into the cache (skipped when already built) and return its folder."""
    existing = browser_dist(cache)
    if existing is not None and not force:
        log(f"STAC Browser {STAC_BROWSER_VERSION} already built: {existing}")
        return existing
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserBuildError(
            "npm not found: install Node.js (>= 18) and npm to build STAC Browser"
        )
    home = browser_home(cache)
    work = home / f"build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        spec = f"{STAC_BROWSER_PACKAGE}@{STAC_BROWSER_VERSION}"
        log(f"fetching {spec} with npm")
        packed = _npm(npm, ["pack", spec, "--pack-destination", str(work)], work)
        tgz = work / packed.strip().splitlines()[-1].strip()
        source = _unpack(tgz, work)
        _enable_runtime_config(source / "public" / "index.html")
        log("installing STAC Browser's npm dependencies")
        _npm(npm, ["install", "--no-audit", "--no-fund", "--loglevel=error"], source)
        _npm(
            npm,
            [
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"ol-stac@{OL_STAC_VERSION}",
            ],
            source,
        )
        log("building STAC Browser")
        _npm(npm, ["run", "build"], source, extra_env=BUILD_ENV)
        built = source / "dist"
        if not (built / "index.html").is_file():
            raise BrowserBuildError(f"{built}: the build wrote no index.html")
        stamp = {"package": spec, "ol-stac": OL_STAC_VERSION, "options": BUILD_ENV}
        (built / STAMP_FILE).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        dist = home / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        built.rename(dist)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"STAC Browser {STAC_BROWSER_VERSION} built: {dist}")
    return dist


def _npm(npm: str, args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, **(extra_env or {})}
    done = subprocess.run(
        [npm, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BrowserBuildError(f"`npm {' '.join(args)}` failed in {cwd}:\n{tail}")
    return done.stdout


def _unpack(tgz: Path, dest: Path) -> Path:
    """Extract an npm tarball (its files lie under `package/`), refusing unsafe members."""
    with tarfile.open(tgz) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.10.12 / 3.11.4: check members by hand
            for member in tar.getmembers():
                target = (dest / member.name).resolve()
                if not target.is_relative_to(dest.resolve()) or member.issym() or member.islnk():
                    raise BrowserBuildError(f"{tgz}: unsafe member {member.name!r}")
            tar.extractall(dest)
    source = dest / "package"
    if not (source / "package.json").is_file():
        raise BrowserBuildError(f"{tgz}: no package/package.json inside")
    return source


def _enable_runtime_config(index_html: Path) -> None:
    text = index_html.read_text(encoding="utf-8")
    if CONFIG_TAG_IN_SOURCE not in text:
        raise BrowserBuildError(
            f"{index_html}: the runtime config tag {CONFIG_TAG_IN_SOURCE!r} is missing; "
            f"STAC Browser {STAC_BROWSER_VERSION}'s layout changed"
        )
    index_html.write_text(text.replace(CONFIG_TAG_IN_SOURCE, CONFIG_TAG_BUILT), encoding="utf-8")
