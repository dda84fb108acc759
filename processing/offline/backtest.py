"""Backtest: run one detector over a stored or CSV series, strictly streaming.

The same detector code as the live service: every point is scored *before* the detector
sees anything later (each point is its own round of
:meth:`~processing.detectors.VectorDetector.process_many`), decided with the detector's
documented default threshold unless another is given, and learned unless flagged. Points
with a missing value are reported with an empty score and never reach the detector.

Stored data (``--sensor <station>.<quantity>`` with ``--since``/``--until``) is read through
a server-side cursor (:mod:`processing.offline.stored`) and scored chunk by chunk as it arrives, so
the output starts before the series has been read and memory stays flat; the scores are
identical to scoring the whole series at once (:class:`Backtester` keeps the state).

CSV input (:mod:`processing.series_csv`) needs ``timestamp`` and ``value`` columns. Times are
epoch seconds throughout: detectors see the readings' own times, so irregular sampling, gaps,
repeated and late timestamps reach them as they are (the default ``calibrated`` detector is
built for them). The log line counts flagged points and events (runs of flags).

>>> import numpy as np
>>> t = np.arange(300) * 300.0
>>> v = 10 + np.sin(t / 3000.0)
>>> v[250] = 60.0
>>> result = backtest(t, v, detector="spike")
>>> [int(i) for i in np.flatnonzero(result.flags)], result.threshold
([250], 0.4)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol, TextIO

import numpy as np
import numpy.typing as npt
import psycopg

from processing.detectors import (
    DETECTORS,
    ParamValue,
    SeriesScorer,
    Thresholder,
    create_detector,
)
from processing.errors import DataError, ProcessingError
from processing.offline.series_csv import Series, read_series_csv
from processing.offline.stored import stream_series

__all__ = [
    "BacktestResult",
    "Backtester",
    "Series",
    "backtest",
    "backtest_stored",
    "iter_backtest_stored",
    "main",
    "read_series_csv",
    "write_results_csv",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_DETECTOR: Final = "calibrated"
_EMBEDDED_URL: Final = "postgresql://hanoi@127.0.0.1:55432/hanoi"  # what `hanoi-ioc up` starts


class _RowWriter(Protocol):
    """What a ``csv.writer`` offers (its type is private to the ``_csv`` module)."""

    def writerow(self, row: Iterable[object], /) -> object:
        """Write one row."""


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

    @property
    def n_events(self) -> int:
        """How many alarms an analyst sees: runs of consecutive flagged points.

        The calibrated detector flags one point per event (its refractory rule), so its
        events equal its flags; a detector without one may flag every point of an event.
        """
        starts = self.flags & ~np.concatenate([[False], self.flags[:-1]])
        return int(starts.sum())


def _epoch_s(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            msg = f"naive datetime {moment.isoformat()}: times must be tz-aware"
            raise DataError(msg)
        return moment.timestamp()
    return float(moment)


class Backtester:
    """A detector scoring one series in pieces, with the state carried between them.

    Args:
        detector: registry name.
        threshold: decision threshold; default: the detector's own.
        protect: flagged points do not train the detector.
        params: detector parameters.

    >>> b = Backtester("spike")
    >>> first = b.score(np.arange(30) * 60.0, np.full(30, 10.0) + np.arange(30) % 3)
    >>> later = b.score(np.array([1800.0]), np.array([90.0]))
    >>> bool(later[1][0]), bool(first[1].any())
    (True, False)
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        *,
        threshold: float | None = None,
        protect: bool = True,
        params: Mapping[str, ParamValue] | None = None,
    ) -> None:
        self.detector = detector
        self.model = create_detector(detector, dict(params or {}))
        self.thresholder = Thresholder(
            self.model.default_threshold if threshold is None else threshold, protect
        )

    def score(self, times_s: FloatArray, values: FloatArray) -> tuple[FloatArray, BoolArray]:
        """Scores and flags of the next points (NaN score, no flag, where a value is missing)."""
        ok = np.flatnonzero(np.isfinite(values) & np.isfinite(times_s))
        scores = np.full(values.size, np.nan)
        flags = np.zeros(values.size, dtype=bool)
        if isinstance(self.model, SeriesScorer):
            # The same arithmetic on floats: numpy's per-call cost would dominate one point.
            scores[ok], flags[ok] = self.model.process_series(
                values[ok], times_s[ok], self.thresholder
            )
            return scores, flags
        # One slot, so every point is its own round: strictly streaming by construction.
        slot = np.zeros(ok.size, dtype=np.intp)
        scores[ok], flags[ok] = self.model.process_many(
            slot, values[ok], times_s[ok], self.thresholder
        )
        return scores, flags

    def result(self, times_s: FloatArray, values: FloatArray, scores: FloatArray,
               flags: BoolArray) -> BacktestResult:  # fmt: skip
        """A :class:`BacktestResult` of this detector for the given points."""
        return BacktestResult(
            self.detector, self.model.params, self.thresholder.threshold, times_s, values,
            scores, flags,
        )  # fmt: skip


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
    scorer = Backtester(detector, threshold=threshold, protect=protect, params=params)
    scores, flags = scorer.score(times_s, value_arr)
    return scorer.result(times_s, value_arr, scores, flags)


