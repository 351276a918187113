"""The query index of a catalog: a DuckDB table of the items' searchable fields.

The item JSON files stay the source of truth; the index is derived from them and kept beside
them as a GeoParquet snapshot, `CATALOG/.stacmask-index/items.parquet` (a hidden folder: never
served, never part of the STAC catalog). One row per item: `id`, `collection`, `geometry`
(GEOMETRY), `bbox` (struct xmin, ymin, xmax, ymax, as stac-geoparquet), each item property as
a typed column named like the property (`"eo:cloud_cover"` DOUBLE, `"datetime"` TIMESTAMPTZ,
...), and bookkeeping: the item file's path, size and modification time, its time interval.

Opening the index catches it up with the catalog. The snapshot records the status (mtime,
size) of the catalog and collection files it was made from; every scene stacmask adds, redoes
or removes rewrites its collection.json, so when those files are as recorded the snapshot is
current and is loaded without looking at the item files (a search of 100,000 items starts in
a second). Otherwise the one walk (stacmask.catalog.walk) lists every item file with its
status, and only the files that are new or changed since the snapshot are read (a first start
reads them all); `refresh()` always does this. An item file edited by hand, with its
collection untouched, is seen by the next `refresh()` or once its collection changes. Builds
never touch the index, so two builds at once, and a build killed at any point, cannot spoil
it. Refreshes hold an exclusive lock
on `.stacmask-index/lock`; the snapshot is replaced by an atomic rename, and during a long
first build it is written every `CHECKPOINT_ROWS` items (every tenth of the table past ten
times that), so a refresh killed half-way resumes from there. A snapshot that is unreadable
or of another format version is rebuilt from the JSON.

Queries run on an in-memory DuckDB copy (a few hundred bytes an item); `refresh` applies later
changes as one transaction while other threads keep querying.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import shapely

from stacmask.catalog.walk import (
    CatalogNode,
    ItemLink,
    JsonDict,
    catalog_file,
    file_status,
    read_json,
    walk_catalog,
    warn_problem,
)
from stacmask.constants import PERCENT_PROPERTIES, QUERYABLE_TITLES
from stacmask.errors import CatalogError, StacmaskWarning

INDEX_DIR = ".stacmask-index"
SNAPSHOT = "items.parquet"
#: Bumped whenever the snapshot's layout changes: an older snapshot is rebuilt.
INDEX_FORMAT = 1
#: Items read between two snapshots during a (re)build, so a killed build resumes.
CHECKPOINT_ROWS = 25_000
#: Items converted to Arrow and inserted at once.
BATCH_ROWS = 5_000
#: A running server looks for catalog changes at most this often (seconds).
CHECK_INTERVAL = 2.0

#: Properties that hold RFC 3339 timestamps: indexed and compared as instants.
TIME_FIELDS: frozenset[str] = frozenset(
    {"datetime", "start_datetime", "end_datetime", "created", "updated"}
)
#: Columns that are not item properties (a property of one of these names is not indexed).
FIXED_COLUMNS: tuple[str, ...] = (
    "id",
    "collection",
    "geometry",
    "bbox",
    "_relpath",
    "_mtime_ns",
    "_size",
    "_start",
    "_end",
)
#: SQL column type of each JSON kind of property value.
KIND_TYPES: dict[str, str] = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "string": "VARCHAR",
    "date-time": "TIMESTAMPTZ",
    "array": "VARCHAR[]",
    "object": "VARCHAR",
    "mixed": "VARCHAR",
    "null": "VARCHAR",
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
    "date-time": pa.timestamp("us", tz="UTC"),
    "array": pa.list_(pa.string()),
    "object": pa.string(),
    "mixed": pa.string(),
    "null": pa.string(),
}
_INT64 = 2**63


def quote_name(name: str) -> str:
    """A SQL identifier for any column name."""
    return '"' + name.replace('"', '""') + '"'


def spatial_extension() -> Path:
    """The DuckDB spatial extension that the `duckdb-extension-spatial` wheel ships."""
    try:
        import duckdb_extension_spatial
    except ImportError as exc:
        raise CatalogError(
            "spatial queries need the DuckDB spatial extension: "
            f"pip install duckdb-extension-spatial=={duckdb.__version__}"
        ) from exc
    path = resources.files(duckdb_extension_spatial) / "extensions" / f"v{duckdb.__version__}"
    found = Path(str(path)) / "spatial.duckdb_extension"
    if not found.is_file():
        raise CatalogError(
            f"{found}: no spatial extension for DuckDB {duckdb.__version__}; install "
            f"duckdb-extension-spatial=={duckdb.__version__}"
        )
    return found


# --- property kinds ----------------------------------------------------------------------------
def value_kind(name: str, value: object) -> str:
    """The JSON kind of one property value, as the index and /queryables type it."""
    return column_kind(name, [value])


#: JSON kind of each Python type a decoded JSON value has.
_TYPE_KINDS: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def column_kind(name: str, values: Sequence[object]) -> str:
    """One kind for a property from its values (ints and floats: number; nulls ignored)."""
    types = {type(value) for value in values} - {type(None)}
    kinds = {_TYPE_KINDS.get(kind, "mixed") for kind in types}
    if kinds == {"integer"} and any(
        not -_INT64 <= v < _INT64 for v in values if isinstance(v, int)
    ):
        return "number"
    if (
        kinds == {"string"}
        and name in TIME_FIELDS
        and all(_instant(v) is not None for v in values if isinstance(v, str))
    ):
        return "date-time"
    return merged_kind(kinds)


def merged_kind(kinds: Iterable[str]) -> str:
    """One kind for a property from the kinds of its values (numbers of both sorts: number)."""
    found = set(kinds) - {"null"}
    if found == {"integer", "number"}:
        return "number"
    if found == {"date-time", "string"}:
        return "string"
    if not found:
        return "null"
    return found.pop() if len(found) == 1 else "mixed"


def _instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        return None


def cql2_text(value: object) -> str:
    """How the `cql2` package renders an array element, so array operators compare alike."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, sort_keys=True)


