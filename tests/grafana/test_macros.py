"""The re-implemented Grafana substitutions against Grafana's own expectations.

Expected strings follow grafana/grafana ``pkg/tsdb/grafana-postgresql-datasource/macros_test.go``
and the frontend's variable formatting (integration.md A3).
"""

from datetime import UTC, datetime, timedelta

import pytest

from tests.grafana.grafana_sql import (
    MacroError,
    QueryContext,
    Variable,
    format_interval,
    parse_interval,
    render,
    rfc3339nano,
    substitute_variables,
)

FROM = datetime(2018, 4, 12, 18, 0, tzinfo=UTC)
CTX = QueryContext(FROM, FROM + timedelta(minutes=5), timedelta(minutes=1))
TS = QueryContext(CTX.time_from, CTX.time_to, CTX.interval, timescaledb=True)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select min($__time(time_column))", 'select min(time_column AS "time")'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
        ),
        (
            "SELECT $__timeGroup(time_column,'5m')",
            "SELECT floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "$__timeGroupAlias(time_column , '5m')",
            'floor(extract(epoch from time_column)/300)*300 AS "time"',
        ),
        ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
        (
            "select $__unixEpochNanoFilter(time)",
            "select time >= 1523556000000000000 AND time <= 1523556300000000000",
        ),
        ("select $__unixEpochNanoFrom()", "select 1523556000000000000"),
        (
            "SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')",
            'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"',
        ),
        ("$__unixEpochFrom() $__unixEpochTo()", "1523556000 1523556300"),
        ("$__interval $__interval_ms", "1m 60000"),
        ("$__timeGroup(t, $__interval)", "floor(extract(epoch from t)/60)*60"),
    ],
)
def test_plain_postgres_expansions(sql: str, expected: str) -> None:
    assert render(sql, CTX) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
        (
            "GROUP BY $__timeGroup(time_column , '12d')",
            "GROUP BY time_bucket('1036800.000s',time_column)",
        ),
        (
            "GROUP BY $__timeGroup(time_column , '20ms')",
            "GROUP BY time_bucket('0.020s',time_column)",
        ),
    ],
)
def test_timescaledb_expansions(sql: str, expected: str) -> None:
    assert render(sql, TS) == expected


def test_large_intervals_print_like_go() -> None:
    assert (
        render("$__timeGroup(t,'12d')", CTX) == "floor(extract(epoch from t)/1.0368e+06)*1.0368e+06"
    )
    assert render("$__timeGroup(t,'1d')", CTX) == "floor(extract(epoch from t)/86400)*86400"


def test_rfc3339nano_trims_fraction() -> None:
    assert (
        rfc3339nano(datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=UTC)) == "1960-02-01T07:00:00.5Z"
    )
    assert rfc3339nano(datetime(1980, 2, 3, 8, tzinfo=UTC)) == "1980-02-03T08:00:00Z"


def test_intervals() -> None:
    assert parse_interval("5m") == timedelta(minutes=5)
    assert parse_interval("1h30m") == timedelta(minutes=90)
    assert parse_interval("2d") == timedelta(days=2)
    assert parse_interval("20ms") == timedelta(milliseconds=20)
    assert format_interval(timedelta(seconds=90)) == "1m"
    assert format_interval(timedelta(hours=25)) == "1d"
    assert format_interval(timedelta(milliseconds=500)) == "500ms"


@pytest.mark.parametrize(
    "sql", ["$__nope(x)", "$__timeGroup(x)", "$__timeFilter()", "$__timeGroup(x,'5q')"]
)
def test_refused_macros(sql: str) -> None:
    with pytest.raises(MacroError):
        render(sql, CTX)


def test_variables() -> None:
    multi = Variable(("aq-1", "o'hara"), multi=True)
    single = Variable(("it's",), multi=False)
    values = {"station": multi, "name": single}
    assert substitute_variables("IN ($station)", values) == "IN ('aq-1','o''hara')"
    assert substitute_variables("IN (${station})", values) == "IN ('aq-1','o''hara')"
    assert substitute_variables("${station:csv}", values) == "aq-1,o'hara"
    assert substitute_variables("= '$name'", values) == "= 'it''s'"
    assert (
        substitute_variables("[[name]] $__timeFilter(t) $other", values)
        == "it''s $__timeFilter(t) $other"
    )
