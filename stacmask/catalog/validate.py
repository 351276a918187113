"""`stacmask validate`: every object of a static catalog against its STAC schemas.

Walks catalog.json through its child and item links, validates each object with stac-validator
(core and extension schemas, offline through a schema map when given), checks that every link
and local asset it names exists, and reports each problem with the file it is in.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


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


def _walk(root: Path, problems: list[Problem]) -> Iterator[tuple[Path, dict[str, Any]]]:
    seen: set[Path] = set()
    pending = [root.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(Problem(path, f"cannot read JSON: {exc}"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(path, "not a JSON object"))
            continue
        yield path, data
        for link in data.get("links", []):
            href = str(link.get("href", ""))
            if link.get("rel") in ("child", "item") and _is_local(href):
                target = (path.parent / urlparse(href).path).resolve()
                if not target.exists():
                    problems.append(Problem(path, f"{link.get('rel')} link to missing {href}"))
                else:
                    pending.append(target)
        for key, asset in (data.get("assets") or {}).items():
            href = str(asset.get("href", ""))
            if _is_local(href) and not (path.parent / urlparse(href).path).exists():
                problems.append(Problem(path, f"asset {key!r} points to missing file {href}"))


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
    for path, _ in _walk(root, problems):
        checked += 1
        problems.extend(Problem(path, m) for m in _schema_problems(path, schema_map))
    return ValidationReport(checked, problems)
