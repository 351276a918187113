"""`stacmask demo`: a real build with no network, from embedded sample scenes.

Synthetic CBERS-4A WPM scenes (clear, partly cloudy and overcast, with water, bright soil and
no-data corners; INPE-style XML with sun angles) are written as a static source catalog in
`OUT/source/` (stacmask.demo.source), served as a STAC API on 127.0.0.1 by stacmask's own
server (`stacmask serve`'s app, in a background thread), and built into `OUT` exactly as
`stacmask build` builds INPE's. The masks' `derived_from` links then point at the source items'
files by relative hrefs, so `stacmask serve OUT` serves both and the links resolve.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from stacmask.catalog.folder import CatalogFolder, write_json_atomic
from stacmask.catalog.walk import ItemLink, walk_catalog
from stacmask.constants import BAND_KEY_PRESETS, DEFAULT_BAND_KEYS, DEFAULT_COLLECTION
from stacmask.methods.registry import DEFAULT_METHOD
from stacmask.pipeline.build import BuildOptions, BuildReport, build

#: Folder of the source catalog inside the demo's output folder.
SOURCE_DIR = "source"


def run_demo(
    out: Path,
    *,
    scenes: int = 3,
    size: int = 1024,
    method: str = DEFAULT_METHOD,
    workers: int = 1,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> BuildReport:
    """Write `scenes` sample scenes into `out/source`, serve them, build their masks in `out`."""
    from stacmask.demo.source import write_source_catalog
    from stacmask.serve.background import ServerThread
    from stacmask.serve.server import create_app

    source = Path(out) / SOURCE_DIR
    if not (source / "catalog.json").is_file():
        echo(f"generating {scenes} sample scene(s) of {size} x {size} pixels in {source} ...")
        write_source_catalog(source, n_scenes=scenes, size=size, seed=2024)
    with ServerThread(create_app(source, browser_dir=source / "no-browser")) as server:
        url = server.url + "/"
        echo(f"source STAC API (stacmask serve {source}) on {url}")
        options = BuildOptions(
            out=Path(out),
            keys=BAND_KEY_PRESETS[DEFAULT_BAND_KEYS],
            stac_url=url,
            collection=DEFAULT_COLLECTION,
            method=method,
            workers=workers,
        )
        report = build(options, echo=echo, progress=progress)
    link_sources(Path(out), url, source)
    return report


def link_sources(catalog: Path, served_at: str, source: Path) -> int:
    """Point the masks' `derived_from` links at the source item files (relative hrefs).

    A link to `served_at` (the source API during the build) becomes the relative path of that
    item's JSON in `source`, when the file is there; returns how many items changed.
    """
    folder = CatalogFolder(catalog)
    changed = 0
    with folder.locked():
        for node in walk_catalog(catalog):
            if not isinstance(node, ItemLink):
                continue
            item = node.read()
            touched = False
            for link in item.get("links", []):
                href = str(link.get("href", ""))
                if link.get("rel") != "derived_from" or not href.startswith(served_at):
                    continue
                parts = urlsplit(href).path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "collections" or parts[2] != "items":
                    continue
                collection, item_id = unquote(parts[1]), unquote(parts[3])
                target = source.resolve() / collection / item_id / f"{item_id}.json"
                if target.is_file():
                    link["href"] = os.path.relpath(target, node.path.parent)
                    touched = True
            if touched:
                write_json_atomic(node.path, item)
                changed += 1
    return changed
