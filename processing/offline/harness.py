"""Score detectors on the corpus and report, per family, what an analyst would live with.

``python -m processing.offline.harness`` runs every peer (:mod:`processing.offline.peers`)
over the corpus (:mod:`processing.offline.corpus`) and prints, per family and detector:

- **FF/1k clean**: flags per 1000 points on the anomaly-free series (every flag is false);
- **FF/1k**: flags outside the labelled windows per 1000 points, all series;
- **recall**: labelled anomalies with a flag inside their window;
- **delay**: median points from an anomaly's start to its first flag (detected ones);
- **F1**: of alarms (runs of consecutive flags, true when they touch a window) and recall.

The first 10% of each series is a burn-in that is not judged (every detector is cold then).
Each detector is judged at its own fixed threshold; ``--oracle`` adds, for each, the single
threshold over the whole corpus that maximises its F1 (a bound no deployed detector has).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from processing.offline.corpus import FAMILIES, LabelledSeries, corpus
from processing.offline.peers import PEERS, Peer

__all__ = ["Outcome", "Tally", "judge", "main", "run"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
BURN_IN: Final = 0.1


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one detector's flags on one series amount to."""

    points: int
    clean: bool
    false_flags: int
    alarms: int
    true_alarms: int
    windows: int
    detected: int
    delays: tuple[int, ...]


@dataclass(slots=True)
class Tally:
    """Outcomes added up (per family, or overall)."""

    points: int = 0
    clean_points: int = 0
    clean_flags: int = 0
    false_flags: int = 0
    alarms: int = 0
    true_alarms: int = 0
    windows: int = 0
    detected: int = 0
    delays: list[int] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        """Add one series' outcome."""
        self.points += o.points
        self.false_flags += o.false_flags
        if o.clean:
            self.clean_points += o.points
            self.clean_flags += o.false_flags
        self.alarms += o.alarms
        self.true_alarms += o.true_alarms
        self.windows += o.windows
        self.detected += o.detected
        self.delays.extend(o.delays)

    @property
    def clean_rate(self) -> float:
        """False flags per 1000 points on anomaly-free series."""
        return 1000.0 * self.clean_flags / max(self.clean_points, 1)

    @property
    def false_rate(self) -> float:
        """Flags outside windows per 1000 points, all series."""
        return 1000.0 * self.false_flags / max(self.points, 1)

    @property
    def recall(self) -> float:
        """Share of labelled anomalies detected."""
        return self.detected / max(self.windows, 1)

    @property
    def precision(self) -> float:
        """Share of alarms that touch a labelled window (1 when there is no alarm)."""
        return self.true_alarms / self.alarms if self.alarms else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of alarm precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def median_delay(self) -> float:
        """Median detection delay in points (NaN when nothing was detected)."""
        return float(np.median(self.delays)) if self.delays else float("nan")


def judge(series: LabelledSeries, flags: BoolArray) -> Outcome:
    """Compare one series' flags with its labels (after the burn-in)."""
    n = flags.size
    start = int(BURN_IN * n)
    inside = np.zeros(n, dtype=bool)
    delays: list[int] = []
    for anomaly in series.anomalies:
        inside[anomaly.start : anomaly.end] = True
        hits = np.flatnonzero(flags[anomaly.start : anomaly.end])
        if hits.size:
            delays.append(int(hits[0]))
    judged = flags[start:]
    runs = np.flatnonzero(judged & ~np.concatenate([[False], judged[:-1]]))
    true_runs = sum(
        bool(inside[start + r : start + r + _run_length(judged, int(r))].any())
        for r in runs.tolist()
    )  # fmt: skip
    return Outcome(
        n - start, not series.anomalies, int((judged & ~inside[start:]).sum()), int(runs.size),
        true_runs, len(series.anomalies), len(delays), tuple(delays),
    )  # fmt: skip


def _run_length(flags: BoolArray, first: int) -> int:
    stop = np.flatnonzero(~flags[first:])
    return int(stop[0]) if stop.size else flags.size - first


def run(
    peers: Sequence[Peer], series: Iterable[LabelledSeries]
) -> dict[str, list[tuple[LabelledSeries, FloatArray]]]:
    """Every peer's scores on every series (each series scored from a fresh detector)."""
    out: dict[str, list[tuple[LabelledSeries, FloatArray]]] = {p.name: [] for p in peers}
    for s in series:
        for peer in peers:
            out[peer.name].append((s, peer.score(s.times_s, s.values)))
    return out


def tallies(
    scored: Sequence[tuple[LabelledSeries, FloatArray]], threshold: float
) -> dict[str, Tally]:
    """Per family and ``all``, the tally of flags at ``threshold``."""
    out: dict[str, Tally] = {}
    for s, scores in scored:
        outcome = judge(s, scores >= threshold)
        out.setdefault(s.family, Tally()).add(outcome)
        out.setdefault("all", Tally()).add(outcome)
    return out


