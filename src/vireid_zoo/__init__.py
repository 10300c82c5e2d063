"""vireid-zoo: visible-infrared person re-identification models, data and evaluation."""

from importlib.metadata import PackageNotFoundError, version

from vireid_zoo.models import create_model, list_models

try:
    __version__ = version("vireid-zoo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "create_model", "list_models"]