def _column(kind: str, values: list[Any]) -> list[Any]:
    """A property's values as the index stores them for its column's kind."""
    if kind == "number":
        return [None if v is None or isinstance(v, bool) else float(v) for v in values]
    if kind == "date-time":
        return [_instant(v) if isinstance(v, str) else None for v in values]
    if kind == "array":
        return [[cql2_text(e) for e in v] if isinstance(v, list) else None for v in values]
    if kind in ("object", "mixed"):
        return [
            None if v is None else json.dumps(v, sort_keys=True, ensure_ascii=False) for v in values
        ]
    if kind == "null":
        return [None] * len(values)
    wanted = {"integer": int, "boolean": bool, "string": str}[kind]
    return [v if type(v) is wanted else None for v in values]


# --- rows --------------------------------------------------------------------------------------
@dataclass
class _Row:
    link: ItemLink
    item: JsonDict


def _bbox(item: JsonDict, geometry: Any) -> dict[str, float] | None:
    box = item.get("bbox")
    values: list[float]
    if (
        isinstance(box, list)
        and len(box) in (4, 6)
        and all(isinstance(v, int | float) for v in box)
    ):
        values = [float(v) for v in (box[:4] if len(box) == 4 else box[:2] + box[3:5])]
    elif geometry is not None:
        values = [float(v) for v in geometry.bounds]
    else:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    return dict(zip(("xmin", "ymin", "xmax", "ymax"), values, strict=True))


def _geometries(rows: Sequence[_Row]) -> list[Any]:
    """The items' footprints as shapely geometries (None, with a warning, when unusable)."""
    texts = [
        orjson.dumps(row.item["geometry"]) if isinstance(row.item.get("geometry"), dict) else None
        for row in rows
    ]
    shapes = shapely.from_geojson(
        [text if text is not None else b"null" for text in texts], on_invalid="ignore"
    ).tolist()
    for row, text, geometry in zip(rows, texts, shapes, strict=True):
        if text is not None and geometry is None:
            warnings.warn(
                f"{row.link.path}: unusable geometry; the item is not found by spatial queries",
                StacmaskWarning,
                stacklevel=3,
            )
    return list(shapes)


