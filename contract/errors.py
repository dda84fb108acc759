"""Errors of the contract: a message, or one reading of it, that breaks it."""

from __future__ import annotations

from typing import Literal

__all__ = ["ContractError", "PayloadError", "RejectReason"]


class ContractError(Exception):
    """Base class of every error raised by :mod:`contract`."""


RejectReason = Literal[
    "oversized",
    "not_utf8",
    "malformed_json",
    "schema",
    "bad_topic",
    "station_mismatch",
    "unknown_quantity",
    "bad_unit",
    "not_finite",
    "physically_impossible",
    "duplicate_key",
    "naive_time",
    "time_out_of_range",
    "relative_time",
    "future_time",
    "stale_time",
    "unknown_station",
    "unknown_sensor",
    "domain_mismatch",
    "senml",
    "retained",
    "internal_error",
    "storage_refused",
]
"""Stable machine-readable reasons a message or a reading is refused (metric labels)."""


class PayloadError(ContractError, ValueError):
    """A message (or one reading of it) that breaks the contract.

    Args:
        reason: stable machine-readable code, used as a metric label.
        detail: what exactly is wrong, for the quarantine table and the log.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail
