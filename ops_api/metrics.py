"""Prometheus text exposition (format 0.0.4) of every service's counters (pure).

Each service instance writes its ``stats()`` snapshot to ``service_heartbeats.stats``; every
numeric entry becomes a sample ``hanoi_<service>_<key>{instance="..."}``. A nested object of
numbers becomes one family with a ``key`` label (``{"by_reason": {"schema": 3}}`` ->
``hanoi_ingest_by_reason{instance="i1",key="schema"} 3``); deeper nesting joins names with
``_``; strings are skipped.

>>> from datetime import UTC, datetime
>>> fam = Family("hanoi_demo_total", "Demo.", "counter")
>>> fam.add(3, service="ingest")
>>> print(render([fam]), end="")
# HELP hanoi_demo_total Demo.
# TYPE hanoi_demo_total counter
hanoi_demo_total{service="ingest"} 3
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import JsonValue

__all__ = ["Family", "metric_name", "render", "service_families"]

MetricType = Literal["counter", "gauge", "untyped"]
_INVALID: Final = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts: str) -> str:
    """A valid metric name from free-form parts.

    >>> metric_name("hanoi", "ingest", "rows/s", "p95")
    'hanoi_ingest_rows_s_p95'
    """
    name = "_".join(_INVALID.sub("_", p).strip("_") for p in parts if p)
    name = re.sub(r"_+", "_", name)
    return name if not name[:1].isdigit() else f"_{name}"


@dataclass(slots=True)
class Family:
    """One metric family and its samples.

    Args:
        name: the metric name.
        help: one line of help text.
        type: counter, gauge or untyped.
    """

    name: str
    help: str
    type: MetricType = "untyped"
    samples: list[tuple[tuple[tuple[str, str], ...], float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        """Add a sample with these labels."""
        self.samples.append((tuple(sorted(labels.items())), float(value)))


def render(families: Iterable[Family]) -> str:
    """The exposition text of ``families``."""
    lines: list[str] = []
    for fam in families:
        lines.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {fam.name} {fam.type}")
        for labels, value in fam.samples:
            body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
            lines.append(
                f"{fam.name}{{{body}}} {_number(value)}" if body else f"{fam.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n" if lines else ""


def service_families(
    heartbeats: Iterable[tuple[str, str, float, Mapping[str, JsonValue]]], stale_s: float
) -> list[Family]:
    """Families for every service instance: liveness, heartbeat age and its stats.

    Args:
        heartbeats: ``(service, instance, age_s, stats)`` per instance.
        stale_s: an instance whose heartbeat is older counts as down.
    """
    up = Family("hanoi_service_up", "1 if the instance's heartbeat is fresh.", "gauge")
    age = Family("hanoi_service_heartbeat_age_seconds", "Age of the last heartbeat.", "gauge")
    stats: dict[str, Family] = {}
    for service, instance, age_s, values in heartbeats:
        up.add(1.0 if age_s <= stale_s else 0.0, service=service, instance=instance)
        age.add(age_s, service=service, instance=instance)
        for key, value, sub in _flatten(values):
            name = metric_name("hanoi", service, key)
            fam = stats.setdefault(name, Family(name, f"{service} stat {key!r}."))
            labels = {"instance": instance} if sub is None else {"instance": instance, "key": sub}
            fam.add(value, **labels)
    return [up, age, *sorted(stats.values(), key=lambda f: f.name)]


def _flatten(
    values: Mapping[str, JsonValue], prefix: str = ""
) -> Iterable[tuple[str, float, str | None]]:
    for key, value in values.items():
        name = f"{prefix}_{key}" if prefix else key
        number = _as_number(value)
        if number is not None:
            yield name, number, None
        elif isinstance(value, Mapping):
            if all(_as_number(v) is not None for v in value.values()):
                for sub, v in value.items():
                    yield name, _as_number(v) or 0.0, str(sub)
            else:
                yield from _flatten(value, name)


def _as_number(value: JsonValue) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
