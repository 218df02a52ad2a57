"""Sample residential AVM for modelrun."""

__version__ = "0.1.0"
