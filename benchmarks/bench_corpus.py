"""Cost of every detector of the offline harness on the corpus, per point, one stream at a time.

Run: ``.venv/bin/python benchmarks/bench_corpus.py`` (a few minutes; ``--quick`` for one seed
of 2000 points, ``--peers calibrated,windowed_gaussian`` to choose).

Each peer of :mod:`processing.offline.peers` scores every series of the corpus
(:mod:`processing.offline.corpus`) strictly streaming, as the harness does; the figure is the
CPU time per point. Ratios are against the windowed Gaussian baseline timed in the same run
(numpy, vectorised over the whole series: the cheapest possible peer, and not a streaming
implementation, so it is a floor rather than a rival).
"""

from __future__ import annotations

import argparse
import sys
import time

from processing.offline.corpus import corpus
from processing.offline.peers import PEERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--length", type=int, default=4000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    seeds, length = (1, 2000) if args.quick else (args.seeds, args.length)
    series = list(corpus(seeds=seeds, n=length))
    points = sum(s.values.size for s in series)
    names = args.peers.split(",")
    if "windowed_gaussian" not in names:
        names.insert(0, "windowed_gaussian")
    costs: dict[str, float] = {}
    for name in names:
        peer = PEERS[name]
        peer.score(series[0].times_s[:50], series[0].values[:50])  # imports, first-call costs
        start = time.thread_time()
        for s in series:
            peer.score(s.times_s, s.values)
        costs[name] = (time.thread_time() - start) * 1e6 / points
    base = costs["windowed_gaussian"]
    print(f"corpus: {len(series)} series, {points} points")
    print(f"{'detector':20} {'us/point':>9} {'x windowed_gaussian':>20}")
    for name, us in costs.items():
        print(f"{name:20} {us:>9.2f} {us / base:>19.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
