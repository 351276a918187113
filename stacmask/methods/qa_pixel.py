"""The Landsat Collection 2 method: the scene's own QA_PIXEL decoded into classes per strip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.methods import MethodDefaults
from stacmask.methods.landsat_qa import QaPixelConfig, decode_qa_pixel
from stacmask.reading.band_source import BandSource

METHOD_NAME: Final = "qa-pixel"
#: Name of the QA_PIXEL band of a scene.
QA_BAND: Final = "qa_pixel"
#: QA_PIXEL's fill bit: where the band holds no data (outside its file too).
FILL: Final = 1


class QaPixelMethod(MethodDefaults):
    """decode_qa_pixel of each strip of the scene's QA_PIXEL band (landsat_qa.py table)."""

    name = METHOD_NAME
    reads_bands_once = False
    bands: tuple[str, ...] = (QA_BAND,)

    def __init__(self, config: QaPixelConfig | None = None) -> None:
        self.config = config or QaPixelConfig()

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Yield (strip, class codes) top to bottom."""
        for window in source.strips():
            values, valid = source.read_values(QA_BAND, window)
            qa = values.astype(np.uint16)
            qa[~valid] = FILL
            yield window, decode_qa_pixel(qa, self.config)
