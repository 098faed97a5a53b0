"""odx-agent: an unattended photogrammetry pipeline in front of a NodeODX node."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("odx-agent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
