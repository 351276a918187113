"""A CBERS scene's radiometry: gains and sun angles from its INPE XML, or the defaults."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import datetime

from stacmask.constants import DEFAULT_GAINS
from stacmask.errors import StacmaskWarning, UnusualValueWarning
from stacmask.reading.storage import LOCAL, StorageAccess
from stacmask.sensors.inputs import Calibration


@dataclass(frozen=True)
class Radiometry:
    """Gains and sun geometry of a scene, and where the gains came from."""

    gains: tuple[float, float, float, float]
    calibration: Calibration
    sun_elevation: float | None
    sun_azimuth: float | None
    acquired: datetime | None

    def or_sun(self, elevation: float | None, azimuth: float | None) -> Radiometry:
        """The same radiometry with the sun angles given here where it has none of its own."""
        return replace(
            self,
            sun_elevation=elevation if self.sun_elevation is None else self.sun_elevation,
            sun_azimuth=azimuth if self.sun_azimuth is None else self.sun_azimuth,
        )

    def with_sun(self, elevation: float | None, azimuth: float | None) -> Radiometry:
        """The same radiometry with the sun angles given here in place of its own (None: kept)."""
        return replace(
            self,
            sun_elevation=self.sun_elevation if elevation is None else elevation,
            sun_azimuth=self.sun_azimuth if azimuth is None else azimuth,
        )


#: A gain more than this factor away from the usual WPM gain (DEFAULT_GAINS) is suspicious.
GAIN_TOLERANCE = 10.0


def warn_unusual_gains(gains: tuple[float, float, float, float], href: str) -> None:
    """A StacmaskWarning naming `href` for each gain over GAIN_TOLERANCE times off the usual."""
    for band, (gain, usual) in enumerate(zip(gains, DEFAULT_GAINS, strict=True), start=1):
        if not usual / GAIN_TOLERANCE <= gain <= usual * GAIN_TOLERANCE:
            warnings.warn(
                f"{href}: calibration gain {gain:g} of band {band} is over {GAIN_TOLERANCE:g}x "
                f"off the usual WPM gain {usual:g}; the reflectance and covers may be wrong",
                UnusualValueWarning,
                stacklevel=3,
            )


def read_radiometry(
    xml_href: str | None,
    acquired: datetime | None,
    timeout: float = 60.0,
    access: StorageAccess = LOCAL,
) -> Radiometry:
    """Gains and sun angles from the XML at `xml_href` (read under the href policy `access`);
    the default gains when it has none."""
    if xml_href is None:
        warnings.warn(
            "no XML metadata: using the default gains and no sun angles",
            StacmaskWarning,
            stacklevel=2,
        )
        return Radiometry(DEFAULT_GAINS, "default", None, None, acquired)
    from stacmask.sensors.cbers4a.xml import SceneMetadata

    meta = SceneMetadata.read(xml_href, timeout=timeout, access=access)
    gains, source = meta.calibration_gains()
    if source == "xml":
        warn_unusual_gains(gains, xml_href)
    return Radiometry(
        gains=gains,
        calibration=source,
        sun_elevation=meta.sun_elevation,
        sun_azimuth=meta.sun_azimuth,
        acquired=meta.acquired or acquired,
    )
