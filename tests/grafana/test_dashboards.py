"""Strict structural checks of the dashboard JSON (Grafana itself ignores most mistakes).

The allowed keys follow the dashboard JSON schema (integration.md A5: top level and panels are
``additionalProperties: false``); the rest are house rules: bilingual titles, the displayed
time zone, rollups for ranges, ``IN ($var)`` for multi-value variables.
"""

import itertools
import json
import re

import pytest

from contract import Domain, Quantity
from processing.alerts import Severity
from tests.grafana.artefacts import (
    DASHBOARD_FILES,
    DASHBOARDS,
    Json,
    all_panels,
    datasource_uids,
    load_dashboard,
    panel_queries,
    variables,
)

TOP_LEVEL = {
    "annotations", "description", "editable", "fiscalYearStartMonth", "gnetId", "graphTooltip",
    "id", "links", "liveNow", "panels", "preload", "refresh", "revision", "schemaVersion",
    "snapshot", "tags", "templating", "time", "timepicker", "timezone", "title", "uid",
    "version", "weekStart",
}  # fmt: skip
REQUIRED_TOP = {"schemaVersion", "templating", "annotations", "uid", "title", "panels", "time"}
PANEL_KEYS = {
    "id", "type", "title", "description", "datasource", "gridPos", "targets", "fieldConfig",
    "options", "interval", "maxDataPoints", "timeFrom", "timeShift", "hideTimeOverride",
    "transformations", "links", "transparent", "repeat", "repeatDirection", "pluginVersion",
}  # fmt: skip
ROW_KEYS = {"id", "type", "title", "collapsed", "gridPos", "panels", "datasource", "repeat"}
PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge"}
TARGET_KEYS = {"refId", "datasource", "editorMode", "rawQuery", "format", "rawSql"}
VARIABLE_KEYS = {
    "type", "name", "label", "datasource", "query", "refresh", "multi", "includeAll",
    "current", "options", "regex", "sort", "hide", "description", "allValue", "skipUrlSync",
}  # fmt: skip
UIDS = {
    "city-overview.json": "hanoi-city-overview",
    "air-quality.json": "hanoi-air-quality",
    "flooding.json": "hanoi-flooding",
    "west-lake.json": "hanoi-west-lake",
    "traffic.json": "hanoi-traffic",
    "alerts.json": "hanoi-alerts",
    "ingest-health.json": "hanoi-ingest-health",
}
BUILTIN_ANNOTATION_DS = {"type": "grafana", "uid": "-- Grafana --"}


@pytest.fixture(params=DASHBOARD_FILES)
def board(request: pytest.FixtureRequest) -> Json:
    name: str = request.param
    return load_dashboard(name)


def test_files_and_uids_are_stable() -> None:
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == sorted(UIDS)
    boards = {name: load_dashboard(name) for name in UIDS}
    assert {name: b["uid"] for name, b in boards.items()} == UIDS
    assert len({b["title"] for b in boards.values()}) == len(boards)
    assert all(len(uid) <= 40 for uid in UIDS.values())


def test_top_level(board: Json) -> None:
    assert set(board) <= TOP_LEVEL, set(board) - TOP_LEVEL
    assert set(board) >= REQUIRED_TOP, REQUIRED_TOP - set(board)
    assert board["schemaVersion"] == 42
    assert board.get("id") is None
    assert board["timezone"] == "Asia/Ho_Chi_Minh"
    assert "hanoi-ioc" in board["tags"]
    assert re.fullmatch(r"\d+[smh]", board["refresh"])
    assert board["time"]["to"] == "now"
    assert " / " in board["title"]


def test_no_sharing_placeholders(board: Json) -> None:
    text = json.dumps(board)
    assert "__inputs" not in board
    assert "${DS_" not in text
    assert "__requires" not in board


def _rect(p: Json) -> tuple[int, int, int, int]:
    g = p["gridPos"]
    return g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]


def test_grid(board: Json) -> None:
    panels = list(all_panels(board))
    for p in panels:
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"}, p["title"]
        assert all(isinstance(v, int) for v in g.values()), p["title"]
        assert 0 <= g["x"] < 24, p["title"]
        assert 1 <= g["w"] <= 24, p["title"]
        assert g["x"] + g["w"] <= 24, p["title"]
        assert g["h"] > 0, p["title"]
        assert g["y"] >= 0, p["title"]
    for a, b in itertools.combinations(panels, 2):
        ax0, ay0, ax1, ay1 = _rect(a)
        bx0, by0, bx1, by1 = _rect(b)
        overlap = ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1
        assert not overlap, f"{a['title']} overlaps {b['title']}"


