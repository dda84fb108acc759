"""Exceptions of the processing package.

Domain code raises these; the service and the CLI translate them at their boundary.
"""

from __future__ import annotations

__all__ = ["DataError", "DetectorConfigError", "ProcessingError", "SnapshotError"]


class ProcessingError(Exception):
    """Base class of every error raised by :mod:`processing`."""


class DetectorConfigError(ProcessingError, ValueError):
    """A detector, bank or index was configured with invalid parameters."""


class SnapshotError(ProcessingError, ValueError):
    """A state snapshot cannot be restored (wrong version, detector or shape)."""


class DataError(ProcessingError, ValueError):
    """Input data (e.g. a CSV series) cannot be read."""
