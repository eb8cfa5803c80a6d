"""pci-pipeline: monthly Partner Contribution Indicator scores."""
__version__ = "0.1.0"
