"""INPE's per-band XML scene metadata (namespace xmlsat, root <prdf>), parsed as untrusted input.

The XML comes from a remote server: it is size-capped, parsed with defusedxml (no DTD, no entity,
no external reference) and every value is checked. Anything missing or malformed raises
MetadataError carrying the href; optional elements that are absent give None.
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import datetime, timezone
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml.ElementTree import fromstring

from stacmask.constants import DEFAULT_GAINS, XML_MAX_BYTES, XML_NAMESPACE
from stacmask.errors import MetadataError, StacmaskWarning
from stacmask.http import HttpError
from stacmask.reading.storage import LOCAL, HrefRefused, StorageAccess, read_bytes

_NS = {"x": XML_NAMESPACE}
_NAME = re.compile(r"[A-Za-z0-9]{1,32}")


def _label(path: str) -> str:
    """An element path as error messages show it: "image/path"."""
    return path.replace("x:", "")


class SceneMetadata:
    """Typed view of one INPE XML metadata file.

    Files with a <leftCamera>/<rightCamera> pair (CBERS-4A and Amazonia-1 WFI) are read from the
    left camera; sun angles are the mean of both cameras and bbox covers both, as cbers-2-stac does.
    """

    def __init__(self, root: Element, href: str) -> None:
        self.href = href
        if root.tag != f"{{{XML_NAMESPACE}}}prdf":
            raise MetadataError(
                href, f"root is <{root.tag[:80]}>, expected <prdf> in {XML_NAMESPACE}"
            )
        left = root.find("x:leftCamera", _NS)
        cameras = [root] if left is None else [left, root.find("x:rightCamera", _NS)]
        self._cameras = [camera for camera in cameras if camera is not None]
        self._root = self._cameras[0]

    def __repr__(self) -> str:
        return f"SceneMetadata({self.href!r})"

    @classmethod
    def from_bytes(cls, data: bytes, href: str, *, max_bytes: int = XML_MAX_BYTES) -> SceneMetadata:
        """Parse XML bytes; `href` names the source in errors."""
        if len(data) > max_bytes:
            raise MetadataError(href, f"metadata is larger than the {max_bytes}-byte limit")
        try:
            root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except (ParseError, LookupError) as exc:  # LookupError: unknown encoding
            raise MetadataError(href, f"not well-formed XML: {exc}") from exc
        except ValueError as exc:  # defusedxml's DTDForbidden, EntitiesForbidden, ...
            raise MetadataError(href, f"refused XML ({type(exc).__name__}): {exc}") from exc
        return cls(root, href)

    @classmethod
    def read(
        cls,
        href: str,
        *,
        timeout: float = 30.0,
        max_bytes: int = XML_MAX_BYTES,
        retries: int = 3,
        access: StorageAccess = LOCAL,
    ) -> SceneMetadata:
        """Read and parse the XML at `href` under the href policy `access` (reading/storage.py:
        http(s), s3 and, with LOCAL, local paths; HTTP rules in stacmask/http.py)."""
        try:
            data = read_bytes(href, access, timeout=timeout, max_bytes=max_bytes, retries=retries)
        except HttpError as exc:
            raise MetadataError(href, exc.reason) from exc
        except HrefRefused as exc:
            raise MetadataError(href, str(exc).split(": refused: ", 1)[-1]) from exc
        except OSError as exc:
            raise MetadataError(href, f"cannot read: {exc.strerror or exc}") from exc
        return cls.from_bytes(data, href, max_bytes=max_bytes)

    # --- element access ----------------------------------------------------------------------
    def _text(self, path: str, camera: Element | None = None) -> str | None:
        """Stripped text at `path` (x:-prefixed, relative to the camera), None if absent/empty."""
        element = (self._root if camera is None else camera).find(path, _NS)
        text = None if element is None or element.text is None else element.text.strip()
        return text or None

    def _required(self, path: str) -> str:
        text = self._text(path)
        if text is None:
            raise MetadataError(self.href, f"missing element {_label(path)}")
        return text

    def _number(self, text: str, what: str, low: float, high: float) -> float:
        try:
            value = float(text)
        except ValueError:
            raise MetadataError(self.href, f"{what} is not a number: {text[:40]!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise MetadataError(self.href, f"{what} {text[:40]} is outside [{low}, {high}]")
        return value

    def _int(self, path: str, low: int, high: int) -> int:
        text = self._required(path)
        if not text.isdigit():
            raise MetadataError(self.href, f"{_label(path)} is not an integer: {text[:40]!r}")
        return int(self._number(text, _label(path), low, high))

    def _name(self, path: str) -> str:
        text = self._required(path)
        if not _NAME.fullmatch(text):
            raise MetadataError(self.href, f"{_label(path)} is malformed: {text[:40]!r}")
        return text

    def _time(self, text: str, what: str) -> datetime:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MetadataError(
                self.href, f"{what} is not an ISO date-time: {text[:40]!r}"
            ) from None
        if when.tzinfo is None:  # INPE writes UTC without an offset
            return when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)

    def _camera_mean(self, path: str, what: str, low: float, high: float) -> float | None:
        values = [self._text(path, camera) for camera in self._cameras]
        numbers = [self._number(v, what, low, high) for v in values if v is not None]
        return sum(numbers) / len(numbers) if numbers else None

    # --- scene facts -------------------------------------------------------------------------
    @property
    def satellite(self) -> str:
        """Satellite, e.g. "CBERS-4A", "CBERS-4", "AMAZONIA-1"."""
        return f"{self._name('x:satellite/x:name')}-{self._name('x:satellite/x:number')}"

    @property
    def instrument(self) -> str:
        """Camera, e.g. "WPM", "MUX", "WFI"."""
        return self._name("x:satellite/x:instrument")

    @property
    def path(self) -> int:
        return self._int("x:image/x:path", 0, 9999)

    @property
    def row(self) -> int:
        return self._int("x:image/x:row", 0, 9999)

    @property
    def level(self) -> int:
        """Processing level (4 for L4)."""
        return self._int("x:image/x:level", 0, 9)

    @property
    def columns(self) -> int:
        return self._int("x:image/x:columns", 1, 1_000_000)

    @property
    def lines(self) -> int:
        return self._int("x:image/x:lines", 1, 1_000_000)

    @property
    def pixel_size(self) -> float | None:
        """Horizontal pixel size in metres."""
        text = self._text("x:image/x:horizontalPixelSize")
        return None if text is None else self._number(text, "horizontalPixelSize", 1e-3, 1e5)

    @property
    def orbit_direction(self) -> Literal["ascending", "descending"] | None:
        text = self._text("x:image/x:orbitDirection")
        if text is None:
            return None
        if text.lower() == "ascending":
            return "ascending"
        if text.lower() == "descending":
            return "descending"
        raise MetadataError(self.href, f"orbitDirection is malformed: {text[:40]!r}")

    @property
    def acquired(self) -> datetime:
        """Acquisition time (viewing/center, else image/timeStamp/center), UTC."""
        text = self._text("x:viewing/x:center") or self._text("x:image/x:timeStamp/x:center")
        if text is None:
            raise MetadataError(self.href, "missing element viewing/center")
        return self._time(text, "viewing/center")

    @property
    def processing_time(self) -> datetime | None:
        text = self._text("x:image/x:processingTime")
        return None if text is None else self._time(text, "processingTime")

    @property
    def sun_elevation(self) -> float | None:
        """Sun elevation in degrees."""
        return self._camera_mean("x:image/x:sunPosition/x:elevation", "sun elevation", -90, 90)

    @property
    def sun_azimuth(self) -> float | None:
        """Sun azimuth in degrees."""
        return self._camera_mean("x:image/x:sunPosition/x:sunAzimuth", "sun azimuth", 0, 360)

    @property
    def bbox(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) in degrees around the boundingBox corners of every camera."""
        lons: list[float] = []
        lats: list[float] = []
        for camera in self._cameras:
            for corner in ("UL", "UR", "LR", "LL"):
                lon = self._text(f"x:image/x:boundingBox/x:{corner}/x:longitude", camera)
                lat = self._text(f"x:image/x:boundingBox/x:{corner}/x:latitude", camera)
                if lon is None and lat is None:
                    continue
                if lon is None or lat is None:
                    raise MetadataError(self.href, f"boundingBox/{corner} lacks a coordinate")
                lons.append(self._number(lon, f"boundingBox/{corner} longitude", -180, 180))
                lats.append(self._number(lat, f"boundingBox/{corner} latitude", -90, 90))
        return (min(lons), min(lats), max(lons), max(lats)) if lons else None

    @property
    def gains(self) -> dict[str, float]:
        """absoluteCalibrationCoefficient per band name ("1", "5", ...); empty when absent."""
        gains: dict[str, float] = {}
        for band in self._root.findall("x:image/x:absoluteCalibrationCoefficient/x:band", _NS):
            name = band.get("name", "")
            if not _NAME.fullmatch(name) or name in gains:
                raise MetadataError(self.href, f"calibration band name {name[:40]!r} is malformed")
            text = (band.text or "").strip()
            gains[name] = self._number(text, f"calibration gain of band {name}", 1e-9, 1e3)
        return gains

    def calibration_gains(
        self, bands: tuple[str, str, str, str] = ("1", "2", "3", "4")
    ) -> tuple[tuple[float, float, float, float], Literal["xml", "default"]]:
        """XML gains of `bands`, else DEFAULT_GAINS and a StacmaskWarning naming the href."""
        gains = self.gains
        missing = [band for band in bands if band not in gains]
        if not missing:
            return (gains[bands[0]], gains[bands[1]], gains[bands[2]], gains[bands[3]]), "xml"
        warnings.warn(
            f"{self.href}: no absoluteCalibrationCoefficient for band(s) {', '.join(missing)}; "
            f"using the default WPM gains {DEFAULT_GAINS}",
            StacmaskWarning,
            stacklevel=2,
        )
        return DEFAULT_GAINS, "default"
