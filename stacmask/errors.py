"""One exception hierarchy for stacmask; every message names the file or item at fault."""

from __future__ import annotations

import re
from typing import Final

#: Query parameters that carry credentials (BDC access tokens, Azure SAS signatures, AWS
#: presigned URLs): their values never reach messages, failures.json or the catalog.
SECRET_PARAMETERS: Final = ("access_token", "sig", "token", "x-amz-signature", "x-amz-credential")
_SECRET: Final = re.compile(
    r"(?i)([?&](?:" + "|".join(re.escape(p) for p in SECRET_PARAMETERS) + r")=)[^&#\s'\"]*"
)


#: GDAL's paths for the remote files stacmask reads (reading/storage.py gdal_path), and the
#: hrefs a user knows them by.
_GDAL_PATHS: Final = (
    (re.compile(r"/vsicurl/(?=https?://)"), ""),
    (re.compile(r"/vsis3/"), "s3://"),
)


def redact(text: str) -> str:
    """`text` with the values of credential query parameters (SECRET_PARAMETERS) hidden."""
    return _SECRET.sub(r"\1***", text)


def as_hrefs(text: str) -> str:
    """`text` (about files the reader opened) redacted, with GDAL's /vsicurl/ and /vsis3/
    paths written as the http(s) and s3 hrefs they read."""
    for path, href in _GDAL_PATHS:
        text = path.sub(href, text)
    return redact(text)


class StacmaskError(Exception):
    """Base class of every error stacmask raises on purpose."""


class SourceError(StacmaskError):
    """The STAC API could not be searched or returned something unusable."""


class ItemError(StacmaskError):
    """A source item is unusable (bad id, missing band asset, ...)."""


class MetadataError(StacmaskError):
    """The scene's XML metadata is missing, malformed or hostile."""

    def __init__(self, href: str, message: str) -> None:
        super().__init__(redact(f"{href}: {message}"))
        self.href = redact(href)


class BandReadError(StacmaskError):
    """A band file cannot be opened or decoded (missing, truncated, mismatched)."""

    def __init__(self, href: str, message: str) -> None:
        super().__init__(as_hrefs(f"{href}: {message}"))
        self.href = as_hrefs(href)


class EmptySceneError(StacmaskError):
    """A scene with no valid pixel (every band holds no data): nothing to publish."""


class CatalogError(StacmaskError):
    """The output catalog folder is unusable or inconsistent."""


class ValidationFailed(StacmaskError):
    """A STAC object failed schema validation."""


class StacmaskWarning(UserWarning):
    """A degraded but usable situation (e.g. default gains); `--strict` makes it an error."""


class UnusualValueWarning(StacmaskWarning):
    """A value that is allowed but most likely wrong (a gain far off the usual, negative DNs)."""


# --- Sensors (issue 6) -------------------------------------------------------------------------
class DecodeError(StacmaskError, ValueError):
    """A quality band or detector input has the wrong type, shape or values to be decoded."""


class ProfileError(StacmaskError):
    """An unknown sensor profile, or an item that does not fit its profile."""


class MethodUnavailable(StacmaskError):
    """A mask method's optional dependency is not installed (the message says which extra)."""


# --- serve / search / export (issue 4) --------------------------------------------------------
class QueryError(StacmaskError):
    """A search request is malformed (bad bbox, datetime, CQL2 filter, sortby, paging...)."""


class BrowserBuildError(StacmaskError):
    """STAC Browser could not be built (npm missing, npm failed) or is not built yet."""