def iter_backtest_stored(
    database_url: str,
    sensor: str,
    detector: str = DEFAULT_DETECTOR,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    threshold: float | None = None,
    protect: bool = True,
    chunk: int = 5000,
    params: Mapping[str, ParamValue] | None = None,
) -> Iterator[BacktestResult]:
    """Score a stored series as it streams from the database, one chunk at a time.

    Each yielded result covers the next chunk of points; together they equal
    :func:`backtest` on the whole series (the detector's state carries over).

    Args:
        database_url: libpq URL.
        sensor: ``<station>.<quantity>``.
        detector: registry name.
        since: first measurement time included (tz-aware).
        until: first measurement time excluded (tz-aware).
        threshold: decision threshold; default: the detector's own.
        protect: flagged points do not train the detector.
        chunk: rows per round trip of the server-side cursor.
        params: detector parameters.

    Raises:
        DataError: for an unknown sensor or naive times.
        DetectorConfigError: for an unknown detector or bad parameters.
    """
    scorer = Backtester(detector, threshold=threshold, protect=protect, params=params)
    for times_s, values in stream_series(database_url, sensor, since=since, until=until,
                                         chunk=chunk):  # fmt: skip
        scores, flags = scorer.score(times_s, values)
        yield scorer.result(times_s, values, scores, flags)


def backtest_stored(
    database_url: str,
    sensor: str,
    detector: str = DEFAULT_DETECTOR,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    threshold: float | None = None,
    protect: bool = True,
    **params: ParamValue,
) -> BacktestResult:
    """:func:`iter_backtest_stored`, gathered into one result (for series that fit in memory).

    Raises:
        DataError: for an unknown sensor or naive times.
        DetectorConfigError: for an unknown detector or bad parameters.
    """
    chunks = iter_backtest_stored(database_url, sensor, detector, since=since, until=until,
                                  threshold=threshold, protect=protect, params=params)  # fmt: skip
    parts = list(chunks)
    if not parts:
        scorer = Backtester(detector, threshold=threshold, protect=protect, params=params)
        empty = np.zeros(0)
        return scorer.result(empty, empty, empty, np.zeros(0, dtype=bool))
    return dataclasses.replace(
        parts[0],
        times_s=np.concatenate([x.times_s for x in parts]),
        values=np.concatenate([x.values for x in parts]),
        scores=np.concatenate([x.scores for x in parts]),
        flags=np.concatenate([x.flags for x in parts]),
    )


def write_results_csv(
    target: str | Path | TextIO, result: BacktestResult | Iterable[BacktestResult]
) -> int:
    """Write ``timestamp,value,score,flag`` rows (ISO UTC times; empty score when missing).

    ``result`` may be a stream of chunks (:func:`iter_backtest_stored`): each is written as
    it comes. Returns the number of points written.
    """
    if isinstance(target, str | Path):
        with Path(target).open("w", newline="", encoding="utf-8") as handle:
            return write_results_csv(handle, result)
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "flag"])
    chunks = [result] if isinstance(result, BacktestResult) else result
    written = 0
    for chunk in chunks:
        _write_rows(writer, chunk)
        written += chunk.scores.size
    return written


def _write_rows(writer: _RowWriter, result: BacktestResult) -> None:
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
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", type=Path, help="input CSV with timestamp and value columns")
    source.add_argument("--sensor", help="a stored series: <station>.<quantity>")
    parser.add_argument("--since", type=_moment, help="stored series from (ISO 8601; UTC if naive)")
    parser.add_argument("--until", type=_moment, help="stored series until, excluded")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", _EMBEDDED_URL),
        help="libpq URL (default: env DATABASE_URL, else the embedded server of `up`)",
    )  # fmt: skip
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS))
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="K=V")
    parser.add_argument("--threshold", type=float, help="default: the detector's own")
    parser.add_argument("--no-protect", action="store_true", help="let flagged points train")
    parser.add_argument("--out", default="-", help="output CSV path, '-' for stdout")
    parser.add_argument("--list", action="store_true", help="list detectors and exit")
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Command-line entry (``hanoi-ioc backtest --csv in.csv`` or ``--sensor st.q``).

    Returns:
        0 on success, 2 on bad arguments or unreadable input.
    """
    out = stdout or sys.stdout
    args = _parser().parse_args(argv)
    if args.list:
        for name, cls in sorted(DETECTORS.items()):
            out.write(f"{name}\t{cls.default_threshold}\t{cls.catches}\n")
        return 0
    if args.csv is None and args.sensor is None:
        sys.stderr.write("backtest: give --csv FILE or --sensor <station>.<quantity>\n")
        return 2
    try:
        results = _results(args)
        target: str | TextIO = out if args.out == "-" else args.out
        points = write_results_csv(target, _counting(results, flagged := [0, 0]))
    except (ProcessingError, OSError, psycopg.Error) as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 2
    logger.info("backtest %s: %d points, %d flagged, %d events", args.detector, points,
                flagged[0], flagged[1])  # fmt: skip
    return 0


def _results(args: argparse.Namespace) -> BacktestResult | Iterator[BacktestResult]:
    options: dict[str, ParamValue] = dict(args.param)
    if args.sensor is not None:
        return iter_backtest_stored(
            args.database_url, args.sensor, args.detector, since=args.since, until=args.until,
            threshold=args.threshold, protect=not args.no_protect, params=options,
        )  # fmt: skip
    series = read_series_csv(args.csv)
    return backtest(
        series.times_s, series.values, args.detector, threshold=args.threshold,
        protect=not args.no_protect, **options,
    )  # fmt: skip


def _counting(
    results: BacktestResult | Iterator[BacktestResult], flagged: list[int]
) -> Iterator[BacktestResult]:
    for chunk in [results] if isinstance(results, BacktestResult) else results:
        flagged[0] += chunk.n_flagged
        flagged[1] += chunk.n_events  # a run across two chunks counts twice: rare, harmless
        yield chunk


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{text!r} is not an ISO 8601 time"
        raise argparse.ArgumentTypeError(msg) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
