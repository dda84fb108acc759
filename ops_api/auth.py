"""Roles and principals: who is asking, and what they may see and do (pure).

Roles are ordered: ``viewer`` < ``operator`` < ``admin``. A principal may also be scoped to
some domains (the environment department sees flood only); scoping narrows every read and
every action to those domains.

>>> p = Principal("so-tnmt", Role.VIEWER, frozenset({Domain.FLOOD}))
>>> p.can_see(Domain.FLOOD), p.can_see(Domain.AIR), p.can_see(None)
(True, False, False)
>>> sorted(p.visible_domains([Domain.AIR, Domain.FLOOD]))
[<Domain.FLOOD: 'flood'>]
>>> Principal("x", Role.OPERATOR).has_role(Role.VIEWER)
True
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from contract import Domain

__all__ = ["ANONYMOUS", "Grant", "Principal", "Role", "resolve_token"]


class Role(StrEnum):
    """What a token may do."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order for ``has_role`` comparisons."""
        return _RANK[self]


_RANK: Final = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Args:
        name: recorded as the actor of alert transitions.
        role: what they may do.
        scope_domains: the domains they may see; ``None`` means all.
        key: what identifies the credential (``token:<id>``, ``env:<hash>``) for per-token
            limits; ``None`` for anonymous callers, who are told apart by address.
    """

    name: str
    role: Role
    scope_domains: frozenset[Domain] | None = None
    key: str | None = None

    def limit_key(self, client: str) -> str:
        """The key of per-credential limits (anonymous callers: their address)."""
        return self.key if self.key is not None else f"addr:{client}"

    @property
    def is_scoped(self) -> bool:
        """True when the principal sees only some domains."""
        return self.scope_domains is not None

    def has_role(self, role: Role) -> bool:
        """True when the principal's role is ``role`` or above."""
        return self.role.rank >= role.rank

    def can_see(self, domain: str | None) -> bool:
        """Whether something in ``domain`` is visible (domain-less things are not, if scoped)."""
        if self.scope_domains is None:
            return True
        return domain is not None and domain in self.scope_domains

    def visible_domains(self, requested: Iterable[Domain] | None) -> frozenset[Domain] | None:
        """The domains to filter by: the request narrowed by the scope (``None``: no filter)."""
        if requested is None:
            return self.scope_domains
        wanted = frozenset(requested)
        return wanted if self.scope_domains is None else wanted & self.scope_domains


ANONYMOUS: Final = Principal("anonymous", Role.VIEWER)


class Grant(Protocol):
    """The parts of a token grant that make a principal (``settings.TokenGrant``)."""

    @property
    def role(self) -> Role:
        """The grant's role."""
        ...

    @property
    def name(self) -> str | None:
        """The holder's name, if configured."""
        ...

    @property
    def scope_domains(self) -> frozenset[Domain] | None:
        """The grant's domains, if scoped."""
        ...


def resolve_token(token: str, grants: Mapping[str, Grant]) -> Principal | None:
    """The principal a token stands for, or ``None`` when it is unknown.

    Comparison is constant-time per candidate so response timing does not leak prefixes.
    """
    found: Principal | None = None
    given = token.encode()
    for candidate, grant in grants.items():
        if hmac.compare_digest(candidate.encode(), given):
            found = Principal(
                grant.name or _default_name(grant.role, candidate),
                grant.role,
                grant.scope_domains,
                key=f"env:{hashlib.sha256(given).hexdigest()[:16]}",
            )
    return found


def _default_name(role: Role, token: str) -> str:
    # A stable, non-reversible label so the audit trail can tell tokens apart.
    digest = hashlib.sha256(token.encode()).hexdigest()[:6]
    return f"{role.value}-{digest}"
