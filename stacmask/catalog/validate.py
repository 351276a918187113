"""`stacmask validate`: every object of a static catalog against its STAC schemas.

Walks catalog.json through its child and item links (stacmask.catalog.walk), validates each
object with stac-validator (core and extension schemas, offline through a schema map when
given), checks that every link and local asset it names exists inside the catalog folder (with
the `file:size` the item gives), and reports each problem with the file it is in.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from stacmask.catalog.walk import ItemLink, walk_catalog
from stacmask.errors import CatalogError


@dataclass(frozen=True)
class Problem:
    """One thing wrong, and the file it is in."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ValidationReport:
    """Objects checked and problems found."""

    checked: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _is_local(href: str) -> bool:
    return urlparse(href).scheme in ("", "file")


def _objects(root: Path, problems: list[Problem]) -> Iterator[Path]:
    """The file of every STAC object of the catalog (the one walk), with link and asset problems."""
    for node in walk_catalog(root, lambda path, message: problems.append(Problem(path, message))):
        if isinstance(node, ItemLink):
            try:
                data = node.read()
            except CatalogError as exc:
                problems.append(Problem(node.path, str(exc).removeprefix(f"{node.path}: ")))
                continue
        else:
            data = node.doc
        yield node.path
        for key, asset in (data.get("assets") or {}).items():
            href = str(asset.get("href", ""))
            if not _is_local(href):
                continue
            file = node.path.parent / urlparse(href).path
            if not file.exists():
                problems.append(Problem(node.path, f"asset {key!r} points to missing file {href}"))
            elif isinstance(asset.get("file:size"), int) and file.is_file():
                size = file.stat().st_size
                if size != asset["file:size"]:
                    problems.append(
                        Problem(
                            node.path,
                            f"asset {key!r}: {href} is {size} bytes, the item says "
                            f"{asset['file:size']} (the file is not the one the item describes)",
                        )
                    )


def _schema_problems(path: Path, schema_map: Path | None) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "the PyPI package has moved"
        from stac_validator.validate import StacValidate

    validator = StacValidate(
        str(path),
        extensions=True,
        schema_config=str(schema_map) if schema_map else None,
    )
    logging.getLogger("stac_validator").setLevel(logging.ERROR)
    try:
        valid = validator.run()
    except Exception as exc:  # the validator raises on unreadable schemas
        return [f"validator failed: {type(exc).__name__}: {exc}"]
    if valid:
        return []
    messages = []
    for message in validator.message:
        if not message.get("valid_stac", True):
            text = message.get("error_message") or message.get("error_type") or "invalid"
            schema = message.get("failed_schema") or ""
            messages.append(f"{text}" + (f" (schema {schema})" if schema else ""))
    return messages or ["invalid (no detail from stac-validator)"]


def validate_catalog(catalog: Path, schema_map: Path | None = None) -> ValidationReport:
    """Validate every object reachable from `catalog` (a catalog.json or its folder)."""
    root = catalog / "catalog.json" if catalog.is_dir() else catalog
    problems: list[Problem] = []
    if not root.exists():
        return ValidationReport(0, [Problem(root, "no such file")])
    if schema_map is not None and not schema_map.exists():
        return ValidationReport(0, [Problem(schema_map, "schema map not found")])
    checked = 0
    for path in _objects(root, problems):
        checked += 1
        problems.extend(Problem(path, m) for m in _schema_problems(path, schema_map))
    return ValidationReport(checked, problems)