def _arrow_batch(rows: Sequence[_Row], kinds: dict[str, str]) -> pa.Table:
    """The rows as an Arrow table of the index's columns (geometry as WKB)."""
    props = [row.item.get("properties") or {} for row in rows]
    geometries = _geometries(rows)
    instants = _column("date-time", [p.get("datetime") for p in props])
    starts = _column("date-time", [p.get("start_datetime") for p in props])
    ends = _column("date-time", [p.get("end_datetime") for p in props])
    bbox_type = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
    stamp = pa.timestamp("us", tz="UTC")
    arrays: dict[str, pa.Array] = {
        "id": pa.array([str(row.item["id"]) for row in rows], pa.string()),
        "collection": pa.array(
            [row.link.collection or row.item.get("collection") for row in rows], pa.string()
        ),
        "geometry_wkb": pa.array(shapely.to_wkb(geometries).tolist(), pa.binary()),
        "bbox": pa.array(
            [_bbox(row.item, g) for row, g in zip(rows, geometries, strict=True)], bbox_type
        ),
        "_relpath": pa.array([row.link.relpath for row in rows], pa.string()),
        "_mtime_ns": pa.array([row.link.mtime_ns for row in rows], pa.int64()),
        "_size": pa.array([row.link.size for row in rows], pa.int64()),
        "_start": pa.array([s or i for s, i in zip(starts, instants, strict=True)], stamp),
        "_end": pa.array([e or i for e, i in zip(ends, instants, strict=True)], stamp),
    }
    for name, kind in kinds.items():
        values = _column(kind, [p.get(name) for p in props])
        arrays[f"p:{name}"] = pa.array(values, _ARROW_TYPES[kind])
    return pa.table(arrays)


# --- the index ---------------------------------------------------------------------------------
@dataclass
class _State:
    """What one refresh found: the catalog's containers and the files they were read from."""

    catalog: JsonDict
    collections: dict[str, CatalogNode]
    nodes: dict[str, tuple[int, int]]  # container file -> (mtime_ns, size)
    kinds: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, containers: Iterable[CatalogNode], kinds: dict[str, str]) -> _State:
        """The state of the catalogs and collections one walk read."""
        state = cls({}, {}, {}, kinds)
        for node in containers:
            state.nodes[node.relpath] = node.status
            if not state.catalog:
                state.catalog = node.doc
            if node.is_collection and node.collection:
                state.collections[node.collection] = node
        return state


