"""Backtest: run one detector over a stored or CSV series, strictly streaming.

The same detector code as the live service: every point is scored *before* the detector
sees anything later (each point is its own round of
:meth:`~processing.detectors.VectorDetector.process_many`), decided with the detector's
documented default threshold unless another is given, and learned unless flagged. Points
with a missing value are reported with an empty score and never reach the detector.

CSV input needs a header with ``timestamp`` and ``value`` columns (others are ignored, as in
NAB data files). Timestamps are ISO 8601 (without an offset they are taken as UTC) or epoch
seconds/milliseconds; empty, ``nan``, ``NA``, ``null`` or ``None`` values are missing.

>>> import numpy as np
>>> t = np.arange(300) * 300.0
>>> v = 10 + np.sin(t / 3000.0)
>>> v[250] = 60.0
>>> result = backtest(t, v, detector="spike")
>>> [int(i) for i in np.flatnonzero(result.flags)], result.threshold
([250], 0.5)
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from processing.detectors import DETECTORS, ParamValue, Thresholder, create_detector
from processing.errors import DataError, ProcessingError

__all__ = ["BacktestResult", "Series", "backtest", "main", "read_series_csv", "write_results_csv"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_MISSING: Final = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
_EPOCH_MS_ABOVE: Final = 1e11  # larger epoch numbers are milliseconds (year > 5138 in s)
DEFAULT_DETECTOR: Final = "seasonal_mad"


@dataclass(frozen=True, slots=True)
class Series:
    """A univariate series: epoch seconds and values (NaN = missing)."""

    times_s: FloatArray
    values: FloatArray


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Per-point scores and flags of one backtest.

    Args:
        detector: registry name.
        params: the detector's parameters, defaults included.
        threshold: the decision threshold used.
        times_s: epoch seconds of every point.
        values: the values (NaN = missing).
        scores: per-point score (NaN where the value is missing).
        flags: per-point decision (False where the value is missing).
    """

    detector: str
    params: dict[str, ParamValue]
    threshold: float
    times_s: FloatArray
    values: FloatArray
    scores: FloatArray
    flags: BoolArray = field(repr=False)

    @property
    def n_flagged(self) -> int:
        """How many points were flagged."""
        return int(self.flags.sum())


def _epoch_s(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            msg = f"naive datetime {moment.isoformat()}: times must be tz-aware"
            raise DataError(msg)
        return moment.timestamp()
    return float(moment)


def backtest(
    times: Sequence[datetime | float] | npt.ArrayLike,
    values: npt.ArrayLike,
    detector: str = DEFAULT_DETECTOR,
    *,
    threshold: float | None = None,
    protect: bool = True,
    **params: ParamValue,
) -> BacktestResult:
    """Score a series point by point, each point before anything later is seen.

    Args:
        times: tz-aware datetimes or epoch seconds, one per value, in stream order.
        values: the values (NaN = missing).
        detector: registry name (see :data:`processing.detectors.DETECTORS`).
        threshold: decision threshold; default: the detector's own.
        protect: flagged points do not train the detector (as in the live service).
        **params: detector parameters.

    Raises:
        DataError: when times and values differ in length or a time is naive.
        DetectorConfigError: for an unknown detector or bad parameters.
    """
    raw_times = list(times) if isinstance(times, Sequence) else np.asarray(times).tolist()
    times_s = np.array([_epoch_s(t) for t in raw_times], dtype=np.float64)
    value_arr = np.asarray(values, dtype=np.float64)
    if times_s.shape != value_arr.shape or value_arr.ndim != 1:
        msg = f"{times_s.size} times but {value_arr.size} values"
        raise DataError(msg)
    model = create_detector(detector, params)
    decide = Thresholder(model.default_threshold if threshold is None else threshold, protect)
    ok = np.flatnonzero(np.isfinite(value_arr) & np.isfinite(times_s))
    scores = np.full(value_arr.size, np.nan)
    flags = np.zeros(value_arr.size, dtype=bool)
    # One slot, so every point is its own round: strictly streaming by construction.
    slot = np.zeros(ok.size, dtype=np.intp)
    scores[ok], flags[ok] = model.process_many(slot, value_arr[ok], times_s[ok], decide)
    return BacktestResult(
        detector, model.params, decide.threshold, times_s, value_arr, scores, flags
    )


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


def write_results_csv(target: str | Path | TextIO, result: BacktestResult) -> None:
    """Write ``timestamp,value,score,flag`` rows (ISO UTC times; empty score when missing)."""
    if isinstance(target, str | Path):
        with Path(target).open("w", newline="", encoding="utf-8") as handle:
            write_results_csv(handle, result)
        return
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "flag"])
    for t, v, s, f in zip(result.times_s, result.values, result.scores, result.flags, strict=True):
        stamp = datetime.fromtimestamp(float(t), UTC).isoformat().replace("+00:00", "Z")
        value = "" if math.isnan(v) else repr(float(v))
        score = "" if math.isnan(s) else f"{float(s):.6f}"
        writer.writerow([stamp, value, score, int(f)])


def _param(text: str) -> tuple[str, ParamValue]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        msg = f"--param expects KEY=VALUE, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    if not (value is None or isinstance(value, bool | int | float | str)):
        msg = f"--param {key}: only numbers, booleans, null and strings are accepted"
        raise argparse.ArgumentTypeError(msg)
    return key.strip(), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hanoi-ioc backtest",
        description="Score a timestamp,value series with one detector, strictly streaming.",
    )
    parser.add_argument("--csv", type=Path, help="input CSV with timestamp and value columns")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="K=V")
    parser.add_argument("--threshold", type=float, help="default: the detector's own")
    parser.add_argument("--no-protect", action="store_true", help="let flagged points train")
    parser.add_argument("--out", default="-", help="output CSV path, '-' for stdout")
    parser.add_argument("--list", action="store_true", help="list detectors and exit")
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Command-line entry (``hanoi-ioc backtest --csv in.csv --detector X --out out.csv``).

    Returns:
        0 on success, 2 on bad arguments or unreadable input.
    """
    out = stdout or sys.stdout
    args = _parser().parse_args(argv)
    if args.list:
        for name, cls in sorted(DETECTORS.items()):
            out.write(f"{name}\t{cls.default_threshold}\t{cls.catches}\n")
        return 0
    if args.csv is None:
        sys.stderr.write("backtest: --csv is required (stored-data mode is wired by the CLI)\n")
        return 2
    try:
        series = read_series_csv(args.csv)
        result = backtest(
            series.times_s, series.values, args.detector, threshold=args.threshold,
            protect=not args.no_protect, **dict(args.param),
        )  # fmt: skip
    except (ProcessingError, OSError) as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 2
    if args.out == "-":
        write_results_csv(out, result)
    else:
        write_results_csv(args.out, result)
    logger.info(
        "backtest %s: %d points, %d flagged (threshold %.3f)",
        result.detector, result.scores.size, result.n_flagged, result.threshold,
    )  # fmt: skip
    return 0
