"""vireid-zoo: visible-infrared person re-identification models, data and evaluation."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from vireid_zoo.models import create_model, list_models

try:
    __version__ = version("vireid-zoo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "convert_checkpoint", "create_model", "list_models"]


def __getattr__(name: str) -> Any:
    """Import ``convert_checkpoint`` (``vireid_zoo.conversion``) on first use."""
    if name == "convert_checkpoint":
        from vireid_zoo.conversion import convert_checkpoint

        return convert_checkpoint
    raise AttributeError(f"module 'vireid_zoo' has no attribute {name!r}")
