"""`stacmask publish CATALOG --pgstac DSN`: the catalog's collections and items into pgstac.

Loads with pypgstac (`Loader`, upsert), so running it again is safe; it is incremental: it
asks the database which items each collection holds, and loads only the items it lacks and
those whose file changed since the last publish to that database (sizes and modification
times kept in `CATALOG/.stacmask-index/pgstac-<hash of the DSN>.json`); items no longer in the
catalog are deleted from it. Hrefs become absolute (file paths, or URLs under `base_url`), as
in the geoparquet export. The catalog's JSON stays the source of truth.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacmask.catalog.folder import write_json_atomic
from stacmask.catalog.geoparquet import CatalogItems
from stacmask.catalog.index import INDEX_DIR, CatalogIndex
from stacmask.catalog.walk import CatalogNode, ItemLink, raise_problem, walk_catalog
from stacmask.errors import CatalogError, StacmaskError


@dataclass(frozen=True)
class PublishReport:
    """What a publish did."""

    collections: int
    loaded: int
    unchanged: int
    deleted: int


def _state_path(root: Path, dsn: str) -> Path:
    digest = hashlib.sha256(dsn.encode("utf-8")).hexdigest()[:16]
    return root / INDEX_DIR / f"pgstac-{digest}.json"


def publish_catalog(catalog: Path, dsn: str, *, base_url: str | None = None) -> PublishReport:
    """Upsert the catalog's collections and changed items into the pgstac database at `dsn`."""
    try:
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods
    except ImportError as exc:
        raise StacmaskError("publish needs pypgstac: pip install 'stacmask[pgstac]'") from exc
    source = CatalogItems(catalog, base_url)
    collections: list[dict[str, Any]] = []
    links: dict[str, ItemLink] = {}
    for node in walk_catalog(source.catalog_path, raise_problem):
        if isinstance(node, CatalogNode) and node.is_collection:
            collections.append(source.absolute(json.loads(json.dumps(node.doc)), node.path))
        elif isinstance(node, ItemLink):
            links[node.relpath] = node
    index = CatalogIndex(source.root)  # the ids of the item files, without reading them all
    keys = {
        str(rel): (str(collection or ""), str(item_id))
        for rel, collection, item_id in index.cursor()
        .execute("SELECT _relpath, collection, id FROM items")
        .fetchall()
    }
    state_file = _state_path(source.root, dsn)
    try:
        published: dict[str, list[int]] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        published = {}
    try:
        with PgstacDB(dsn=dsn, commit_on_exit=True) as db:
            loader = Loader(db=db)
            if collections:
                loader.load_collections(iter(collections), insert_mode=Methods.upsert)
                _register_queryables(db, [str(c["id"]) for c in collections], index.kinds)
            present = _items_in_database(db, [str(c["id"]) for c in collections])
            wanted: list[ItemLink] = []
            for rel, link in links.items():
                key = keys.get(rel)
                if key not in present or published.get(rel) != [link.mtime_ns, link.size]:
                    wanted.append(link)
            if wanted:
                loader.load_items(_absolute_items(source, wanted), insert_mode=Methods.upsert)
            gone = sorted(present - set(keys.values()))
            for collection, item_id in gone:
                db.connect().execute("SELECT delete_item(%s, %s)", (item_id, collection))
    except StacmaskError:
        raise
    except Exception as exc:  # psycopg and pypgstac raise many types; say which database
        message = f"pgstac at {_without_password(dsn)}: {type(exc).__name__}: {exc}"
        raise CatalogError(message) from exc
    state = {rel: [link.mtime_ns, link.size] for rel, link in links.items()}
    state_file.parent.mkdir(exist_ok=True)
    write_json_atomic(state_file, state)
    return PublishReport(len(collections), len(wanted), len(links) - len(wanted), len(gone))


def _absolute_items(source: CatalogItems, links: list[ItemLink]) -> Iterator[dict[str, Any]]:
    for link in links:
        item = source.absolute(link.read(), link.path)
        item["collection"] = link.collection or item.get("collection")
        yield item


#: pgstac's property wrappers (how it casts a property to filter and sort on it), by kind.
WRAPPERS = {"integer": "to_int", "number": "to_float", "date-time": "to_tstz", "string": "to_text"}


def _register_queryables(db: Any, collections: list[str], kinds: dict[str, str]) -> None:
    """Tell pgstac the type of each property (else it sorts numbers as text)."""
    for name, kind in sorted(kinds.items()):
        wrapper = WRAPPERS.get(kind)
        if wrapper is None or name == "datetime":  # pgstac defines datetime itself
            continue
        definition = {"type": "number" if kind in ("integer", "number") else "string"}
        if kind == "date-time":
            definition["format"] = "date-time"
        connection = db.connect()
        connection.execute(
            "DELETE FROM queryables WHERE name = %s AND collection_ids && %s::text[]",
            (name, collections),
        )
        connection.execute(
            "INSERT INTO queryables (name, collection_ids, definition, property_wrapper) "
            "VALUES (%s, %s::text[], %s::jsonb, %s)",
            (name, collections, json.dumps(definition), wrapper),
        )


def _items_in_database(db: Any, collections: list[str]) -> set[tuple[str, str]]:
    """(collection, id) of every item pgstac holds in these collections."""
    found: set[tuple[str, str]] = set()
    for collection in collections:
        rows = db.query("SELECT id FROM items WHERE collection = %s", (collection,))
        found.update((collection, str(row[0])) for row in rows)
    return found


def _without_password(dsn: str) -> str:
    """The DSN for a message: a password in it replaced by ***."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else dsn
    return " ".join(
        "password=***" if part.startswith("password=") else part for part in dsn.split()
    )
