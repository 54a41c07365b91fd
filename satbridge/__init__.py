"""satbridge: the Satellite Bridge of an XCC satellite VM."""

__version__ = "0.1.0"
