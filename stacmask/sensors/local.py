"""SceneInputs of local files, for `stacmask mask`: the same seam as a sensor's STAC items.

- four DN band files (blue, green, red, nir) with an optional INPE XML (CBERS-4A WPM);
- one four-band TOA reflectance stack (blue, green, red, nir), times a scale.
Sun angles given here replace the XML's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from stacmask.sensors.cbers4a.radiometry import Radiometry, read_radiometry
from stacmask.sensors.cbers4a.sensor import band_inputs
from stacmask.sensors.inputs import SceneInputs

#: The `sensor` of local inputs (not a registered sensor: no STAC item to read).
LOCAL_SENSOR: Final = "local-files"


def band_files_inputs(
    bands: Sequence[str | Path],
    metadata: str | Path | None = None,
    *,
    sun_elevation: float | None = None,
    sun_azimuth: float | None = None,
    radiometry: Radiometry | None = None,
) -> SceneInputs:
    """Four DN rasters calibrated with the XML at `metadata` (the default gains without one),
    or with `radiometry` when given."""
    hrefs = [str(band) for band in bands]
    if radiometry is None:
        radiometry = read_radiometry(None if metadata is None else str(metadata), None)
    return band_inputs(
        hrefs,
        radiometry.with_sun(sun_elevation, sun_azimuth),
        scene_id=Path(hrefs[0]).stem,
        sensor=LOCAL_SENSOR,
        providers=(),
        lineage=f"the blue, green, red and NIR band files {', '.join(hrefs)}",
    )


def reflectance_stack_inputs(
    stack: str | Path,
    scale: float = 1.0,
    *,
    sun_elevation: float | None = None,
    sun_azimuth: float | None = None,
) -> SceneInputs:
    """Bands 1-4 of one TOA reflectance raster: reflectance = stored value x `scale`."""
    radiometry = Radiometry((scale,) * 4, "reflectance", sun_elevation, sun_azimuth, None)
    return band_inputs(
        [str(stack)] * 4,
        radiometry,
        scene_id=Path(stack).stem,
        sensor=LOCAL_SENSOR,
        indexes=(1, 2, 3, 4),
        providers=(),
        lineage=f"bands 1-4 of the reflectance stack {stack}",
    )
