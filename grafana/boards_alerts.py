"""The alerts dashboard, and the severity helpers the overview shares."""

from __future__ import annotations

from typing import Final

from dashkit import Json, Layout, alert_annotation, custom_var, dashboard
from levels import SEVERITIES, SEVERITY_TEXT
from panels import color_override, stat, table, timeseries

SEVERITY_RANK: Final = (
    "CASE a.severity WHEN 'extreme' THEN 4 WHEN 'severe' THEN 3 WHEN 'moderate' THEN 2 "
    "WHEN 'minor' THEN 1 ELSE 0 END"
)

ALERT_FILTER: Final = "a.severity IN ($severity) AND (a.domain IN ($domain) OR a.domain IS NULL)"


def severity_counts(where: str) -> str:
    """One row: open-alert counts per severity (most severe first) under ``where``."""
    cols = ",\n  ".join(
        f"count(*) FILTER (WHERE a.severity = '{sev}') AS \"{text}\""
        for sev, (text, _) in reversed(SEVERITY_TEXT.items())
    )
    return f"SELECT\n  {cols}\nFROM alerts a\nWHERE {where}"


def severity_overrides() -> list[Json]:
    """Fixed colours for the columns :func:`severity_counts` returns."""
    return [color_override(text, color) for text, color in SEVERITY_TEXT.values()]


def _severity_cell_override(name: str) -> Json:
    options = {
        sev: {"text": text, "color": color, "index": i}
        for i, (sev, (text, color)) in enumerate(SEVERITY_TEXT.items())
    }
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [
            {"id": "mappings", "value": [{"type": "value", "options": options}]},
            {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
        ],
    }


def alerts() -> Json:
    """Open alerts, their audit trail over time and recently cleared ones."""
    open_sql = f"""
SELECT a.alert_id AS "ID", a.raised_at AS "Phát sinh / Raised", a.severity AS "Mức độ / Severity",
  a.state AS "Trạng thái / State", a.title_vi AS "Tiêu đề", a.title_en AS "Title",
  a.station_id AS "Trạm / Station", a.district AS "Quận / District",
  a.value AS "Giá trị / Value", a.threshold AS "Ngưỡng / Threshold",
  a.acknowledged_by AS "Xác nhận / Acknowledged by", a.escalation_level AS "Leo thang / Escalation"
FROM alerts a
WHERE a.state <> 'cleared' AND {ALERT_FILTER}
ORDER BY {SEVERITY_RANK} DESC, a.raised_at DESC
LIMIT 500"""
    events_sql = f"""
SELECT
  $__timeGroupAlias(e.at, $__interval),
  e.action AS action,
  count(*)::float8 AS "events"
FROM alert_events e
JOIN alerts a USING (alert_id)
WHERE $__timeFilter(e.at) AND {ALERT_FILTER}
GROUP BY 1, 2
ORDER BY 1, 2"""
    raised_sql = f"""
SELECT
  $__timeGroupAlias(a.raised_at, $__interval),
  a.severity AS severity,
  count(*)::float8 AS "alerts"
FROM alerts a
WHERE $__timeFilter(a.raised_at) AND {ALERT_FILTER}
GROUP BY 1, 2
ORDER BY 1, 2"""
    cleared_sql = f"""
SELECT a.alert_id AS "ID", a.raised_at AS "Phát sinh / Raised",
  a.cleared_at AS "Kết thúc / Cleared",
  round(extract(epoch FROM a.cleared_at - a.raised_at) / 60) AS "Phút / Minutes",
  a.severity AS "Mức độ / Severity", a.title_vi AS "Tiêu đề", a.title_en AS "Title",
  a.station_id AS "Trạm / Station", a.cleared_by AS "Đóng bởi / Cleared by"
FROM alerts a
WHERE a.state = 'cleared' AND $__timeFilter(a.cleared_at) AND {ALERT_FILTER}
ORDER BY a.cleared_at DESC
LIMIT 500"""
    severity_colours = [color_override(s, c) for s, (_, c) in SEVERITY_TEXT.items()]
    layout = Layout()
    layout.add(
        stat(
            "Cảnh báo đang mở / Open alerts by severity",
            severity_counts(f"a.state <> 'cleared' AND {ALERT_FILTER}"),
            w=24,
            overrides=severity_overrides(),
        ),
        table(
            "Cảnh báo đang mở / Open alerts",
            open_sql,
            w=24,
            h=10,
            overrides=[_severity_cell_override("Mức độ / Severity")],
        ),
        timeseries(
            "Sự kiện cảnh báo / Alert events over time",
            events_sql,
            unit="short",
            bars=True,
            stacked=True,
            display_name="${__field.labels.action}",
            interval="5m",
            w=12,
        ),
        timeseries(
            "Cảnh báo mới theo mức độ / New alerts by severity",
            raised_sql,
            unit="short",
            bars=True,
            stacked=True,
            interval="5m",
            w=12,
            display_name="${__field.labels.severity}",
            overrides=severity_colours,
        ),
        table(
            "Cảnh báo đã đóng / Cleared alerts (in range)",
            cleared_sql,
            w=24,
            h=8,
            overrides=[_severity_cell_override("Mức độ / Severity")],
        ),
    )
    return dashboard(
        "hanoi-alerts",
        "Cảnh báo / Alerts",
        "Cảnh báo đang mở, nhật ký sự kiện / open alerts and the audit trail over time.",
        layout,
        variables=[
            custom_var("severity", "Mức độ / Severity", SEVERITIES),
            custom_var("domain", "Lĩnh vực / Domain", ("air", "water", "flood", "traffic")),
        ],
        annotations=[alert_annotation(None)],
        tags=["alerts"],
    )
