"""Mask methods: each turns a BandSource into strips of class codes (numpy in, numpy out).

A method declares the bands it reads by name (`bands`; the four main ones by default) and the
optional layers it may hand back with its classes (`layers`, e.g. a cloud probability); it
yields `(window, classes)` for every strip, or `MaskStrip(window, classes, layers)` to give
those layers too. The engine (pipeline/masking.py) writes the classes as the mask COG and each
layer as its own COG asset, described on the item by its LayerSpec.

This module holds the types every method shares; `methods/registry.py` names the methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from stacmask.reading.band_source import BandSource
from stacmask.sensors.inputs import MAIN_BANDS


@dataclass(frozen=True)
class LayerSpec:
    """An optional layer a method hands back: a uint8 raster (nodata 255) on the mask grid,
    published as asset `name` (`<scene>_<name>.tif`)."""

    name: str
    title: str
    description: str
    roles: tuple[str, ...] = ("data",)
    unit: str | None = None


class MaskStrip(NamedTuple):
    """A strip of class codes and, by LayerSpec name, the method's optional layers over it."""

    window: Window
    classes: NDArray[np.uint8]
    layers: Mapping[str, NDArray[np.uint8]] = {}


#: What `classify` yields for a strip.
ClassifiedStrip = tuple[Window, NDArray[np.uint8]] | MaskStrip


class MaskMethod(Protocol):
    """A cloud, shadow and water classifier."""

    name: str
    #: True when the method reads each strip of the bands once, top to bottom, so that the
    #: bands can be streamed without a scratch copy (see reading.RasterBandSource).
    reads_bands_once: bool
    #: Bands the method reads by name (the scene must have them).
    bands: tuple[str, ...]
    #: Optional layers the method may yield with its classes.
    layers: tuple[LayerSpec, ...]

    def classify(self, source: BandSource) -> Iterator[ClassifiedStrip]:
        """Yield (strip window, uint8 class codes), or MaskStrip, for every strip, top to bottom."""
        ...

    def describe(self) -> str:
        """The method and its settings, for processing:lineage ("physical method")."""
        ...

    def item_properties(self) -> dict[str, Any]:
        """Mask item properties that record the method's settings ({} for none)."""
        ...


class MethodDefaults:
    """What most methods share: the four main bands, no optional layers, no settings to record."""

    name: str
    bands: tuple[str, ...] = MAIN_BANDS
    layers: tuple[LayerSpec, ...] = ()

    def describe(self) -> str:
        """The method's name and "method"."""
        return f"{self.name} method"

    def item_properties(self) -> dict[str, Any]:
        """No properties."""
        return {}
