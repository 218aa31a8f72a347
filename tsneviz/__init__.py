"""tsneviz: see what an image classifier has learned about its data."""

__version__ = '0.1.0'
