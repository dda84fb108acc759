"""``hanoi-ioc evaluate``: run scenarios through the real pipeline and write the report.

Examples::

    hanoi-ioc evaluate                                   # every built-in scenario with labels
    hanoi-ioc evaluate --scenario storm-2025-09-30 --scenario west-lake-2016 --out reports/ev
    hanoi-ioc evaluate --scenario winter-pollution --duration 3d --strict

Without ``--database-url``/``--mqtt-url`` it starts a throwaway PostgreSQL cluster and
Mosquitto broker (the embedded servers of ``hanoi-ioc up``) in a temporary directory. With
``--database-url`` the URL's server must let it create a database per scenario (each run
starts from an empty, freshly migrated database, dropped afterwards unless ``--keep-db``).
Exit status: 0, or 1 with ``--strict`` when a target applies and is missed, 2 on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TextIO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

from hanoi_ioc.credentials import CredentialStore
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres
from hanoi_ioc.evaluate.assessment import Assessment, assess
from hanoi_ioc.evaluate.plots import plot_run
from hanoi_ioc.evaluate.report import write_report
from hanoi_ioc.evaluate.runner import BrokerUsers, EvaluationError, RunSpec, run_scenario
from simulators import hanoi_fleet, list_scenarios, load_scenario
from simulators.scenario import parse_duration

__all__ = ["labelled_scenarios", "main"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def labelled_scenarios() -> list[str]:
    """Built-in scenarios that produce ground truth (scripted events or faults)."""
    fleet = hanoi_fleet()
    out = []
    for name in list_scenarios():
        scenario = load_scenario(name, fleet)
        rates = scenario.fault_rates
        faulty = any(getattr(rates, f) > 0 for f in rates.__slots__)
        if scenario.events or scenario.scripted_faults or faulty:
            out.append(name)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hanoi-ioc evaluate",
        description="Score detection on simulator scenarios run through the real pipeline "
        "(Đánh giá phát hiện trên các kịch bản mô phỏng).",
    )
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="bundled name or YAML path (repeatable; default: every built-in "
                   f"scenario with labels: {', '.join(labelled_scenarios())})")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("reports/evaluate"), help="report directory")
    p.add_argument("--duration", help="cut longer scenarios to this (e.g. 1d, 6h)")
    p.add_argument(
        "--warmup", default="1d", help="quiet spin-up before each scenario, not scored (0: cold)"
    )
    p.add_argument("--start", help="simulated start, ISO 8601 with offset (default: scenario's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stations", help="station id patterns, e.g. 'fd-*,rg-*' (default: all)")
    p.add_argument("--no-faults", action="store_true", help="switch sensor faults off")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--database-url", help="a server where a database per scenario may be made")
    p.add_argument("--mqtt-url", help="an MQTT 5 broker (default: an embedded one)")
    p.add_argument(
        "--credentials-dir",
        type=Path,
        help="the --mqtt-url broker's credential store (users are issued there, and the "
        "broker signalled to reload)",
    )
    p.add_argument("--keep-db", action="store_true", help="keep each scenario's database")
    return p


@dataclass(frozen=True, slots=True)
class _Servers:
    admin_url: str
    mqtt_url: str
    protocol: Literal["5", "3.1.1"]
    users: BrokerUsers | None = None


def _reload_external(store: CredentialStore) -> None:
    """Signal an external broker (through the store's pid file) and give it a moment."""
    if store.reload_broker():
        time.sleep(1.0)


@contextlib.contextmanager
def _servers(args: argparse.Namespace, work: Path) -> Iterator[_Servers]:
    with contextlib.ExitStack() as stack:
        admin = args.database_url
        if not admin:
            pg = stack.enter_context(
                EmbeddedPostgres(work / "pg", database="postgres", durable=False)
            )
            admin = pg.url
        mqtt = args.mqtt_url
        protocol: Literal["5", "3.1.1"] = "5"
        users = None
        if args.credentials_dir is not None:
            store = CredentialStore(args.credentials_dir)
            users = BrokerUsers(store, lambda: _reload_external(store))
        if not mqtt:
            # every run has a root eval-<token>/v1: the grants are written for "+/v1"
            broker = stack.enter_context(EmbeddedBroker(work / "mqtt", root="+/v1"))
            mqtt, protocol = broker.url, broker.protocol
            if broker.authenticates:
                users = BrokerUsers(broker.credentials, broker.reload)
        yield _Servers(admin, mqtt, protocol, users)


def _database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def _drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _evaluate_one(
    spec: RunSpec, servers: _Servers, out: Path, keep_db: bool
) -> tuple[Assessment, list[str]]:
    token = uuid.uuid4().hex[:10]
    name = f"eval_{token}"
    url = await asyncio.to_thread(_database, servers.admin_url, name)
    work = out / "runs" / Path(spec.scenario).stem
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = await run_scenario(spec, database_url=url, mqtt_url=servers.mqtt_url,
                                 topic_root=f"eval-{token}/v1", work_dir=work,
                                 mqtt_protocol=servers.protocol,
                                 broker=servers.users)  # fmt: skip
    finally:
        if not keep_db:
            await asyncio.to_thread(_drop, servers.admin_url, name)
    assessment = assess(run)
    files = await asyncio.to_thread(plot_run, run, assessment.panels, out / "plots" / run.scenario)
    return assessment, [str(f.relative_to(out)) for f in files]


def _say(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


def _summarise(stream: TextIO, a: Assessment) -> None:
    _say(stream, f"\n== {a.run.scenario}: {len(a.run.labels)} labels, {len(a.run.alerts)} alerts")
    for k in a.scoring.kinds:
        if not k.has_detector:
            _say(stream, f"  {k.kind:18} {k.labels:5} labels: no detector")
            continue
        delays = f"{_fmt(k.delay_median_intervals, 1)} p90 {_fmt(k.delay_p90_intervals, 1)}"
        _say(stream, f"  {k.kind:18} P={_fmt(k.precision)} R={_fmt(k.recall)} "
             f"({k.detected}/{k.expected}, {k.false_alerts} false) delay median {delays} "
             "intervals")  # fmt: skip
    for t in a.targets:
        if t.passed is not None:
            _say(stream, f"  target {t.name:22} {t.verdict:4} {_fmt(t.value)}  {t.note}")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


async def _run(args: argparse.Namespace, argv: Sequence[str], stream: TextIO) -> int:
    scenarios = args.scenario or labelled_scenarios()
    start = datetime.fromisoformat(args.start) if args.start else None
    if start is not None and start.utcoffset() is None:
        msg = "--start needs a UTC offset, e.g. 2025-09-30T07:00:00+07:00"
        raise EvaluationError(msg)
    duration = parse_duration(args.duration) if args.duration else None
    warmup = 0.0 if args.warmup.strip() in ("0", "") else parse_duration(args.warmup)
    stations = tuple(p.strip() for p in (args.stations or "").split(",") if p.strip())
    out: Path = args.out
    assessments: list[Assessment] = []
    plots: dict[str, list[str]] = {}
    interrupted = False
    with (
        tempfile.TemporaryDirectory(prefix="hanoi-evaluate-") as tmp,
        _servers(args, Path(tmp)) as servers,
    ):
        for scenario in scenarios:
            spec = RunSpec(scenario, args.seed, start, duration, stations, not args.no_faults,
                           warmup)  # fmt: skip
            outcome = await _interruptible(_evaluate_one(spec, servers, out, args.keep_db))
            if outcome is None:
                interrupted = True
                _say(stream, f"\nInterrupted during {scenario}: reporting what was finished.")
                break
            assessment, files = outcome
            assessments.append(assessment)
            plots[assessment.run.scenario] = files
            _summarise(stream, assessment)
    command = " ".join(["hanoi-ioc evaluate", shlex.join(argv)]).strip()
    html_path, json_path = write_report(out, assessments, plots, command)
    _say(stream, f"\nReport: {html_path.resolve()}\nFigures: {json_path.resolve()}")
    failed = [f"{a.run.scenario}: {t.name}" for a in assessments for t in a.failed]
    if failed:
        _say(stream, "Targets missed: " + "; ".join(failed))
    if interrupted:
        return 130
    return 1 if failed and args.strict else 0


async def _interruptible(work: Coroutine[None, None, _T]) -> _T | None:
    """Run ``work``; Ctrl-C or SIGTERM cancels it (its services shut down) and gives None."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
            installed.append(sig)
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we were cancelled ourselves, not by a signal
        return None
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Command-line entry; returns the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(given)
    for noisy in ("aiomqtt", "stream.consumer", "simulators.device"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(_run(args, given, stdout or sys.stdout))
    except (EvaluationError, ValueError, OSError, psycopg.Error) as exc:
        logger.error("evaluate: %s", exc)
        return 2
