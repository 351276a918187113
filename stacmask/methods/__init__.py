"""Mask methods: each turns a BandSource into strips of class codes (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.reading.band_source import BandSource


class MaskMethod(Protocol):
    """A cloud, shadow and water classifier."""

    name: str
    #: True when the method reads each strip of the bands once, top to bottom, so that the
    #: bands can be streamed without a scratch copy (see reading.RasterBandSource).
    reads_bands_once: bool

    def classify(self, source: BandSource) -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        """Yield (strip window, uint8 class codes) for every strip, top to bottom."""
        ...


def _physical() -> MaskMethod:
    from stacmask.methods.physical import PhysicalMethod

    return PhysicalMethod()


def _notebook() -> MaskMethod:
    from stacmask.methods.notebook import NotebookMethod

    return NotebookMethod()


def _csmask() -> MaskMethod:
    from stacmask.methods.csmask import CsmaskMethod

    return CsmaskMethod()


def _hybrid() -> MaskMethod:
    from stacmask.methods.hybrid import HybridMethod

    return HybridMethod()


def _ensemble() -> MaskMethod:
    from stacmask.methods.ensemble import EnsembleMethod

    return EnsembleMethod()


#: Method name -> factory. The first is the default. hybrid, csmask and ensemble run
#: ukis-csmask's CNN (a core dependency; MethodUnavailable, naming it, when it is missing).
METHODS: dict[str, Callable[[], MaskMethod]] = {
    "hybrid": _hybrid,
    "physical": _physical,
    "notebook": _notebook,
    "csmask": _csmask,
    "ensemble": _ensemble,
}
DEFAULT_METHOD = "hybrid"


def get_method(name: str) -> MaskMethod:
    """The method called `name`; ValueError naming the known ones otherwise."""
    try:
        return METHODS[name]()
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown mask method {name!r}; known methods: {known}") from None
