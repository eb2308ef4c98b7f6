"""srd: a super-resolution daemon running waifu2x-family networks on JAX."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("srd")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
