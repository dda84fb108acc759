"""ApiSettings: the ops API's configuration, from ``API_*`` environment variables.

Tokens map to roles (``viewer`` < ``operator`` < ``admin``) and, for scoped subscribers
such as the environment department, to the domains they may see::

    API_TOKENS='{"3f9c...": {"role": "operator", "name": "truc-ban-1"},
                 "a71e...": {"role": "viewer", "name": "so-tnmt",
                             "scope_domains": ["flood"]}}'

With ``ENV=dev`` (the default) and no tokens configured, the documented development tokens
in :data:`DEV_TOKENS` apply and anonymous read access is on, so ``hanoi-ioc up`` works out
of the box on a laptop. Any other environment refuses placeholder secrets and short tokens.
"""

from __future__ import annotations

import ipaddress
from typing import Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import DEFAULT_STALE_FACTOR, DEFAULT_STALE_MIN_S, Domain
from ops_api.auth import Role

__all__ = ["DEV_TOKENS", "ApiSettings", "TokenGrant"]

_PLACEHOLDERS: Final = frozenset(
    {"changethis", "changeme", "change-me", "secret", "password", "token", "postgres", "hanoi"}
)
_MIN_TOKEN_CHARS: Final = 16


class TokenGrant(BaseModel):
    """What one API token may do.

    Args:
        role: ``viewer`` (read), ``operator`` (acknowledge, clear, comment, quarantine) or
            ``admin`` (everything).
        name: who holds it; recorded as the actor in the alert audit trail.
        scope_domains: when set, the holder sees only these domains (alerts, stations,
            readings); ``None`` means every domain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role = Role.VIEWER
    name: str | None = Field(default=None, min_length=1, max_length=64)
    scope_domains: frozenset[Domain] | None = None


DEV_TOKENS: Final[dict[str, TokenGrant]] = {
    "dev-viewer": TokenGrant(role=Role.VIEWER, name="dev-viewer"),
    "dev-operator": TokenGrant(role=Role.OPERATOR, name="dev-operator"),
    "dev-admin": TokenGrant(role=Role.ADMIN, name="dev-admin"),
    "dev-flood": TokenGrant(
        role=Role.VIEWER, name="dev-flood", scope_domains=frozenset({Domain.FLOOD})
    ),
}
"""Development tokens, active only with ``ENV=dev`` and no ``API_TOKENS`` configured."""


class ApiSettings(BaseSettings):
    """Configuration of the ops API (environment prefix ``API_``).

    Args:
        env: ``dev`` allows placeholder secrets and the development tokens; read from
            ``API_ENV`` or ``ENV``.
        database_url: libpq URL; read from ``API_DATABASE_URL`` or ``DATABASE_URL``.
        host: interface to bind.
        port: TCP port.
        tokens: token -> grant (JSON in ``API_TOKENS``).
        open_viewer: anonymous read-only access; defaults to on in dev, off elsewhere.
        ws_max_clients: concurrent WebSocket clients; more are refused with code 1013.
        ws_alert_queue_size: alert events buffered per client before it is told to resync.
        ws_readings_max_rate_hz: most readings batches per second sent to one client.
        ws_heartbeat_s: interval of the server's application-level ``ping`` messages.
        ws_auth_timeout_s: how long a new client has to send its ``auth`` message.
        ws_replay_page_size: alert events read per query while replaying.
        readings_poll_s: how often the shared task polls the ``latest`` table.
        status_poll_s: how often the shared task polls station states.
        listen_backoff_initial_s: first LISTEN reconnect delay (doubles, with jitter).
        listen_backoff_max_s: cap of the LISTEN reconnect delay.
        stale_factor: a station is stale when its newest reading arrived longer ago than
            ``stale_factor`` times its shortest reporting interval.
        stale_min_s: lower bound of that staleness threshold.
        heartbeat_stale_s: a service whose heartbeat is older is reported stale in /health.
        history_default_points: points returned by /api/history without ``max_points``.
        history_max_points: the largest ``max_points`` accepted.
        indices_window_s: how far back /api/stations looks for each station's latest indices.
        cap_sender: the CAP 1.2 ``sender`` of the flood feed.
        cap_status: the CAP ``status``; defaults to ``Test`` in dev (simulated data), else
            ``Actual``.
        db_pool_min_size: connections kept open.
        db_pool_max_size: connections at most.
        db_timeout_s: wait for a pooled connection before answering 503.
    """

    model_config = SettingsConfigDict(env_prefix="API_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "staging", "prod"] = Field(
        default="dev", validation_alias=AliasChoices("API_ENV", "ENV")
    )
    database_url: str = Field(
        default="postgresql://hanoi@127.0.0.1:5432/hanoi",
        validation_alias=AliasChoices("API_DATABASE_URL", "DATABASE_URL"),
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    tokens: dict[str, TokenGrant] = Field(default_factory=dict)
    open_viewer: bool | None = None

    ws_max_clients: int = Field(default=500, ge=1)
    ws_alert_queue_size: int = Field(default=256, ge=1)
    ws_readings_max_rate_hz: float = Field(default=1.0, gt=0, le=50)
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_auth_timeout_s: float = Field(default=10.0, gt=0)
    ws_replay_page_size: int = Field(default=500, ge=1, le=10_000)
    readings_poll_s: float = Field(default=1.0, gt=0)
    status_poll_s: float = Field(default=2.0, gt=0)
    listen_backoff_initial_s: float = Field(default=0.5, gt=0)
    listen_backoff_max_s: float = Field(default=30.0, gt=0)

    # One staleness rule for the whole system (contract.StaleRule): ingest records it, the
    # API shows it, both from the same unprefixed variables.
    stale_factor: float = Field(
        default=DEFAULT_STALE_FACTOR, gt=1,
        validation_alias=AliasChoices("STALE_FACTOR", "stale_factor"),
    )  # fmt: skip
    stale_min_s: float = Field(
        default=DEFAULT_STALE_MIN_S, ge=0,
        validation_alias=AliasChoices("STALE_MIN_S", "stale_min_s"),
    )  # fmt: skip
    heartbeat_stale_s: float = Field(default=60.0, gt=0)
    history_default_points: int = Field(default=500, ge=2)
    history_max_points: int = Field(default=5000, ge=2)
    indices_window_s: float = Field(default=2 * 86400.0, gt=0)

    cap_sender: str = Field(default="hanoi-ioc", pattern=r"^[^\s,<&]+$")
    cap_status: Literal["Actual", "Exercise", "System", "Test", "Draft"] | None = None

    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_timeout_s: float = Field(default=5.0, gt=0)

    @property
    def is_dev(self) -> bool:
        """True in the development environment."""
        return self.env == "dev"

    @property
    def effective_tokens(self) -> dict[str, TokenGrant]:
        """The configured tokens, or :data:`DEV_TOKENS` in dev when none are configured."""
        if not self.tokens and self.is_dev:
            return dict(DEV_TOKENS)
        return dict(self.tokens)

    @property
    def effective_cap_status(self) -> Literal["Actual", "Exercise", "System", "Test", "Draft"]:
        """The CAP ``status`` to publish with."""
        if self.cap_status is not None:
            return self.cap_status
        return "Test" if self.is_dev else "Actual"

    @property
    def anonymous_viewers(self) -> bool:
        """Whether requests without a token may read."""
        return self.is_dev if self.open_viewer is None else self.open_viewer

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.is_dev:
            if not self.tokens and not _is_loopback(self.host):
                msg = (
                    f"the development tokens are public; bind {self.host!r} only with "
                    "API_TOKENS configured (or bind 127.0.0.1)"
                )
                raise ValueError(msg)
            return self
        for token in self.tokens:
            if token in DEV_TOKENS or token.lower() in _PLACEHOLDERS:
                msg = f"API_TOKENS holds a placeholder token {token[:4]}… (ENV={self.env})"
                raise ValueError(msg)
            if len(token) < _MIN_TOKEN_CHARS:
                msg = f"API tokens need at least {_MIN_TOKEN_CHARS} characters (ENV={self.env})"
                raise ValueError(msg)
        password = urlsplit(self.database_url).password
        if password is not None and password.lower() in _PLACEHOLDERS:
            msg = f"the database password is a placeholder (ENV={self.env})"
            raise ValueError(msg)
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
