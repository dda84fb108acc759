"""The ``hanoi-ioc`` command.

Subcommands: ``up`` (everything, for a demo), ``simulate``, ``ingest``, ``process``, ``api``,
``db upgrade``, ``registry export|load``, ``quarantine list|replay``, ``credentials``
(broker users: ``init|service|sync|issue|rotate|revoke|list``),
``tokens create|list|rotate|revoke``, ``webhooks run|list|redeliver``, ``backtest``,
``evaluate``, ``bench``.

A configuration or database error ends the command with one line on stderr, not a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from pydantic import ValidationError

from db import DatabaseError, StrategyName
from hanoi_ioc.credentials import CredentialsError
from stream.service import describe_invalid

if TYPE_CHECKING:
    from contract import Station
    from hanoi_ioc.credentials import CredentialStore, SyncResult

__all__ = ["main"]


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return "postgresql://hanoi@127.0.0.1:55432/hanoi"  # the embedded default of `up`


def _up(args: argparse.Namespace) -> int:
    from hanoi_ioc.up import UpOptions, run_up

    options = UpOptions(
        home=Path(args.home), api_port=args.api_port, scenario=args.scenario,
        speed=args.speed, seed=args.seed, ready_timeout_s=args.ready_check,
    )  # fmt: skip
    return asyncio.run(run_up(options))


def _db(args: argparse.Namespace) -> int:
    from db import upgrade

    forced = _forced(args.strategy)
    strategy, applied = asyncio.run(upgrade(args.database_url or _database_url(), forced))
    sys.stdout.write(f"storage strategy {strategy}; applied {applied or 'nothing (up to date)'}\n")
    return 0


def _registry(args: argparse.Namespace) -> int:
    from contract import decode_registry, encode_registry
    from db import register_stations

    if args.action == "export":
        from simulators.fleet import hanoi_fleet

        Path(args.file).write_bytes(encode_registry(hanoi_fleet()))
        return 0
    stations = decode_registry(Path(args.file).read_bytes())

    async def load() -> int:
        async with await psycopg.AsyncConnection.connect(args.database_url or _database_url()) as c:
            return await register_stations(c, stations)

    sys.stdout.write(f"registered {asyncio.run(load())} stations\n")
    return 0


def _forced(strategy: str) -> StrategyName | None:
    if strategy not in ("auto", "timescale", "plain"):
        msg = f"storage strategy {strategy!r}: expected auto, timescale or plain"
        raise ValueError(msg)
    return None if strategy == "auto" else ("timescale" if strategy == "timescale" else "plain")


def _store(args: argparse.Namespace) -> CredentialStore:
    from hanoi_ioc.credentials import CredentialStore

    return CredentialStore(Path(args.dir), root=args.root)


def _reload(args: argparse.Namespace, store: CredentialStore) -> None:
    if args.no_reload:
        return
    pid_file = Path(args.broker_pid_file) if args.broker_pid_file else None
    if store.reload_broker(pid_file):
        sys.stdout.write("broker signalled to reload its users (SIGHUP)\n")
    else:
        sys.stdout.write(
            "no running broker known: reload it yourself (SIGHUP; docker-compose kill -s HUP "
            "mosquitto)\n"
        )


def _show_password(name: str, password: str | None, store: CredentialStore) -> None:
    if password is None:
        sys.stdout.write(f"{name}: unchanged\n")
    elif store.secret_file(name).exists():
        sys.stdout.write(f"{name}: password in {store.secret_file(name)}\n")
    else:  # not kept: this is the only time it is shown
        sys.stdout.write(f"{name}: {password}  (shown once: provision it on the device now)\n")


def _credentials(args: argparse.Namespace) -> int:
    store = _store(args)
    action = args.action
    if action == "list":
        for name, identity in sorted(store.identities.items()):
            kept = "kept" if store.secret_file(name).exists() else "hash only"
            sys.stdout.write(
                f"{name:<40} {identity.role:<10} {identity.issued_at:%Y-%m-%d} {kept}\n"
            )
        return 0
    if action == "init":
        name = store.issue_service("ingest", args.instance)  # processing reads no broker
        sys.stdout.write(f"{name}: password in {store.secret_file(name)}\n")
        health = store.issue_operational("health")
        sys.stdout.write(f"{health}: password in {store.secret_file(health)}\n")
    elif action == "service":
        name = store.issue_service(args.name, args.instance, rotate=args.rotate)
        sys.stdout.write(f"{name}: password in {store.secret_file(name)}\n")
    elif action == "issue":
        name = store.issue_operational(args.role, args.name)
        sys.stdout.write(f"{name}: password in {store.secret_file(name)}\n")
    elif action == "sync":
        result = _sync(args, store)
        for name in result.issued:
            _show_password(name, result.passwords.get(name), store)
        sys.stdout.write(
            f"issued {len(result.issued)}, updated {len(result.updated)}, revoked "
            f"{len(result.revoked)}{': ' + ', '.join(result.revoked) if result.revoked else ''}\n"
        )
    elif action == "rotate":
        _show_password(args.name, store.rotate(args.name), store)
    elif action == "revoke":
        if not store.revoke(args.name):
            sys.stderr.write(f"no user {args.name!r}\n")
            return 1
        sys.stdout.write(f"{args.name}: revoked\n")
    _reload(args, store)
    return 0


def _sync(args: argparse.Namespace, store: CredentialStore) -> SyncResult:
    from contract import decode_registry
    from db import load_registry

    if args.registry_file:
        stations = decode_registry(Path(args.registry_file).read_bytes())
    else:

        async def load() -> list[Station]:
            async with await psycopg.AsyncConnection.connect(
                args.database_url or _database_url()
            ) as conn:
                return list((await load_registry(conn)).stations.values())

        stations = asyncio.run(load())
    return store.sync_registry(stations, keep_secrets=args.keep_secrets)


def _quarantine(args: argparse.Namespace) -> int:
    from ingest.quarantine import list_quarantine, replay_quarantine
    from ingest.settings import IngestSettings

    url = args.database_url or _database_url()
    if args.action == "replay":
        s = IngestSettings()  # the services' topic root and accepted time window
        result = asyncio.run(
            replay_quarantine(url, root=s.topic_root, reason=args.reason,
                              max_age_days=s.max_age_days, max_future_s=s.max_future_s,
                              forced=s.forced_storage)
        )  # fmt: skip
        sys.stdout.write(
            f"replayed {result.messages} message(s): stored {result.stored}, duplicates "
            f"{result.duplicates}, quarantined again {result.still_quarantined}\n"
        )
        return 0

    async def show() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            rows = await list_quarantine(conn, reason=args.reason, limit=args.limit)
        for r in rows:
            sys.stdout.write(
                f"{r.quarantine_id:>8} {r.received_at:%Y-%m-%d %H:%M:%S}Z {r.reason:<22} "
                f"{r.readings:>4} {r.topic}  {r.detail}\n"
            )

    asyncio.run(show())
    return 0


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _tokens(args: argparse.Namespace) -> int:
    """API tokens in the database (the same as the admin routes, audited as ``cli:<user>``)."""
    from datetime import timedelta

    from contract import Domain, now_utc
    from ops_api.auth import Role
    from ops_api.tokens import (
        TokenInactiveError,
        TokenRecord,
        create_token,
        list_tokens,
        revoke_token,
        rotate_token,
    )

    url = args.database_url or _database_url()
    actor = _cli_actor()

    def show(record: TokenRecord) -> None:
        scope = ",".join(record.scope_domains) if record.scope_domains else "*"
        state = "active" if record.is_active(now_utc()) else "inactive"
        sys.stdout.write(
            f"{record.token_id:>6} {record.prefix}… {record.role:<8} {scope:<12} {state:<8} "
            f"{record.name}\n"
        )

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if args.action == "list":
                for record in await list_tokens(conn, include_inactive=args.all, limit=10_000):
                    show(record)
                return 0
            if args.action == "create":
                if not args.name:
                    sys.stderr.write("tokens create needs --name\n")
                    return 2
                scope = frozenset(Domain(d) for d in args.scope) if args.scope else None
                expires = None
                if args.expires_days is not None:
                    expires = now_utc() + timedelta(days=args.expires_days)
                token, record = await create_token(
                    conn, name=args.name, role=Role(args.role), scope=scope,
                    expires_at=expires, actor=actor,
                )  # fmt: skip
            elif args.id is None:
                sys.stderr.write(f"tokens {args.action} needs the token id\n")
                return 2
            elif args.action == "revoke":
                revoked = await revoke_token(conn, args.id, actor=actor)
                if revoked is None:
                    sys.stderr.write(f"no token {args.id}\n")
                    return 1
                show(revoked)
                return 0
            else:
                try:
                    rotated = await rotate_token(conn, args.id, actor=actor, grace_s=args.grace_s)
                except TokenInactiveError as exc:
                    sys.stderr.write(f"{exc}\n")
                    return 1
                if rotated is None:
                    sys.stderr.write(f"no token {args.id}\n")
                    return 1
                token, record = rotated
        show(record)
        sys.stderr.write("the token is shown once; only its hash is stored:\n")
        sys.stdout.write(f"{token}\n")
        return 0

    return asyncio.run(run())


def _webhooks(args: argparse.Namespace) -> int:
    """The dispatcher, or the outbox as admins see it (redeliveries audited as ``cli:<user>``)."""
    import uuid

    from db.webhooks import DeliveryRecord, list_deliveries

    if args.action == "run":
        from webhooks.__main__ import main as run_dispatcher

        return run_dispatcher([])
    from ops_api.deliveries import redeliver_many, redeliver_one

    url = args.database_url or _database_url()

    def show(r: DeliveryRecord) -> None:
        error = f"  {r.last_error}" if r.last_error else ""
        sys.stdout.write(
            f"{r.delivery_id} {r.status:<9} sub {r.subscriber_id:<4} alert {r.alert_id:<7} "
            f"event {r.event_id:<8} {r.action:<12} {r.attempts:>3} attempt(s){error}\n"
        )

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if args.action == "list":
                for r in await list_deliveries(
                    conn, status=args.status, subscriber_id=args.subscriber, limit=args.limit
                ):
                    show(r)
                return 0
            if args.dead == (args.id is not None):
                sys.stderr.write("webhooks redeliver needs a delivery id, or --dead\n")
                return 2
            if args.dead:
                found = await redeliver_many(
                    conn, status="dead", subscriber_id=args.subscriber, actor=_cli_actor()
                )
            else:
                one = await redeliver_one(conn, uuid.UUID(args.id), actor=_cli_actor())
                if one is None:
                    sys.stderr.write(f"no delivery {args.id} that can be sent again\n")
                    return 1
                found = [one]
        for r in found:
            show(r)
        sys.stdout.write(f"queued again: {len(found)}\n")
        return 0

    return asyncio.run(run())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _bench(args: argparse.Namespace) -> int:
    from hanoi_ioc.bench.options import BenchOptions, Preset
    from hanoi_ioc.bench.report import plot, table, write_json
    from hanoi_ioc.bench.runner import run_bench

    preset: Preset = "smoke" if args.smoke else "quick" if args.quick else "full"
    options = BenchOptions.of(preset).but(
        loads=_floats(args.loads) if args.loads else None, step_s=args.step_seconds,
        drain_s=args.drain_seconds, stations=args.stations, max_total_s=args.max_seconds,
        engine_sensors=_ints(args.engine_sensors) if args.engine_sensors else None,
        fanout_clients=_ints(args.fanout_clients) if args.fanout_clients else None,
        json_path=Path(args.json) if args.json else None,
        plots_dir=Path(args.plots) if args.plots else None, keep=args.keep or None,
    )  # fmt: skip
    command = "hanoi-ioc " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "bench"
    report = asyncio.run(run_bench(options, command))
    sys.stdout.write(table(report) + "\n")
    if options.json_path is not None:
        write_json(report, options.json_path)
        sys.stderr.write(f"report written to {options.json_path}\n")
    if options.plots_dir is not None:
        for path in plot(report, options.plots_dir):
            sys.stderr.write(f"plot written to {path}\n")
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    """Run another package's ``main(argv)`` (each service also runs as ``python -m``)."""
    import importlib

    entry = importlib.import_module(module)
    result: int = entry.main(argv)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hanoi-ioc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system with embedded defaults")
    up.add_argument("--home", default=os.environ.get("HANOI_HOME", ".hanoi"))
    up.add_argument("--api-port", type=int, default=os.environ.get("API_PORT", "8000"))
    up.add_argument("--scenario", default="demo")
    up.add_argument("--speed", default="60")
    up.add_argument("--seed", type=int, default=7)
    up.add_argument(
        "--ready-check", type=float, default=None, metavar="SECONDS",
        help="exit 0 once readings are stored and an alert is visible (1 on timeout)",
    )  # fmt: skip
    up.set_defaults(func=_up)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--database-url")
    db.add_argument(
        "--strategy", choices=["auto", "timescale", "plain"],
        default=os.environ.get("STORAGE_STRATEGY", "auto"),
        help="default: STORAGE_STRATEGY, else auto (the database's own, else the probe's)",
    )  # fmt: skip
    db.set_defaults(func=_db)

    cred = sub.add_parser(
        "credentials", help="broker users: issue, sync with the registry, rotate, revoke"
    )
    cred.add_argument(
        "action", choices=["init", "service", "sync", "issue", "rotate", "revoke", "list"]
    )
    cred.add_argument("name", nargs="?", help="service (service), user (rotate, revoke, issue)")
    cred.add_argument(
        "--dir", default=os.environ.get("HANOI_CREDENTIALS_DIR", ".hanoi/credentials"),
        help="the credential store (default: HANOI_CREDENTIALS_DIR, else .hanoi/credentials)",
    )  # fmt: skip
    cred.add_argument("--root", default=os.environ.get("TOPIC_ROOT", "hanoi/v1"))
    cred.add_argument("--instance", default="0")
    cred.add_argument("--role", choices=["health", "observer", "simulator"], default="observer")
    cred.add_argument("--rotate", action="store_true", help="service: a new password")
    cred.add_argument(
        "--keep-secrets", action="store_true",
        help="sync: keep device passwords in the store (else shown once)",
    )  # fmt: skip
    cred.add_argument("--registry-file", help="sync: a registry document instead of the database")
    cred.add_argument("--database-url")
    cred.add_argument("--broker-pid-file", help="the broker to signal (default: the store's)")
    cred.add_argument("--no-reload", action="store_true", help="do not signal the broker")
    cred.set_defaults(func=_credentials)

    reg = sub.add_parser("registry", help="export the simulated fleet or load a registry file")
    reg.add_argument("action", choices=["export", "load"])
    reg.add_argument("file")
    reg.add_argument("--database-url")
    reg.set_defaults(func=_registry)

    q = sub.add_parser("quarantine", help="list or replay quarantined messages")
    q.add_argument("action", choices=["list", "replay"])
    q.add_argument("--reason")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--database-url")
    q.set_defaults(func=_quarantine)

    tok = sub.add_parser("tokens", help="API tokens: create, list, rotate, revoke (audited)")
    tok.add_argument("action", choices=["create", "list", "rotate", "revoke"])
    tok.add_argument("id", nargs="?", type=int, help="token id (rotate, revoke)")
    tok.add_argument("--name", help="holder's name (create)")
    tok.add_argument("--role", choices=["viewer", "operator", "admin"], default="viewer")
    tok.add_argument(
        "--scope", action="append", choices=["air", "water", "flood", "traffic"],
        help="only this domain (repeatable; default every domain)",
    )  # fmt: skip
    tok.add_argument("--expires-days", type=float, help="expire after this many days")
    tok.add_argument("--grace-s", type=float, default=0.0, help="old token stays valid (rotate)")
    tok.add_argument("--all", action="store_true", help="list revoked and expired tokens too")
    tok.add_argument("--database-url")
    tok.set_defaults(func=_tokens)

    hooks = sub.add_parser(
        "webhooks", help="the webhook dispatcher (run); deliveries: list, redeliver (audited)"
    )
    hooks.add_argument("action", choices=["run", "list", "redeliver"])
    hooks.add_argument("id", nargs="?", help="redeliver: the delivery id")
    hooks.add_argument("--dead", action="store_true", help="redeliver: every dead letter")
    hooks.add_argument("--status", choices=["pending", "delivered", "dead", "withheld"])
    hooks.add_argument("--subscriber", type=int, help="only this subscriber's deliveries")
    hooks.add_argument("--limit", type=int, default=50)
    hooks.add_argument("--database-url")
    hooks.set_defaults(func=_webhooks)

    bench = sub.add_parser(
        "bench",
        help="measure the whole pipeline on private services (bounded; see docs/performance.md)",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="shorter steps (a few minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes (about a minute)")
    bench.add_argument("--loads", help="offered loads, readings/s, comma-separated")
    bench.add_argument("--step-seconds", type=float, help="publishing time of each load step")
    bench.add_argument("--drain-seconds", type=float, help="longest wait after a step")
    bench.add_argument("--stations", type=int, help="load-mode stations (8 readings each)")
    bench.add_argument("--engine-sensors", help="registry sizes of the engine measurement")
    bench.add_argument("--fanout-clients", help="WebSocket client counts of the fan-out")
    bench.add_argument("--max-seconds", type=float, help="cap on the whole run")
    bench.add_argument("--json", metavar="PATH", help="write the report as JSON")
    bench.add_argument("--plots", metavar="DIR", help="draw latency/throughput/scaling plots")
    bench.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    bench.set_defaults(func=_bench)

    for name, module, text in (
        ("simulate", "simulators.__main__", "run simulated Hanoi sensors"),
        ("ingest", "ingest.__main__", "run an ingestor"),
        ("process", "processing.__main__", "run processing (detectors, indices, alerts)"),
        ("api", "ops_api.__main__", "run the ops API and console"),
        ("backtest", "processing.offline.backtest", "run a detector over stored data or a CSV"),
        (
            "evaluate",
            "hanoi_ioc.evaluate.command",
            "score detection on simulator scenarios through the real pipeline",
        ),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.set_defaults(func=None, module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hanoi-ioc`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    parser = _parser()
    try:
        args, rest = parser.parse_known_args(argv)
        if args.func is None:
            return _delegate(args.module, rest)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        result: int = args.func(args)
    except ValidationError as exc:
        sys.stderr.write(f"configuration error / lỗi cấu hình: {describe_invalid(exc)}\n")
        return 2
    except (ValueError, CredentialsError, OSError, RuntimeError) as exc:
        sys.stderr.write(f"error / lỗi: {exc}\n")
        return 2
    except (DatabaseError, psycopg.Error) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"database error / lỗi cơ sở dữ liệu: {line}\n")
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
