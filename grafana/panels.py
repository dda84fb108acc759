"""Panel builders: time series, stat, table and bar gauge, and field overrides.

Each returns a :class:`dashkit.Panel` (or an override dict) that :class:`dashkit.Layout`
places on the grid. Every panel queries the provisioned datasource in code mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from dashkit import GREEN, Json, Panel, Step, sql_target, thresholds


def _field_config(
    unit: str | None,
    steps: Sequence[Step] | None,
    custom: Json | None,
    overrides: Sequence[Json] | None,
    extra: Json | None,
) -> Json:
    defaults: Json = {}
    if unit:
        defaults["unit"] = unit
    defaults["thresholds"] = thresholds(*(steps or [(None, GREEN)]))
    if custom:
        defaults["custom"] = custom
    defaults.update(extra or {})
    return {"defaults": defaults, "overrides": list(overrides or [])}


def timeseries(
    title: str,
    sql: str,
    *,
    unit: str | None = None,
    description: str = "",
    steps: Sequence[Step] | None = None,
    threshold_style: Literal["off", "line", "dashed", "area", "line+area"] = "off",
    bars: bool = False,
    stacked: bool = False,
    display_name: str | None = "${__field.labels.station}",
    interval: str | None = "1m",
    time_from: str | None = None,
    overrides: Sequence[Json] | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A time-series panel over one ``time_series`` query (series per station by default)."""
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 60 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    extra: Json = {"color": {"mode": "palette-classic"}}
    if display_name:
        extra["displayName"] = display_name
    body: Json = {
        "description": description,
        "fieldConfig": _field_config(unit, steps, custom, overrides, extra),
        "options": {
            "legend": {
                "showLegend": True,
                "displayMode": "list",
                "placement": "bottom",
                "calcs": [],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }
    if interval:
        body["interval"] = interval
    if time_from:
        body["timeFrom"] = time_from
    return Panel("timeseries", title, [sql_target(sql)], w, h, body)


def stat(
    title: str,
    sql: str,
    *,
    unit: str | None = None,
    description: str = "",
    steps: Sequence[Step] | None = None,
    overrides: Sequence[Json] | None = None,
    color_mode: Literal["value", "background", "none"] = "background",
    w: int = 12,
    h: int = 4,
) -> Panel:
    """A stat panel showing every numeric column of a one-row table result."""
    body: Json = {
        "description": description,
        "fieldConfig": _field_config(
            unit, steps, None, overrides, {"color": {"mode": "thresholds"}}
        ),
        "options": {
            "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
            "colorMode": color_mode,
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
            "wideLayout": True,
        },
    }
    return Panel("stat", title, [sql_target(sql, "table")], w, h, body)


def table(
    title: str,
    sql: str,
    *,
    description: str = "",
    overrides: Sequence[Json] | None = None,
    sort_by: str | None = None,
    w: int = 24,
    h: int = 8,
) -> Panel:
    """A table panel over a ``table`` query; column aliases are the headers."""
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    body: Json = {
        "description": description,
        "fieldConfig": _field_config(
            None, None, {"align": "auto", "cellOptions": {"type": "auto"}}, overrides, None
        ),
        "options": options,
    }
    return Panel("table", title, [sql_target(sql, "table")], w, h, body)


def bargauge(
    title: str,
    sql: str,
    *,
    unit: str | None = None,
    description: str = "",
    steps: Sequence[Step] | None = None,
    max_value: float | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A horizontal bar gauge, one bar per row of a (name, value) table result."""
    extra: Json = {"color": {"mode": "thresholds"}, "min": 0}
    if max_value is not None:
        extra["max"] = max_value
    body: Json = {
        "description": description,
        "fieldConfig": _field_config(unit, steps, None, None, extra),
        "options": {
            "reduceOptions": {"values": True, "calcs": [], "fields": ""},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
        },
    }
    return Panel("bargauge", title, [sql_target(sql, "table")], w, h, body)


def color_override(name: str, color: str) -> Json:
    """Give the field called ``name`` a fixed colour."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
    }


def threshold_override(name: str, steps: Sequence[Step]) -> Json:
    """Colour the field called ``name`` by its own thresholds."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {"id": "thresholds", "value": thresholds(*steps)},
            {"id": "color", "value": {"mode": "thresholds"}},
        ],
    }


def cell_colour_override(name: str, steps: Sequence[Step], unit: str | None = None) -> Json:
    """Colour the background of one table column by thresholds."""
    props: list[Json] = [
        {"id": "thresholds", "value": thresholds(*steps)},
        {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
    ]
    if unit:
        props.append({"id": "unit", "value": unit})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}