class CatalogIndex:
    """The items of one catalog folder in DuckDB, in step with its JSON files."""

    def __init__(self, catalog_dir: Path | str) -> None:
        self.root = catalog_file(catalog_dir).parent
        self.folder = self.root / INDEX_DIR
        self.con = duckdb.connect(config={"threads": 2})
        self._refresh_lock = threading.Lock()
        self._spatial_lock = threading.Lock()
        self._spatial = False
        self._checked = 0.0
        self._state = _State({}, {}, {})
        self._persist = True
        #: The container statuses the snapshot on disk records (None: it records none).
        self._saved_nodes: dict[str, tuple[int, int]] | None = None
        #: Bumped whenever the rows change (cached query results are then stale), under
        #: `commit_lock` together with the commit.
        self.version = 0
        self.commit_lock = threading.Lock()
        #: Item files read when the index was opened (0 when the snapshot was up to date).
        self.read_at_open = 0 if self._open_current() else self.refresh()

    # -- public view ------------------------------------------------------------------------
    @property
    def catalog(self) -> JsonDict:
        """The root catalog.json."""
        return self._state.catalog

    @property
    def collections(self) -> dict[str, CatalogNode]:
        """The catalog's collections by id."""
        return self._state.collections

    @property
    def kinds(self) -> dict[str, str]:
        """The kind of every indexed item property (`value_kind`)."""
        return self._state.kinds

    def queryables(self) -> dict[str, JsonDict]:
        """JSON-schema types of the item properties, as `/queryables` lists them."""
        result: dict[str, JsonDict] = {}
        for name in sorted(self.kinds):
            kind = self.kinds[name]
            schema: JsonDict = {"title": QUERYABLE_TITLES.get(name, name)}
            if kind == "date-time":
                schema.update(type="string", format="date-time")
            elif kind not in ("mixed", "null"):
                schema["type"] = kind
            if name in PERCENT_PROPERTIES:
                schema.update(minimum=0, maximum=100)
            result[name] = schema
        return result

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for one thread's queries (DuckDB connections are not shared)."""
        return self.con.cursor()

    def load_spatial(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Make the spatial functions (ST_Intersects, ...) available, from the shipped wheel."""
        with self._spatial_lock:
            if not self._spatial:
                self.con.execute(f"LOAD '{spatial_extension()}'")
                self._spatial = True
        cursor.execute(f"LOAD '{spatial_extension()}'")

    def item_count(self) -> int:
        """How many items the index holds."""
        row = self.cursor().execute("SELECT count(*) FROM items").fetchone()
        return int(row[0]) if row else 0

    def read_item(self, relpath: str) -> JsonDict | None:
        """An item's JSON, from its file (None when it vanished since the index saw it)."""
        try:
            return read_json(self.root / relpath)
        except CatalogError:
            return None

    # -- keeping in step --------------------------------------------------------------------
    def refresh_if_due(self) -> None:
        """Catch up with the catalog when its catalog or collection files changed.

        Cheap (a stat of those few files), at most every CHECK_INTERVAL seconds; the catch-up
        itself runs in a background thread while queries go on against the current rows.
        """
        now = time.monotonic()
        if now - self._checked < CHECK_INTERVAL or self._refresh_lock.locked():
            return
        self._checked = now
        if any(file_status(self.root / rel) != known for rel, known in self._state.nodes.items()):
            threading.Thread(target=self._refresh_quietly, daemon=True).start()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # a server keeps answering from the rows it has
            warnings.warn(
                f"{self.root}: index refresh failed: {exc}", StacmaskWarning, stacklevel=2
            )

    def _open_current(self) -> bool:
        """Load the snapshot when the catalog and collection files are as it records them."""
        with self._refresh_lock, self._locked():
            con = self.cursor()
            self._load_snapshot(con)
            if self._saved_nodes is None:
                return False
            problems: list[tuple[Path, str]] = []
            walk = walk_catalog(
                self.root, lambda path, message: problems.append((path, message)), items=False
            )
            state = _State.of((n for n in walk if isinstance(n, CatalogNode)), self._state.kinds)
            if state.nodes != self._saved_nodes:
                return False  # the full walk of refresh() reports the problems
            for path, message in problems:
                warn_problem(path, message)
            self._state = state
            self._checked = time.monotonic()
            return True

    def refresh(self) -> int:
        """Bring the index in step with the catalog's JSON; return how many items were read."""
        with self._refresh_lock, self._locked():
            self._checked = time.monotonic()
            containers: list[CatalogNode] = []
            links: dict[str, ItemLink] = {}
            for node in walk_catalog(self.root):
                if isinstance(node, ItemLink):
                    links[node.relpath] = node
                else:
                    containers.append(node)
            read = self._apply(links)
            self._state = _State.of(containers, self._state.kinds)
            if self._saved_nodes != self._state.nodes:
                self._save(self.cursor(), self._state.nodes)  # the rows are those of these files
            with self.commit_lock:
                self.version += 1
            return read

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The index folder's exclusive lock (none when the catalog folder is read-only)."""
        try:
            self.folder.mkdir(exist_ok=True)
            handle = (self.folder / "lock").open("a")
        except OSError as exc:
            if self._persist:
                warnings.warn(
                    f"{self.folder}: cannot write the index here ({exc.strerror}); "
                    "it is kept in memory only",
                    StacmaskWarning,
                    stacklevel=4,
                )
            self._persist = False
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _apply(self, links: dict[str, ItemLink]) -> int:
        """Update the rows to `links`: load the snapshot, read what changed, save."""
        con = self.cursor()
        if not self._has_table(con):
            self._load_snapshot(con)
        known: dict[str, tuple[int, int]] = {
            rel: (mtime, size)
            for rel, mtime, size in con.execute(
                "SELECT _relpath, _mtime_ns, _size FROM items"
            ).fetchall()
        }
        changed = [
            link for rel, link in links.items() if known.get(rel) != (link.mtime_ns, link.size)
        ]
        gone = [rel for rel in known if rel not in links]
        if gone:
            self._replace(con, gone, [])
        read = unsaved = 0
        for start in range(0, len(changed), CHECKPOINT_ROWS):
            chunk = changed[start : start + CHECKPOINT_ROWS]
            rows = list(self._read(chunk))
            if not self._widen(con, rows):
                # A property changed kind in a way its column cannot follow: rebuild from JSON.
                self._state.kinds = {}
                self._create(con)
                return read + self._apply(links)
            self._replace(con, [link.relpath for link in chunk], rows)
            read += len(rows)
            unsaved += len(rows)
            # A checkpoint at least every CHECKPOINT_ROWS items and every tenth of the table,
            # so the snapshot writes of a first build grow with it, not with its square.
            last = start + CHECKPOINT_ROWS >= len(changed)
            if not last and unsaved >= max(CHECKPOINT_ROWS, (len(known) + read) // 10):
                self._save(con, None)  # a checkpoint: the rows are not yet the catalog's
                unsaved = 0
        if read or gone:
            self._saved_nodes = None  # the rows changed: refresh saves them with their files
        return read

    def _widen(self, con: duckdb.DuckDBPyConnection, rows: Sequence[_Row]) -> bool:
        """Add (or widen) the columns the rows' properties need; False when one cannot follow."""
        kinds = dict(self._state.kinds)
        props = [row.item.get("properties") or {} for row in rows]
        names = {name for p in props for name in p if name not in FIXED_COLUMNS}
        for name in names:
            found = column_kind(name, [p.get(name) for p in props])
            kinds[name] = merged_kind((kinds.get(name, "null"), found))
        present = {
            str(row[0])
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'"
            ).fetchall()
        }
        for name, kind in kinds.items():
            before = self._state.kinds.get(name)
            column = quote_name(name)
            if name not in present:
                con.execute(f"ALTER TABLE items ADD COLUMN {column} {KIND_TYPES[kind]}")
            elif before != kind and (before == "null" or (before, kind) == ("integer", "number")):
                con.execute(f"ALTER TABLE items ALTER COLUMN {column} TYPE {KIND_TYPES[kind]}")
            elif before != kind:
                return False
        self._state.kinds = kinds
        return True

    def _replace(
        self, con: duckdb.DuckDBPyConnection, relpaths: Sequence[str], rows: Sequence[_Row]
    ) -> None:
        """In one transaction: drop the rows of `relpaths`, insert `rows`."""
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("stale_rows", pa.table({"rel": pa.array(list(relpaths), pa.string())}))
            con.execute("DELETE FROM items WHERE _relpath IN (SELECT rel FROM stale_rows)")
            con.unregister("stale_rows")
            for start in range(0, len(rows), BATCH_ROWS):
                self._insert(con, rows[start : start + BATCH_ROWS])
            with self.commit_lock:  # readers see the new rows and the new version together
                con.execute("COMMIT")
                self.version += 1
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _read(self, links: Sequence[ItemLink]) -> Iterator[_Row]:
        for link in links:
            try:
                item = link.read()
            except CatalogError as exc:
                warnings.warn(f"{exc}; not indexed", StacmaskWarning, stacklevel=3)
                continue
            if not isinstance(item.get("id"), str) or item.get("type") != "Feature":
                warnings.warn(
                    f"{link.path}: not a STAC item (no string id or type Feature); not indexed",
                    StacmaskWarning,
                    stacklevel=3,
                )
                continue
            yield _Row(link, item)

    # -- the table and its snapshot ---------------------------------------------------------
    @staticmethod
    def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'"
        ).fetchone()
        return bool(found and found[0])

    @staticmethod
    def _create(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("DROP TABLE IF EXISTS items")
        con.execute(
            "CREATE TABLE items (id VARCHAR, collection VARCHAR, geometry GEOMETRY, "
            "bbox STRUCT(xmin DOUBLE, ymin DOUBLE, xmax DOUBLE, ymax DOUBLE), "
            "_relpath VARCHAR, _mtime_ns BIGINT, _size BIGINT, "
            "_start TIMESTAMPTZ, _end TIMESTAMPTZ)"
        )

    def _insert(self, con: duckdb.DuckDBPyConnection, rows: Sequence[_Row]) -> None:
        kinds = self._state.kinds
        batch = _arrow_batch(rows, kinds)
        con.register("batch_rows", batch)
        names = [name for name in FIXED_COLUMNS if name != "geometry"]
        selected = [quote_name(name) for name in names]
        targets = [*selected, "geometry"]
        values = [*selected, "ST_GeomFromWKB(geometry_wkb)"]
        for name in kinds:
            targets.append(quote_name(name))
            values.append(quote_name(f"p:{name}"))
        con.execute(
            f"INSERT INTO items ({', '.join(targets)}) SELECT {', '.join(values)} FROM batch_rows"
        )
        con.unregister("batch_rows")

    def _load_snapshot(self, con: duckdb.DuckDBPyConnection) -> None:
        """The saved rows, or an empty table when there is no usable snapshot."""
        snapshot = self.folder / SNAPSHOT
        self._saved_nodes = None
        if self._persist and snapshot.is_file():
            try:
                meta = dict(
                    con.execute(
                        "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)",
                        [str(snapshot)],
                    ).fetchall()
                )
                info = json.loads(meta.get("stacmask_index", "{}"))
                if info.get("format") == INDEX_FORMAT and isinstance(info.get("kinds"), dict):
                    con.execute(
                        "CREATE TABLE items AS SELECT * FROM read_parquet(?)", [str(snapshot)]
                    )
                    self._state.kinds = {str(k): str(v) for k, v in info["kinds"].items()}
                    self._saved_nodes = _recorded_nodes(info.get("nodes"))
                    return
            except (duckdb.Error, ValueError) as exc:
                warnings.warn(
                    f"{snapshot}: unreadable index snapshot ({exc}); rebuilding it",
                    StacmaskWarning,
                    stacklevel=2,
                )
        self._state.kinds = {}
        self._create(con)

    def _save(
        self, con: duckdb.DuckDBPyConnection, nodes: dict[str, tuple[int, int]] | None
    ) -> None:
        """Write the rows to the snapshot: a temporary file, fsynced, renamed over it; `nodes`
        are the statuses of the catalog and collection files the rows are in step with (None:
        a checkpoint, not in step with any)."""
        if not self._persist:
            return
        for stale in self.folder.glob(".tmp-*"):
            stale.unlink(missing_ok=True)  # left by a killed refresh (we hold the lock)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}.parquet"
        info = json.dumps({"format": INDEX_FORMAT, "kinds": self._state.kinds, "nodes": nodes})
        try:
            con.execute(
                f"COPY items TO '{tmp}' (FORMAT parquet, COMPRESSION zstd, "
                "KV_METADATA {stacmask_index: " + _sql_string(info) + "})"
            )
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.folder / SNAPSHOT)
            self._saved_nodes = nodes
        finally:
            tmp.unlink(missing_ok=True)


def _recorded_nodes(value: object) -> dict[str, tuple[int, int]] | None:
    """The container statuses a snapshot records, None when it records none (or garbage)."""
    if not isinstance(value, dict):
        return None
    nodes: dict[str, tuple[int, int]] = {}
    for relpath, status in value.items():
        if not (
            isinstance(status, list) and len(status) == 2 and all(type(v) is int for v in status)
        ):
            return None
        nodes[str(relpath)] = (status[0], status[1])
    return nodes


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
