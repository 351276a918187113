"""The mask methods of the four main bands, by name, and the default.

Each factory imports its method's module only when the method is made, so that listing the
names (the command line's help) loads no model or compiled kernel.
"""

from __future__ import annotations

from collections.abc import Callable

from stacmask.methods import MaskMethod


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


#: Method name -> factory of the methods that need only the four main bands (any sensor's).
#: The first is the default. hybrid, csmask and ensemble run ukis-csmask's CNN (a core
#: dependency; MethodUnavailable, naming it, when it is missing). Methods of one sensor's own
#: bands (s2cloudless, qa-pixel) are made by their sensor (sensors/registry.py).
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
