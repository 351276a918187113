"""A CBERS scene's radiometry: gains and sun angles from its INPE XML, or the defaults."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import datetime

from stacmask.constants import DEFAULT_GAINS
from stacmask.errors import StacmaskWarning
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
    return Radiometry(
        gains=gains,
        calibration=source,
        sun_elevation=meta.sun_elevation,
        sun_azimuth=meta.sun_azimuth,
        acquired=meta.acquired or acquired,
    )
