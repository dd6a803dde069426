"""alexnet-audit: which claims of the AlexNet paper hold up, settled with runs and statistics."""

__version__ = "0.1.0"
