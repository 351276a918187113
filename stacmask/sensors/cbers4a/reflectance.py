"""DN to radiance to top-of-atmosphere reflectance for CBERS-4A WPM (cbers4a.md)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from stacmask.constants import ESUN_WPM


def earth_sun_distance(when: datetime) -> float:
    """Earth-Sun distance in astronomical units for the day of `when`.

    Spencer-type approximation d = 1 - 0.01672 cos(0.9856 deg * (doy - 4)), accurate to ~1e-4 AU.
    """
    doy = when.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def reflectance_factors(
    gains: tuple[float, float, float, float],
    sun_elevation: float | None,
    acquired: datetime | None,
    esun: tuple[float, float, float, float] = ESUN_WPM,
) -> NDArray[np.float64]:
    """Per-band factor k so that rho = k * DN.

    rho = pi * (DN * gain) * d^2 / (ESUN * cos(90 deg - elevation)). Without a sun elevation the
    sun is taken at zenith, without a date d = 1 AU; both are recorded by the caller.
    """
    d = earth_sun_distance(acquired) if acquired is not None else 1.0
    cos_zenith = math.sin(math.radians(sun_elevation)) if sun_elevation is not None else 1.0
    cos_zenith = max(cos_zenith, 1e-3)
    return np.array(
        [math.pi * g * d * d / (e * cos_zenith) for g, e in zip(gains, esun, strict=True)],
        dtype=np.float64,
    )
