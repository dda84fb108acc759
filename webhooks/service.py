"""The webhook dispatcher: claims due deliveries, POSTs them signed, records what came of it.

One round: claim up to ``batch`` due queue heads (:func:`db.webhooks.claim` — an alert's
events leave one at a time, in order), send them at most ``concurrency`` at a time, record
each outcome (:mod:`webhooks.policy`), and go again at once while there was work, else after
``poll_s``. A delivery is at least once: a dispatcher stopped between a receiver's answer and
the record of it (or a database away at that moment) sends it again after its lease, under
the same delivery id, which receivers deduplicate on.

Only public hazards leave (:attr:`processing.conditions.base.RuleSpec.public`): a delivery of
any other rule is *withheld*, never sent. Upkeep gives up on deliveries queued longer than
``max_age_s`` that no round reached (a disabled subscriber's) and prunes old rows. The
heartbeat carries the counters and the outbox's state to ``/health`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import urllib.request
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime
from types import TracebackType
from typing import Final, Self

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from contract.webhook import secret_matches, subscriber_secret
from db import Conn, Stats, heartbeat, upgrade
from db.webhooks import Due, Finished, claim, expire, finish, outbox_counts, prune
from processing.conditions.registry import RULES
from stream.backoff import Backoff, GaveUpError
from stream.pipeline import run_every
from stream.service import Job, final_writes, when_reachable
from webhooks.destinations import guarded_transport
from webhooks.payload import event_type, render
from webhooks.policy import Attempt, RetryPolicy
from webhooks.sender import post
from webhooks.settings import WebhookSettings

__all__ = ["WebhookService", "public_rules"]

logger = logging.getLogger(__name__)

_WITHHELD: Final = "not a public hazard: it stays in the operations centre"
_COUNTER: Final = {
    "delivered": "delivered",
    "pending": "retried",
    "dead": "dead",
    "withheld": "withheld",
}
_KEY_CHANGED: Final = (
    "the server key is not the one this subscriber's secret was made with: "
    "set the same API_SECRET_KEY as the ops API, or rotate the subscriber's secret"
)


def public_rules() -> frozenset[str]:
    """The rules whose alerts may leave the operations centre."""
    return frozenset(name for name, spec in RULES.items() if spec.public)


class WebhookService:
    """One dispatcher instance (see the module docstring).

    Args:
        settings: the instance's settings.
        rng: source of the backoff's jitter (seeded in tests).
    """

    service: str = "webhooks"

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.policy = RetryPolicy(
            settings.retry_initial_s, settings.retry_max_s, settings.max_age_s,
            settings.max_attempts,
        )  # fmt: skip
        self.public: Collection[str] = public_rules()
        self.counts: Counter[str] = Counter()
        self.started_at = datetime.now(UTC)
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=3, open=False,
            timeout=settings.pool_timeout_s, reconnect_timeout=settings.reconnect_timeout_s,
            kwargs={"autocommit": True},
        )  # fmt: skip
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._gate = asyncio.Semaphore(settings.concurrency)
        self._outbox: Stats = {}

    async def __aenter__(self) -> Self:
        await when_reachable("database", self._migrate)
        await when_reachable("database", self._open_pool)
        limits = httpx.Limits(max_connections=self.settings.concurrency)
        if urllib.request.getproxies():  # HTTPS_PROXY …: the proxy polices egress
            self._client = httpx.AsyncClient(limits=limits)
        else:  # connections only where the destination rule allows
            self._client = httpx.AsyncClient(
                transport=guarded_transport(self.settings.destinations, limits), limits=limits
            )
        return self

    async def _migrate(self) -> None:
        await upgrade(self.settings.database_url, self.settings.forced_storage)

    async def _open_pool(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM alert_subscribers WHERE enabled")
            row = await cur.fetchone()
        logger.info("webhooks %s delivering to %s enabled subscriber(s)", self.settings.instance,
                    row[0] if row else 0)  # fmt: skip

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()
        await self.pool.close()

    def stop(self) -> None:
        """Finish the round in hand (its requests and their records), then return from run."""
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until :meth:`stop`."""
        s = self.settings
        async with asyncio.TaskGroup() as tg:
            background = [
                tg.create_task(run_every(s.heartbeat_interval_s, self.heartbeat), name="heartbeat"),
                tg.create_task(run_every(s.upkeep_s, self.upkeep), name="upkeep"),
            ]
            await self._deliver_until_stopped()
            for task in background:
                task.cancel()
        await final_writes([Job("heartbeat", s.heartbeat_interval_s, self.heartbeat, at_stop=True)])
        logger.info("webhooks %s stopped: %s", s.instance, self.stats())

    async def _deliver_until_stopped(self) -> None:
        backoff = Backoff(initial_s=0.5, max_s=self.settings.retry_max_s)
        while not self._stopping.is_set():
            try:
                worked = await self.round()
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                delay = min(backoff.next_delay(time.monotonic()), 10.0)
                logger.warning("webhook round failed (next in %.1f s): %s", delay,
                               str(exc).strip()[:300])  # fmt: skip
                await self._pause(delay)
                continue
            except Exception:  # nothing stops us: a bug in one round is logged, not fatal
                delay = min(backoff.next_delay(time.monotonic()), 10.0)
                logger.exception("webhook round failed (next in %.1f s)", delay)
                await self._pause(delay)
                continue
            backoff.reset()
            if not worked:
                await self._pause(self.settings.poll_s)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def round(self) -> int:
        """Claim, send and record one round; how many deliveries it attempted."""
        async with self.pool.connection() as conn:
            due = await claim(conn, limit=self.settings.batch, lease_s=self.settings.lease_s)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(d) for d in due))
        answered = [
            d.subscriber_id for d, o in zip(due, outcomes, strict=True) if o.status == "delivered"
        ]
        await self._record(outcomes, answered)
        return len(due)

    async def _record(self, outcomes: list[Finished], answered: list[int]) -> None:
        """Record the round's outcomes, retried while the database is away (bounded)."""
        backoff = Backoff(initial_s=0.2, max_s=5.0, give_up_s=self.settings.lease_s / 2)
        while True:
            try:
                async with self.pool.connection() as conn:
                    await finish(conn, outcomes, answered=answered)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                try:
                    delay = backoff.next_delay(time.monotonic())
                except GaveUpError:
                    # their leases end and they are sent again, under the same delivery ids
                    logger.warning("%d outcome(s) not recorded: %s", len(outcomes), exc)
                    return
                logger.warning("outcomes not recorded yet (%s); again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            for outcome in outcomes:
                self.counts[_COUNTER[outcome.status]] += 1
            return

    async def _deliver(self, due: Due) -> Finished:
        async with self._gate:
            try:
                return await self._attempt(due)
            except Exception as exc:  # a delivery we cannot make is retried, not fatal
                logger.exception("delivery %s could not be attempted", due.delivery_id)
                age_s = (datetime.now(UTC) - due.queued_at).total_seconds()
                return self.policy.outcome(
                    Attempt(None, f"internal error: {type(exc).__name__}: {exc}"),
                    attempts=due.attempts, age_s=age_s, rng=self._rng,
                    delivery_id=due.delivery_id,
                )  # fmt: skip

    async def _attempt(self, due: Due) -> Finished:
        did = due.delivery_id
        self.counts["attempts"] += 1
        if due.rule not in self.public:
            return Finished(did, "withheld", error=_WITHHELD)
        body = render(due.snapshot, did, max_bytes=self.settings.max_body_bytes)
        if body is None:
            limit = self.settings.max_body_bytes
            return Finished(did, "dead", error=f"body larger than {limit} bytes, details omitted")
        secret = subscriber_secret(self.settings.key, due.secret_salt)
        if not secret_matches(secret, due.secret_hash):
            attempt = Attempt(None, _KEY_CHANGED)
        else:
            assert self._client is not None  # noqa: S101 - entered before run
            attempt = await post(
                self._client, due.url, delivery_id=did, event=event_type(due.snapshot),
                body=body, secret=secret, timeout_s=self.settings.timeout_s,
            )  # fmt: skip
        age_s = (datetime.now(UTC) - due.queued_at).total_seconds()
        outcome = self.policy.outcome(
            attempt, attempts=due.attempts, age_s=age_s, rng=self._rng, delivery_id=did
        )
        if outcome.status == "dead":
            logger.warning("delivery %s to subscriber %d is dead: %s", did, due.subscriber_id,
                           outcome.error)  # fmt: skip
        elif outcome.status == "pending":
            logger.info("delivery %s to subscriber %d failed (attempt %d, again in %.1f s): %s",
                        did, due.subscriber_id, due.attempts, outcome.retry_in_s,
                        outcome.error)  # fmt: skip
        return outcome

    async def upkeep(self) -> None:
        """Dead-letter what waited too long unreached; prune old rows; refresh the counts."""
        s = self.settings
        async with self.pool.connection() as conn:
            expired = await expire(conn, s.max_age_s)
            pruned = await prune(conn, finished_keep_s=s.finished_keep_s,
                                 dead_keep_s=s.dead_keep_s)  # fmt: skip
        self.counts["expired"] += expired
        self.counts["pruned"] += pruned
        if expired:
            logger.warning("%d delivery(ies) expired unreached after %.0f s", expired, s.max_age_s)

    def stats(self) -> Stats:
        """The counters and the outbox's state at the last heartbeat."""
        out: Stats = dict(self.counts)
        out.update(self._outbox)
        return out

    async def heartbeat(self) -> None:
        """Record that this instance is alive, with its counters and the outbox's state."""
        async with self.pool.connection() as conn:
            c = await outbox_counts(conn)
        self._outbox = {
            "outbox_pending": c.pending, "outbox_dead": c.dead,
            "outbox_oldest_pending_s": round(c.oldest_pending_s, 1),
        }  # fmt: skip
        await heartbeat(self.pool, self.service, self.settings.instance, self.started_at,
                        self.stats())  # fmt: skip