def test_panels(board: Json) -> None:
    uids = datasource_uids()
    panels = list(all_panels(board))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        assert p["type"] in PANEL_TYPES, p["type"]
        allowed = ROW_KEYS if p["type"] == "row" else PANEL_KEYS
        assert set(p) <= allowed, (p["title"], set(p) - allowed)
        assert re.search(r"\S / \S", p["title"]), f"title needs Vietnamese / English: {p['title']}"
        if p["type"] == "row":
            continue
        assert uids.get(p["datasource"]["uid"]) == p["datasource"]["type"], p["title"]
        targets = p["targets"]
        assert targets, p["title"]
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), p["title"]
        for t in targets:
            assert set(t) == TARGET_KEYS, (p["title"], set(t) ^ TARGET_KEYS)
            assert t["datasource"] == p["datasource"]
            assert t["editorMode"] == "code"
            assert t["rawQuery"] is True
            assert t["format"] in {"time_series", "table"}
            assert t["rawSql"].strip()
        if p["type"] == "timeseries":
            assert all(t["format"] == "time_series" for t in targets), p["title"]


def _threshold_lists(node: object) -> list[list[Json]]:
    found: list[list[Json]] = []
    if isinstance(node, dict):
        if node.get("mode") == "absolute" and "steps" in node:
            found.append(node["steps"])
        for v in node.values():
            found += _threshold_lists(v)
    elif isinstance(node, list):
        for v in node:
            found += _threshold_lists(v)
    return found


def test_thresholds_ascend_from_a_base(board: Json) -> None:
    for steps in _threshold_lists(board["panels"]):
        assert steps[0]["value"] is None
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), steps
        assert len(values) == len(set(values)), steps


def test_variables(board: Json) -> None:
    uids = datasource_uids()
    names = [v["name"] for v in variables(board)]
    assert len(names) == len(set(names))
    for var in variables(board):
        assert set(var) <= VARIABLE_KEYS, set(var) - VARIABLE_KEYS
        assert var["type"] in {"query", "custom"}
        assert " / " in var["label"]
        if var["type"] == "query":
            assert var["datasource"]["uid"] in uids
            assert var["refresh"] in {1, 2}
    sqls = [q.sql for q in panel_queries(board)] + [
        v["query"] for v in variables(board) if v["type"] == "query"
    ]
    for sql in sqls:
        for used in re.findall(r"\$\{?(\w+)", sql):
            assert used.startswith("__") or used in names, f"undefined variable ${used}"
    for var in variables(board):
        if var["multi"] or var["includeAll"]:
            name = var["name"]
            for sql in sqls:
                uses = len(re.findall(rf"\${name}\b", sql))
                assert uses == len(re.findall(rf"IN \(\${name}\)", sql)), (
                    f"multi-value ${name} must be used as IN (${name})"
                )


def test_annotations(board: Json) -> None:
    uids = datasource_uids()
    for anno in board["annotations"]["list"]:
        if anno.get("builtIn"):
            assert anno["datasource"] == BUILTIN_ANNOTATION_DS
        else:
            assert anno["datasource"]["uid"] in uids
            assert set(anno["target"]) == TARGET_KEYS
            assert " / " in anno["name"]


def test_sql_speaks_the_wire_contract(board: Json) -> None:
    quantities = {q.value for q in Quantity}
    domains = {d.value for d in Domain}
    for q in panel_queries(board):
        for eq in re.findall(r"quantity = '(\w+)'", q.sql):
            assert eq in quantities, (q.where, eq)
        for group in re.findall(r"quantity IN \(([^)$]*)\)", q.sql):
            assert set(re.findall(r"'(\w+)'", group)) <= quantities, (q.where, group)
        for eq in re.findall(r"domain = '(\w+)'", q.sql):
            assert eq in domains, (q.where, eq)
        for eq in re.findall(r"severity (?:=|WHEN) '(\w+)'", q.sql):
            assert eq in {s.value for s in Severity}, (q.where, eq)
    for var in variables(board):
        if var["name"] == "severity":
            assert var["query"].split(",") == [s.value for s in Severity]
        if var["name"] == "domain":
            assert set(var["query"].split(",")) == domains


def test_ranges_read_rollups(board: Json) -> None:
    # Raw readings only behind a short panel-level time override (the lag panel).
    for q in panel_queries(board):
        if re.search(r"FROM readings\b(?!_)", q.sql):
            assert q.time_from in {"15m", "30m", "1h"}, q.where
        if "$__timeGroup" in q.sql:
            assert "$__timeGroupAlias" in q.sql, f"{q.where}: alias the time group as time"
            assert q.interval, f"{q.where}: set a minimum interval for grouped panels"


def test_time_series_order_by_time(board: Json) -> None:
    for q in panel_queries(board):
        if q.fmt == "time_series":
            assert re.search(r"ORDER BY 1\b", q.sql), q.where
