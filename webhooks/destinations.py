"""Where deliveries may go: public addresses, and the private networks an operator allows.

A subscriber's URL is data an admin typed (or an attacker with an admin token): without a
rule, the dispatcher would POST signed alert bodies to whatever the name resolves to — the
cloud's metadata service, the database's host, anything on the operations centre's own
network — and report back what answered. The rule is applied where the connection is made
(:class:`GuardedBackend`), to the address actually connected to: the name is resolved once,
every address it resolves to is checked, and the connection goes to a checked address. A
name that resolves to a public address when asked and to a private one a moment later (DNS
rebinding) therefore gains nothing.

Allowed: globally routable addresses (:attr:`ipaddress.IPv4Address.is_global`), plus the
networks in ``WEBHOOK_ALLOWED_NETWORKS`` (e.g. the department's receiver on
``10.20.0.0/16``). In ``dev`` and ``test`` every address is allowed (receivers run on the
developer's machine). Deliveries through an HTTP proxy (``HTTPS_PROXY`` …) connect to the
proxy, which then polices egress.

>>> guard = DestinationRule(("10.20.0.0/16",))
>>> guard.refusal("8.8.8.8") is None, guard.refusal("10.20.1.2") is None
(True, True)
>>> guard.refusal("169.254.169.254")
'169.254.169.254 is not a public address (link-local)'
>>> guard.refusal("::ffff:127.0.0.1")
'127.0.0.1 is not a public address (loopback)'
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

__all__ = ["DestinationRule", "GuardedBackend", "guarded_transport"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class DestinationRule:
    """Which addresses deliveries may connect to.

    Args:
        allowed: networks allowed besides the public ones (CIDR strings).
        everything: allow every address (dev and test).
    """

    allowed: Iterable[str] = ()
    everything: bool = False
    networks: tuple[IPNetwork, ...] = field(init=False)

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in self.allowed)
        object.__setattr__(self, "networks", nets)

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be connected to (None: it may)."""
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.everything or any(ip in net for net in self.networks):
            return None
        if ip.is_global and not ip.is_multicast:
            return None
        return f"{ip} is not a public address ({_kind(ip)})"


def _kind(ip: IPAddress) -> str:
    for name in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    return "not globally routable"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the rule allows."""

    def __init__(self, rule: DestinationRule, inner: httpcore.AsyncNetworkBackend) -> None:
        self.rule = rule
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host``, check every address, connect to the first allowed one."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            msg = f"{host}: not resolved ({exc})"
            raise httpcore.ConnectError(msg) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        refusals = [r for a in addresses if (r := self.rule.refusal(a)) is not None]
        if refusals or not addresses:
            # one private address among public ones is refused too: which one a client
            # gets is the name's owner's choice
            msg = f"destination refused: {host} → {'; '.join(refusals) or 'no address'}"
            raise httpcore.ConnectError(msg)
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a subscriber's destination."""
        msg = f"destination refused: unix socket {path}"
        raise httpcore.ConnectError(msg)

    async def sleep(self, seconds: float) -> None:
        """As the inner backend sleeps."""
        await self._inner.sleep(seconds)


def guarded_transport(rule: DestinationRule, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections obey ``rule`` (TLS still checks the name)."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx builds its connection pool without a way to pass a network backend: the pool is
    # built again, as httpx builds it, with the guarded one
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(rule, httpcore.AnyIOBackend()),
    )
    return transport
