"""Exceptions of the processing package.

Domain code raises these; the service and the CLI translate them at their boundary.
"""

from __future__ import annotations

__all__ = [
    "AlertError",
    "AlertNotFoundError",
    "DataError",
    "DetectorConfigError",
    "InvalidTransitionError",
    "ProcessingError",
    "SnapshotError",
]


class ProcessingError(Exception):
    """Base class of every error raised by :mod:`processing`."""


class DetectorConfigError(ProcessingError, ValueError):
    """A detector, bank or index was configured with invalid parameters."""


class SnapshotError(ProcessingError, ValueError):
    """A state snapshot cannot be restored (wrong version, detector or shape)."""


class DataError(ProcessingError, ValueError):
    """Input data (e.g. a CSV series) cannot be read."""


class AlertError(ProcessingError):
    """An alert action that cannot be done, with a text for the operator who asked.

    Args:
        message_vi: Vietnamese text for operators.
        message_en: English text.
    """

    def __init__(self, message_vi: str, message_en: str) -> None:
        super().__init__(f"{message_vi} / {message_en}")
        self.message_vi = message_vi
        self.message_en = message_en


class AlertNotFoundError(AlertError):
    """No such alert (or not one the caller may see)."""


class InvalidTransitionError(AlertError):
    """An alert action that the alert's current state does not allow."""
