r"""Reading a ``timestamp,value`` CSV series (the backtest's file input).

A header names ``timestamp`` and ``value`` columns (others are ignored, as in NAB data
files). Timestamps are ISO 8601 (without an offset they are taken as UTC) or epoch
seconds/milliseconds; empty, ``nan``, ``NA``, ``null`` or ``None`` values are missing.

>>> import io
>>> read_series_csv(io.StringIO("timestamp,value\n1700000000,1.5\n1700000060,\n")).values
array([1.5, nan])
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from processing.errors import DataError

__all__ = ["Series", "read_series_csv"]

FloatArray = npt.NDArray[np.float64]

_MISSING: Final = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
_EPOCH_MS_ABOVE: Final = 1e11  # larger epoch numbers are milliseconds (year > 5138 in s)


@dataclass(frozen=True, slots=True)
class Series:
    """A univariate series: epoch seconds and values (NaN = missing)."""

    times_s: FloatArray
    values: FloatArray


def _parse_time(text: str, line: int) -> float:
    token = text.strip()
    try:
        number = float(token)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            msg = f"line {line}: timestamp {text!r} is not finite"
            raise DataError(msg)
        return number / 1000.0 if abs(number) > _EPOCH_MS_ABOVE else number
    try:
        moment = datetime.fromisoformat(token)
    except ValueError:
        msg = f"line {line}: timestamp {text!r} is neither ISO 8601 nor epoch seconds"
        raise DataError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_value(text: str | None, line: int) -> float:
    token = (text or "").strip()
    if token.lower() in _MISSING:
        return math.nan
    try:
        return float(token)
    except ValueError:
        msg = f"line {line}: value {text!r} is not a number"
        raise DataError(msg) from None


def _read_rows(rows: Iterable[dict[str, str | None]], fields: Sequence[str]) -> Series:
    columns = {name.strip().lower(): name for name in fields}
    if "timestamp" not in columns or "value" not in columns:
        msg = f"the header must name 'timestamp' and 'value' columns, got {list(fields)}"
        raise DataError(msg)
    times: list[float] = []
    values: list[float] = []
    for line, row in enumerate(rows, start=2):
        stamp = row.get(columns["timestamp"])
        if stamp is None or not stamp.strip():
            msg = f"line {line}: missing timestamp"
            raise DataError(msg)
        times.append(_parse_time(stamp, line))
        values.append(_parse_value(row.get(columns["value"]), line))
    return Series(np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64))


def read_series_csv(source: str | Path | TextIO) -> Series:
    """Read a ``timestamp,value`` CSV (path or open text file).

    Raises:
        DataError: on a missing column, an unreadable timestamp or a non-numeric value.
    """
    if isinstance(source, str | Path):
        with Path(source).open(newline="", encoding="utf-8-sig") as handle:
            return read_series_csv(handle)
    reader = csv.DictReader(source)
    return _read_rows(reader, reader.fieldnames or [])
