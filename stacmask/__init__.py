"""stacmask: cloud, cloud-shadow and water masks published as a static STAC catalog."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stacmask")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
