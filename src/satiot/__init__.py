"""satiot: an open platform for operating a satellite IoT service."""

__version__ = "0.1.0"