def oracle_threshold(
    scored: Sequence[tuple[LabelledSeries, FloatArray]], own: float | None = None
) -> float:
    """The single threshold that maximises the corpus-wide F1 (``own`` is a candidate too)."""
    every = np.concatenate([scores for _, scores in scored])
    candidates = np.unique(np.quantile(every[every > 0], np.linspace(0.5, 1.0, 60)))
    if own is not None:
        candidates = np.append(candidates, own)
    best = max(candidates.tolist(), key=lambda t: tallies(scored, t)["all"].f1)
    return float(best)


def _delay(t: Tally) -> str:
    return "–" if np.isnan(t.median_delay) else f"{t.median_delay:.0f}"


def _row(name: str, t: Tally) -> str:
    delay = _delay(t)
    return (f"| {name} | {t.clean_rate:.2f} | {t.false_rate:.2f} | {t.detected}/{t.windows} "
            f"({t.recall:.2f}) | {delay} | {t.precision:.2f} | {t.f1:.2f} |")  # fmt: skip


_HEADER: Final = (
    "| family | FF/1k clean | FF/1k | recall | delay (pts) | precision | F1 |\n"
    "|---|---|---|---|---|---|---|"
)


def report(
    scored: dict[str, list[tuple[LabelledSeries, FloatArray]]],
    peers: Sequence[Peer],
    out: TextIO,
    *,
    oracle: bool = False,
) -> None:
    """Write the markdown tables: per detector, and a summary across detectors."""
    summary: list[tuple[str, float, Tally]] = []
    for peer in peers:
        thresholds = [("own", peer.threshold)]
        if oracle:
            thresholds.append(("oracle", oracle_threshold(scored[peer.name], peer.threshold)))
        for label, threshold in thresholds:
            per = tallies(scored[peer.name], threshold)
            out.write(f"\n#### {peer.name} at its {label} threshold {threshold:g}\n\n{_HEADER}\n")
            for family in [*FAMILIES, *sorted(set(per) - set(FAMILIES) - {"all"}), "all"]:
                if family in per:
                    out.write(_row(family, per[family]) + "\n")
            summary.append((f"{peer.name} ({label} {threshold:g})", threshold, per["all"]))
    out.write(f"\n#### Summary (all families)\n\n{_HEADER.replace('family', 'detector')}\n")
    for name, _, tally in summary:
        out.write(_row(name, tally) + "\n")


def compact(
    scored: dict[str, list[tuple[LabelledSeries, FloatArray]]],
    peers: Sequence[Peer],
    out: TextIO,
) -> None:
    """One table, families x detectors at their own thresholds: FF/1k clean, recall, delay, F1."""
    per = {peer.name: tallies(scored[peer.name], peer.threshold) for peer in peers}
    families = [f for f in (*FAMILIES, *sorted(per[peers[0].name])) if f != "all"]
    families = [*dict.fromkeys(f for f in families if f in per[peers[0].name]), "all"]
    out.write(
        "\n#### FF/1k clean · recall · median delay (points) · F1, each at its own threshold\n\n"
    )
    out.write("| family | " + " | ".join(p.name for p in peers) + " |\n")
    out.write("|---" * (len(peers) + 1) + "|\n")
    for family in families:
        cells = [per[p.name][family] for p in peers]
        row = " | ".join(
            f"{t.clean_rate:.2f} · {t.recall:.2f} · {_delay(t)} · {t.f1:.2f}" for t in cells
        )
        out.write(f"| {family} | {row} |\n")


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Command-line entry: ``python -m processing.offline.harness [--quick] [--oracle]``."""
    parser = argparse.ArgumentParser(
        prog="python -m processing.offline.harness", description="Detectors on the corpus."
    )
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated detectors")
    parser.add_argument("--families", default="", help="comma-separated (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="series per family and kind")
    parser.add_argument("--length", type=int, default=4000, help="points per series")
    parser.add_argument("--real", action="store_true", help="add statsmodels' real series")
    parser.add_argument("--oracle", action="store_true", help="also each one's best threshold")
    parser.add_argument("--quick", action="store_true", help="1 seed of 2000 points")
    parser.add_argument("--compact", action="store_true", help="also one families x peers table")
    args = parser.parse_args(argv)
    out = stdout or sys.stdout
    peers = [PEERS[name] for name in args.peers.split(",") if name]
    families = tuple(f for f in args.families.split(",") if f)
    seeds, length = (1, 2000) if args.quick else (args.seeds, args.length)
    series: list[LabelledSeries] = list(corpus(seeds=seeds, n=length, families=families))
    if args.real:
        from processing.offline.real import real_corpus  # needs statsmodels

        series += list(real_corpus(seeds=seeds))
    out.write(f"corpus: {len(series)} series, {sum(s.values.size for s in series)} points\n")
    scored = run(peers, series)
    report(scored, peers, out, oracle=args.oracle)
    if args.compact:
        compact(scored, peers, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
