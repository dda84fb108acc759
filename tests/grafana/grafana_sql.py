"""What Grafana does to a PostgreSQL panel query before it reaches the database.

Three steps, in Grafana's order:

1. the frontend substitutes template variables (multi-value and include-all variables become
   quoted, comma-separated literals, so ``IN ($station)`` works; single values are inserted
   raw with quotes doubled);
2. the backend's global substitutions (``sqleng.Interpolate``): ``$__interval_ms``,
   ``$__interval``, ``$__unixEpochFrom()``, ``$__unixEpochTo()``;
3. the PostgreSQL macro engine (``pkg/tsdb/grafana-postgresql-datasource/macros.go``):
   ``$__timeFilter``, ``$__timeGroup[Alias]`` (``floor(extract(epoch ...))`` or, with the
   datasource's ``timescaledb`` flag, ``time_bucket``), ... Unknown macros are errors.

Re-implemented from Grafana's source (integration.md A3) so that the tests can run every
panel's SQL on a real PostgreSQL without a Grafana server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

__all__ = [
    "MacroError",
    "QueryContext",
    "Variable",
    "format_interval",
    "parse_interval",
    "render",
    "rfc3339nano",
    "substitute_variables",
]

_MACRO_RE: Final = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VAR_RE: Final = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
_GO_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_GO_EXP_PRECISION: Final = 6  # strconv's %g decision precision for shortest output
_FORMAT_UNITS_MS: Final = (
    ("y", 365 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
_EXTRA_UNITS: Final = {"d": 86400.0, "w": 7 * 86400.0, "M": 30 * 86400.0, "y": 365 * 86400.0}


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class QueryContext:
    """The time range and interval of one panel query.

    Args:
        time_from: range start (tz-aware).
        time_to: range end (tz-aware).
        interval: the panel's ``$__interval``.
        timescaledb: the datasource's ``jsonData.timescaledb`` flag.
    """

    time_from: datetime
    time_to: datetime
    interval: timedelta
    timescaledb: bool = False


@dataclass(frozen=True, slots=True)
class Variable:
    """A template variable's current value(s).

    Args:
        values: the selected values (all options when "All" is selected).
        multi: multi-value or include-all: values are quoted and joined.
    """

    values: tuple[str, ...]
    multi: bool


def rfc3339nano(t: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of ``t`` in UTC (trailing fractional zeros dropped)."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += ("." + f"{t.microsecond:06d}").rstrip("0")
    return text + "Z"


def _go_float(x: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form from 1e+06 or below 1e-04."""
    d = Decimal(repr(x)).normalize()
    exp = d.adjusted()
    if -4 <= exp < _GO_EXP_PRECISION:
        return format(d, "f")
    sign, digits, _ = d.as_tuple()
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def parse_interval(text: str) -> timedelta:
    """``gtime.ParseInterval``: Go durations (``1m30s``) plus ``d``, ``w``, ``M``, ``y``."""
    m = re.fullmatch(r"(\d+)([dwMy])", text)
    if m:
        return timedelta(seconds=int(m[1]) * _EXTRA_UNITS[m[2]])
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        msg = f"error parsing interval {text}"
        raise MacroError(msg)
    return timedelta(seconds=sum(float(n) * _GO_UNITS[u] for n, u in parts))


def format_interval(d: timedelta) -> str:
    """``gtime.FormatInterval``: the largest whole unit (``1m``, ``30s``, ``2h``, ``1d``)."""
    ms = int(d.total_seconds() * 1000)
    for unit, size_ms in _FORMAT_UNITS_MS:
        if ms >= size_ms:
            return f"{ms // size_ms}{unit}"
    return "1ms"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format_variable(var: Variable, fmt: str | None) -> str:
    if fmt == "csv":
        return ",".join(var.values)
    if fmt == "sqlstring" or (fmt is None and var.multi):
        return ",".join(_quote(v) for v in var.values)
    if fmt in (None, "raw"):
        return ",".join(v.replace("'", "''") if fmt is None else v for v in var.values)
    msg = f"unsupported variable format {fmt!r}"
    raise MacroError(msg)


