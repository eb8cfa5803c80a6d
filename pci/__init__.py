"""pci-pipeline: monthly Partner Contribution Indicator scores."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pci-pipeline")
except PackageNotFoundError:  # a source tree that was not installed (make setup installs it)
    __version__ = "0+unknown"
