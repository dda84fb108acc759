"""A small toolkit that builds Grafana dashboard JSON (classic model, schemaVersion 42) as dicts.

Only what our dashboards need: PostgreSQL code-mode targets, query and custom template
variables, a flowing 24-column grid layout and the dashboard envelope (panel builders are in
:mod:`panels`). The
output is the bare model that file provisioning loads: stable ``uid``, no ``id``, no
``__inputs``; every panel references the provisioned datasource by uid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Json = dict[str, Any]
Format = Literal["time_series", "table"]

SCHEMA_VERSION: Final = 42
DATASOURCE_UID: Final = "hanoi-tsdb"
DATASOURCE_TYPE: Final = "grafana-postgresql-datasource"
DATASOURCE: Final[Json] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
TIMEZONE: Final = "Asia/Ho_Chi_Minh"
TAG: Final = "hanoi-ioc"
GRID_WIDTH: Final = 24

# Named colours used across dashboards (Grafana accepts names and hex).
GREEN: Final = "green"
YELLOW: Final = "yellow"
ORANGE: Final = "orange"
RED: Final = "red"
PURPLE: Final = "purple"
BLUE: Final = "blue"
GREY: Final = "text"

Step = tuple[float | None, str]


def thresholds(*steps: Step) -> Json:
    """Absolute thresholds; the first step's value must be None (the base colour)."""
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def sql_target(sql: str, fmt: Format = "time_series", ref_id: str = "A") -> Json:
    """A PostgreSQL code-mode query."""
    return {
        "refId": ref_id,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "rawQuery": True,
        "format": fmt,
        "rawSql": sql.strip(),
    }


@dataclass(frozen=True, slots=True)
class Panel:
    """A panel before layout (id and gridPos are assigned by :class:`Layout`).

    Args:
        kind: Grafana panel type (``timeseries``, ``stat``, ``table``, ...).
        title: bilingual title, Vietnamese first.
        targets: queries.
        w: width in grid columns (1-24).
        h: height in grid rows.
        body: every other panel key (fieldConfig, options, description, interval, ...).
    """

    kind: str
    title: str
    targets: list[Json]
    w: int = 12
    h: int = 8
    body: Json = field(default_factory=dict)


class Layout:
    """Places panels left to right on the 24-column grid, wrapping to a new line when full."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._line_h = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = 0
        self._line_h = 0

    def row(self, title: str) -> None:
        """A full-width, expanded row header."""
        if self._x:
            self._newline()
        self.panels.append(
            {
                "id": self._next_id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, *panels: Panel) -> None:
        """Append panels in reading order."""
        for p in panels:
            if self._x + p.w > GRID_WIDTH:
                self._newline()
            self.panels.append(
                {
                    "id": self._next_id(),
                    "type": p.kind,
                    "title": p.title,
                    "datasource": dict(DATASOURCE),
                    "gridPos": {"h": p.h, "w": p.w, "x": self._x, "y": self._y},
                    **p.body,
                    "targets": p.targets,
                }
            )
            self._x += p.w
            self._line_h = max(self._line_h, p.h)


def query_var(
    name: str,
    label: str,
    sql: str,
    *,
    multi: bool = True,
    include_all: bool = True,
) -> Json:
    """A variable filled by SQL (``__text``/``__value`` columns or a single column)."""
    var: Json = {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": dict(DATASOURCE),
        "query": sql.strip(),
        "refresh": 1,
        "multi": multi,
        "includeAll": include_all,
        "options": [],
        "regex": "",
        "sort": 0,
        "hide": 0,
    }
    if include_all:
        var["current"] = _all_selected()
    return var


def custom_var(name: str, label: str, values: Sequence[str]) -> Json:
    """A fixed multi-value list (``a,b,c``) with "All" selected."""
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "multi": True,
        "includeAll": True,
        "current": _all_selected(),
        "options": [],
        "hide": 0,
    }


def _all_selected() -> Json:
    return {"selected": True, "text": ["All"], "value": ["$__all"]}


def alert_annotation(domain: str | None) -> Json:
    """Alerts raised (and cleared) in the time range, as region annotations."""
    # sensor-health alerts may carry no domain: fall back to their station's
    where = (
        " AND coalesce(a.domain, (SELECT st.domain FROM stations st"
        f" WHERE st.station_id = a.station_id)) = '{domain}'"
        if domain
        else ""
    )
    sql = f"""
SELECT a.raised_at AS "time", coalesce(a.cleared_at, now()) AS "timeend",
       '[' || a.severity || '] ' || a.title_vi || ' / ' || a.title_en AS "text",
       a.severity || ',' || coalesce(a.station_id, '-') AS "tags"
FROM alerts a
WHERE $__timeFilter(a.raised_at){where}
ORDER BY 1"""
    return {
        "name": "Cảnh báo / Alerts",
        "datasource": dict(DATASOURCE),
        "enable": True,
        "hide": False,
        "iconColor": RED,
        "target": sql_target(sql, "table", "Anno"),
    }


def _builtin_annotation() -> Json:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    *,
    variables: Sequence[Json] = (),
    annotations: Sequence[Json] = (),
    tags: Sequence[str] = (),
    time_from: str = "now-6h",
    refresh: str = "30s",
) -> Json:
    """The bare dashboard model for file provisioning."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG, *tags],
        "timezone": TIMEZONE,
        "editable": False,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "weekStart": "monday",
        "liveNow": False,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {
            "hidden": False,
            "refresh_intervals": ["10s", "30s", "1m", "5m", "15m", "1h"],
            "time_options": ["15m", "1h", "6h", "12h", "24h", "2d", "7d", "30d"],
        },
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "links": [
            {
                "type": "dashboards",
                "title": "Bảng điều khiển / Dashboards",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [_builtin_annotation(), *annotations]},
        "templating": {"list": list(variables)},
        "panels": layout.panels,
    }
