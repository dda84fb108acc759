"""The load driver: simulators' load mode, as its own process, for one offered load.

The load stations (:func:`simulators.load.load_fleet`) publish QoS 1 station messages (8
readings) logged in as their gateways, paced to the offered rate, spread over as many
processes as load mode decides. Every reading's measurement time is its publish time, so
latency downstream is measured from the publish. The report is load mode's own (sent,
acknowledged, achieved rate) plus the CPU the generator used: ``cpu_s`` while publishing
(first publish to last acknowledgement, every worker process), ``startup_cpu_s`` the rest
(interpreter, imports, connections: a fixed cost of each run, not of each reading).

Run as a child: ``python -m hanoi_ioc.bench.driver PORT CREDENTIALS_DIR STATIONS MSGS_S SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from contract import BrokerAddress
from simulators.load import LoadPlan, run_load

__all__ = ["main", "offer"]

READINGS_PER_MESSAGE = 8


async def offer(port: int, secrets_dir: Path, stations: int, readings_s: float,
                seconds: float) -> dict[str, Any]:  # fmt: skip
    """Publish ``readings_s`` for ``seconds``; returns load mode's report (+ ``cpu_s``)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hanoi_ioc.bench.driver", str(port), str(secrets_dir),
        str(stations), str(readings_s / READINGS_PER_MESSAGE), str(seconds),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        msg = f"the load generator failed (exit {proc.returncode})"
        raise RuntimeError(msg)
    report: dict[str, Any] = json.loads(out)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run one load step and print its report as JSON."""
    port, secrets_dir, stations, rate, seconds = (argv or sys.argv[1:])[:5]
    plan = LoadPlan(
        BrokerAddress("127.0.0.1", int(port)), stations=int(stations), rate_msgs_s=float(rate),
        duration_s=float(seconds), client_prefix="bench", credentials_dir=Path(secrets_dir),
    )  # fmt: skip
    result = run_load(plan)
    report = result.as_dict()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    total = sum(u.ru_utime + u.ru_stime for u in usage)
    report["cpu_s"] = round(result.cpu_s, 2)
    report["startup_cpu_s"] = round(max(0.0, total - result.cpu_s), 2)
    report.pop("workers", None)
    print(json.dumps(report, default=str), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
