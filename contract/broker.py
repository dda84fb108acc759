"""Where the broker is: the ``mqtt[s]://`` URLs devices and services are configured with."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["BrokerAddress", "parse_mqtt_url"]


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where and how to reach a broker."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> BrokerAddress:
    """Parse ``mqtt[s]://[user[:password]@]host[:port]``.

    >>> parse_mqtt_url("mqtts://ops:s3cret@broker.example:8883")
    BrokerAddress(host='broker.example', port=8883, tls=True, username='ops', password='s3cret')

    Raises:
        ValueError: for another scheme or a missing host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        msg = f"broker URL {url!r} must start with mqtt:// or mqtts://"
        raise ValueError(msg)
    if not parts.hostname:
        msg = f"broker URL {url!r} has no host"
        raise ValueError(msg)
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        parts.hostname,
        parts.port or (8883 if tls else 1883),
        tls,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )
