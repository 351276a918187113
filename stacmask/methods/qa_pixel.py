"""The Landsat Collection 2 method: the scene's own QA_PIXEL decoded into classes per strip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.errors import DecodeError
from stacmask.methods.landsat_qa import QaPixelConfig, decode_qa_pixel

METHOD_NAME: Final = "qa-pixel"


class QaPixelMethod:
    """MaskMethod over a LandsatSource: decode_qa_pixel of each strip (landsat_qa.py table)."""

    name = METHOD_NAME
    reads_bands_once = False

    def __init__(self, config: QaPixelConfig | None = None) -> None:
        self.config = config or QaPixelConfig()

    def classify(self, source: Any) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Yield (strip, class codes) top to bottom."""
        from stacmask.reading.warped import LandsatSource

        if not isinstance(source, LandsatSource):
            raise DecodeError("the qa-pixel method needs a Landsat C2 scene (profile landsat-c2)")
        for window in source.strips():
            yield window, decode_qa_pixel(source.read_qa(window), self.config)
