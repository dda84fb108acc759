"""Who is asking: a bearer token becomes a :class:`~ops_api.auth.Principal`.

Two sources, checked in this order:

1. the bootstrap tokens of ``API_TOKENS`` (or the development tokens): compared in constant
   time, never stored, revoked only by changing the environment; meant for the first admin,
   who then makes database tokens;
2. database tokens (:mod:`ops_api.tokens`): looked up by hash. A found token is remembered
   for ``token_cache_s`` seconds (never past its expiry), so a revocation takes effect
   within that time on every API instance; unknown tokens are never remembered.

Failed attempts are counted per client address; past ``auth_failures_per_min`` the address
gets 429 until its bucket refills (a bounded table of addresses).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contract import now_utc
from ops_api.auth import ANONYMOUS, Grant, Principal, Role, resolve_token
from ops_api.errors import AuthenticationError, RateLimitedError
from ops_api.queries import Pool
from ops_api.ratelimit import RateLimiter
from ops_api.tokens import TOKEN_PREFIX, find_active_token

__all__ = ["AuthStats", "Authenticator"]

_MAX_TOKEN_CHARS: Final = 256
_CACHE_MAX: Final = 10_000
_NEED_TOKEN: Final = ("Cần mã truy cập (token)", "An API token is required")
_UNKNOWN_TOKEN: Final = (
    "Mã truy cập không hợp lệ, đã hết hạn hoặc đã bị thu hồi",
    "Unknown, expired or revoked API token",
)
_TOO_MANY: Final = (
    "Quá nhiều lần xác thực thất bại, vui lòng thử lại sau",
    "Too many failed authentications; try again later",
)


@dataclass(slots=True)
class AuthStats:
    """Counters (exported on /metrics)."""

    failures: int = 0
    throttled: int = 0
    db_lookups: int = 0


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    until: float


class Authenticator:
    """Resolves tokens for requests and WebSocket connections.

    Args:
        grants: the bootstrap tokens (token -> grant).
        pool: the database pool (database tokens).
        anonymous: whether a request without a token is an anonymous viewer.
        cache_s: how long a database token is remembered.
        failures_per_min: failed attempts per client address and minute.
    """

    def __init__(
        self,
        grants: Mapping[str, Grant],
        pool: Pool,
        *,
        anonymous: bool,
        cache_s: float,
        failures_per_min: int,
    ) -> None:
        self._grants = dict(grants)
        self._pool = pool
        self._anonymous = anonymous
        self._cache_s = cache_s
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        self._failures = RateLimiter(
            rate_per_s=failures_per_min / 60.0, burst=failures_per_min, max_keys=_CACHE_MAX
        )
        self.stats = AuthStats()

    async def principal(self, token: str | None, client: str) -> Principal:
        """The principal for ``token`` from ``client`` (an address, for throttling).

        Raises:
            AuthenticationError: no token where one is required, or an unknown one.
            RateLimitedError: the address failed too often.
            psycopg.OperationalError: the database could not be asked (a 503).
        """
        if token is None:
            if self._anonymous:
                return ANONYMOUS
            raise AuthenticationError(*_NEED_TOKEN)
        found = await self._resolve(token) if self._plausible(token) else None
        if found is None:
            self._fail(client)
            raise AuthenticationError(*_UNKNOWN_TOKEN)
        return found

    def check_throttle(self, client: str) -> None:
        """Refuse an address that failed too often (before trying its token).

        Raises:
            RateLimitedError: with ``Retry-After``.
        """
        wait_s = self._failures.peek(client, now=time.monotonic())
        if wait_s > 0:
            self.stats.throttled += 1
            raise RateLimitedError(*_TOO_MANY, retry_after_s=int(wait_s) + 1)

    def forget(self) -> None:
        """Drop every remembered database token (after a revocation in this process)."""
        self._cache.clear()

    @staticmethod
    def _plausible(token: str) -> bool:
        return 0 < len(token) <= _MAX_TOKEN_CHARS and token.isprintable()

    def _fail(self, client: str) -> None:
        self.stats.failures += 1
        self._failures.take(client, now=time.monotonic())

    async def _resolve(self, token: str) -> Principal | None:
        env = resolve_token(token, self._grants)
        if env is not None:
            return env
        if not token.startswith(TOKEN_PREFIX):
            return None
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached.until > now:
            self._cache.move_to_end(key)
            return cached.principal
        self.stats.db_lookups += 1
        async with self._pool.connection() as conn:
            record = await find_active_token(conn, token)
        if record is None:
            self._cache.pop(key, None)
            return None
        principal = Principal(
            record.name, Role(record.role), record.scope, key=f"token:{record.token_id}"
        )
        if self._cache_s > 0:
            until = now + self._cache_s
            if record.expires_at is not None:
                until = min(until, now + _seconds_until(record.expires_at))
            self._cache[key] = _Cached(principal, until)
            if len(self._cache) > _CACHE_MAX:
                self._cache.popitem(last=False)
        return principal


def _seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - now_utc()).total_seconds())
