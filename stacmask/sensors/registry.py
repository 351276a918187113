"""Sensors as plugins: a Sensor record per sensor, found by name through an entry-point group.

A sensor module defines one `Sensor` value and registers it under the entry-point group
`stacmask.sensors` of its distribution (pyproject.toml):

    [project.entry-points."stacmask.sensors"]
    my-sensor = "my_package.my_sensor:SENSOR"

`get_sensor(name)` loads it. stacmask's own three are declared the same way in its
pyproject.toml and are also known here (BUILTIN_SENSORS), so that a source checkout whose
installed metadata is older than its code still finds them; an installed plugin cannot take
a built-in's name. docs/sensors.md shows a complete plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Final

import pystac

from stacmask.errors import ProfileError
from stacmask.sensors.inputs import SceneInputs, SensorOptions

if TYPE_CHECKING:
    from stacmask.methods import MaskMethod

#: Entry-point group sensors register under.
ENTRY_POINT_GROUP: Final = "stacmask.sensors"
#: The built-in sensors (the same entries as pyproject.toml's [project.entry-points]).
BUILTIN_SENSORS: Final[dict[str, str]] = {
    "cbers4a-wpm": "stacmask.sensors.cbers4a.sensor:SENSOR",
    "sentinel2-l1c": "stacmask.sensors.sentinel2:SENSOR",
    "landsat-c2": "stacmask.sensors.landsat:SENSOR",
}
DEFAULT_SENSOR: Final = "cbers4a-wpm"


def registry_method(name: str, options: SensorOptions) -> MaskMethod:
    """A method of stacmask's method registry (methods.METHODS), which take no options."""
    from stacmask.methods.registry import get_method

    return get_method(name)


@dataclass(frozen=True)
class Sensor:
    """One sensor: how its STAC items become SceneInputs, and which mask methods apply."""

    #: Registered name, given to `stacmask build --profile NAME`.
    name: str
    title: str
    #: Source collection searched when `--collection` is not given.
    default_collection: str
    #: Mask methods that apply to its scenes; the first is the default.
    methods: tuple[str, ...]
    #: The seam: a source item (and the build's options) to the scene's inputs. Raises
    #: ItemError naming the item for items the sensor does not support.
    scene_inputs: Callable[[pystac.Item, SensorOptions], SceneInputs]
    #: Makes the method called `name` (one of `methods`) with the build's options.
    make_method: Callable[[str, SensorOptions], MaskMethod] = registry_method
    #: What the sensor reads, in one sentence (its refusals quote it; docs/sensors.md).
    supports: str = ""

    @property
    def default_method(self) -> str:
        """The method used when none is asked for."""
        return self.methods[0]

    def method(self, name: str | None, options: SensorOptions) -> MaskMethod:
        """The method `name` (None: the default); ProfileError when it does not apply."""
        chosen = name or self.default_method
        if chosen not in self.methods:
            raise ProfileError(
                f"method {chosen!r} does not apply to sensor {self.name} "
                f"(use {', '.join(self.methods)})"
            )
        return self.make_method(chosen, options)


def _entry_points() -> dict[str, list[EntryPoint]]:
    """Every registered sensor entry point by name: the built-ins, then the installed ones."""
    found: dict[str, list[EntryPoint]] = {
        name: [EntryPoint(name, value, ENTRY_POINT_GROUP)]
        for name, value in BUILTIN_SENSORS.items()
    }
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in BUILTIN_SENSORS:
            continue  # stacmask's own (its installed metadata), or a plugin taking a built-in name
        targets = found.setdefault(point.name, [])
        if all(point.value != known.value for known in targets):
            targets.append(point)
    return found


def sensor_names() -> list[str]:
    """Names of every sensor: the built-ins and the installed plugins, sorted."""
    return sorted(_entry_points())


@cache
def _load(name: str, value: str) -> Sensor:
    try:
        sensor = EntryPoint(name, value, ENTRY_POINT_GROUP).load()
    except Exception as exc:  # a broken plugin: say which, and why
        raise ProfileError(
            f"sensor {name!r} ({ENTRY_POINT_GROUP} entry point {value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(sensor, Sensor):
        raise ProfileError(
            f"sensor {name!r}: entry point {value} is a {type(sensor).__name__}, "
            "not a stacmask.sensors.registry.Sensor"
        )
    if sensor.name != name:
        raise ProfileError(f"sensor {name!r}: entry point {value} holds the sensor {sensor.name!r}")
    return sensor


def get_sensor(name: str) -> Sensor:
    """The sensor called `name`; ProfileError naming the known ones otherwise."""
    points = _entry_points()
    targets = points.get(name)
    if not targets:
        known = ", ".join(sorted(points))
        raise ProfileError(f"unknown sensor profile {name!r}; known profiles: {known}")
    if len(targets) > 1:
        raise ProfileError(
            f"sensor {name!r} is registered twice: {', '.join(t.value for t in targets)}"
        )
    return _load(name, targets[0].value)