def substitute_variables(sql: str, variables: Mapping[str, Variable]) -> str:
    """The frontend's template substitution; unknown names (``$__timeFilter``) stay as they are."""

    def replace(m: re.Match[str]) -> str:
        name = m[1] or m[2] or m[4]
        fmt = m[3] or m[6]
        if name not in variables:
            return m[0]
        return _format_variable(variables[name], fmt)

    return _VAR_RE.sub(replace, sql)


def _global(sql: str, ctx: QueryContext) -> str:
    ms = int(ctx.interval.total_seconds() * 1000)
    sql = sql.replace("$__interval_ms", str(ms))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(_epoch(ctx.time_from, nano=False)))
    return sql.replace("$__unixEpochTo()", str(_epoch(ctx.time_to, nano=False)))


def _time_group(args: Sequence[str], ctx: QueryContext, name: str) -> str:
    if len(args) < 2:
        msg = f"macro {name} needs time column and interval and optional fill value"
        raise MacroError(msg)
    seconds = parse_interval(args[1].strip("'")).total_seconds()
    if name == "__unixEpochGroup":
        return f"floor(({args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"
    if ctx.timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"


def _epoch(t: datetime, *, nano: bool) -> int:
    micros = (t - _EPOCH) // timedelta(microseconds=1)
    return micros * 1000 if nano else micros // 1_000_000


def _needs_column(name: str, args: Sequence[str]) -> None:
    if not args or not args[0]:
        msg = f"missing time column argument for macro {name}"
        raise MacroError(msg)


def _evaluate(name: str, args: Sequence[str], ctx: QueryContext) -> str:
    start, end = ctx.time_from, ctx.time_to
    match name:
        case "__time":
            _needs_column(name, args)
            return f'{args[0]} AS "time"'
        case "__timeEpoch":
            _needs_column(name, args)
            return f'extract(epoch from {args[0]}) as "time"'
        case "__timeFilter":
            _needs_column(name, args)
            return f"{args[0]} BETWEEN '{rfc3339nano(start)}' AND '{rfc3339nano(end)}'"
        case "__timeFrom":
            return f"'{rfc3339nano(start)}'"
        case "__timeTo":
            return f"'{rfc3339nano(end)}'"
        case "__timeGroup" | "__unixEpochGroup":
            return _time_group(args, ctx, name)
        case "__timeGroupAlias" | "__unixEpochGroupAlias":
            return _time_group(args, ctx, name.removesuffix("Alias")) + ' AS "time"'
        case "__unixEpochFilter" | "__unixEpochNanoFilter":
            _needs_column(name, args)
            nano = name == "__unixEpochNanoFilter"
            lo, hi = _epoch(start, nano=nano), _epoch(end, nano=nano)
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        case "__unixEpochNanoFrom":
            return str(_epoch(start, nano=True))
        case "__unixEpochNanoTo":
            return str(_epoch(end, nano=True))
    msg = f"unknown macro {name!r}"
    raise MacroError(msg)


def _macros(sql: str, ctx: QueryContext) -> str:
    original = sql

    def replace(m: re.Match[str]) -> str:
        name = m[1]
        # Grafana < 5.3 compatibility: "$__timeGroup(...)," means the aliased form.
        if name == "__timeGroup":
            at = original.find(m[0]) + len(m[0])
            if at < len(original) and original[at] == ",":
                name = "__timeGroupAlias"
        args = [a.strip(" ") for a in m[2].split(",")]
        return _evaluate(name, args, ctx)

    return _MACRO_RE.sub(replace, sql)


def render(sql: str, ctx: QueryContext, variables: Mapping[str, Variable] | None = None) -> str:
    """The SQL Grafana sends to PostgreSQL for this panel query."""
    return _macros(_global(substitute_variables(sql, variables or {}), ctx), ctx)
