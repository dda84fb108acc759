"""Generate ``grafana/dashboards/*.json`` from the Python definitions (dashboards as code).

Usage::

    python grafana/build_dashboards.py            # (re)write the JSON files
    python grafana/build_dashboards.py --check    # exit 1 when a file is missing or differs
    python grafana/build_dashboards.py --out DIR  # write elsewhere

The JSON files are committed: Grafana loads them through file provisioning
(``provisioning/dashboards/hanoi.yaml``), and the tests regenerate them and compare. Edit the
Python (``boards_*.py``), never the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import boards_air
import boards_alerts
import boards_city
import boards_ops
from dashkit import Json

HERE: Final = Path(__file__).resolve().parent
DEFAULT_OUT: Final = HERE / "dashboards"

BOARDS: Final[dict[str, Callable[[], Json]]] = {
    "city-overview.json": boards_ops.city_overview,
    "air-quality.json": boards_air.air_quality,
    "flooding.json": boards_city.flooding,
    "west-lake.json": boards_city.west_lake,
    "traffic.json": boards_city.traffic,
    "alerts.json": boards_alerts.alerts,
    "ingest-health.json": boards_ops.ingest_health,
}


def render(board: Json) -> str:
    """The exact file content for one dashboard (stable key order, UTF-8, trailing newline)."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def build_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {name: render(build()) for name, build in BOARDS.items()}


def _differences(out: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for name, text in files.items():
        path = out / name
        if not path.exists():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"differs: {path}")
    problems += [f"not generated: {p}" for p in sorted(out.glob("*.json")) if p.name not in files]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or check) the dashboards; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files = build_all()
    out: Path = args.out
    if args.check:
        problems = _differences(out, files)
        for problem in problems:
            sys.stderr.write(problem + "\n")
        if problems:
            sys.stderr.write("run: python grafana/build_dashboards.py\n")
        return 1 if problems else 0
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {len(files)} dashboards to {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
