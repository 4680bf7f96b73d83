"""controlcheck: check promised security measures against real machines."""

__version__ = "0.1.0"
