"""The report a person opens: ``report.html`` (tables and plots) and ``report.json`` (figures).

Both are written from :class:`~hanoi_ioc.evaluate.assessment.Assessment` values only. The
HTML is one self-contained page (inline CSS, PNGs referenced relatively from ``plots/``),
with times in Asia/Ho_Chi_Minh and headings in English with Vietnamese alongside. The JSON
carries every figure of the tables (times as ISO 8601 UTC) plus the matching rules, so a CI
job can compare runs without parsing HTML.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from contract import HANOI, utc_iso
from hanoi_ioc.evaluate import matching
from hanoi_ioc.evaluate.assessment import Assessment
from hanoi_ioc.evaluate.lead_time import FloodLead, LeadConfig
from hanoi_ioc.evaluate.matching import KINDS, UNSCORED, KindScore, KindSpec

__all__ = ["JsonValue", "report_json", "write_report"]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
_LISTED: Final = 200  # missed labels and false alarms listed per kind, at most
_CSS: Final = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1250px;color:#1b2733;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:2px solid #1f3b57}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}
th,td{border:1px solid #c9d2db;padding:.25em .55em;text-align:right}
th{background:#eef2f6}td.l,th.l{text-align:left}
.pass{background:#d8f3dc}.FAIL{background:#ffd6d6;font-weight:bold}.na{color:#888}
.note{color:#555;font-size:.85em}img{max-width:100%;border:1px solid #dde;margin:.4em 0}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
"""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


def _local(moment: datetime | None) -> str:
    return "–" if moment is None else moment.astimezone(HANOI).strftime("%d/%m/%Y %H:%M")


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


def _spec_json(spec: KindSpec) -> dict[str, JsonValue]:
    rules: list[JsonValue] = [*sorted(spec.rules)]
    quantities: list[JsonValue] | None = (
        None if spec.quantities is None else [*sorted(spec.quantities)]
    )
    return {
        "rules": rules, "early_s": spec.early_s, "late_intervals": spec.late_intervals,
        "min_span_intervals": spec.min_span_intervals, "quantities": quantities,
        "note": spec.note,
        "min_severity": {rule: severity.value for rule, severity in spec.min_severity},
    }  # fmt: skip


def _missed(score: KindScore) -> list[JsonValue]:
    missed = [o.label for o in score.outcomes if o.expected and o.alert is None][:_LISTED]
    return [
        {"station": str(x.station_id), "start": _iso(x.start), "end": _iso(x.end),
         "detail": x.detail}
        for x in missed
    ]  # fmt: skip


def _kind_json(score: KindScore) -> dict[str, JsonValue]:
    return {
        "kind": score.kind, "labels": score.labels, "expected": score.expected,
        "detected": score.detected, "true_alerts": score.true_alerts,
        "false_alerts": score.false_alerts, "duplicates": score.duplicates,
        "precision": score.precision, "recall": score.recall,
        "delay_median_s": score.delay_median_s, "delay_p90_s": score.delay_p90_s,
        "delay_median_intervals": score.delay_median_intervals,
        "delay_p90_intervals": score.delay_p90_intervals, "has_detector": score.has_detector,
        "missed": _missed(score),
        "false_alarms": [
            {"rule": a.rule, "station": a.station_id, "quantity": a.quantity,
             "severity": a.severity.value, "raised_at": _iso(a.raised_at),
             "cleared_at": _iso(a.cleared_at)}
            for a in score.false_alarms[:_LISTED]
        ],
    }  # fmt: skip


def _lead_json(lead: FloodLead) -> dict[str, JsonValue]:
    return {
        "station": lead.label.station_id, "flood_start": _iso(lead.label.start),
        "peak_cm": lead.peak_cm, "crossed_at": _iso(lead.crossed_at),
        "rain_onset": _iso(lead.onset_at), "onset_from_rain": lead.onset_from_rain,
        "opportunity_min": _minutes(lead.opportunity_s),
        "first_alert_rule": lead.alert.rule if lead.alert else None,
        "first_alert_at": _iso(lead.alert.raised_at if lead.alert else None),
        "lead_min": _minutes(lead.lead_s), "warning_at": _iso(lead.warning_at),
        "warning_lead_min": _minutes(lead.warning_lead_s), "verdict": lead.verdict,
    }  # fmt: skip


def _scenario_json(a: Assessment, plots: Sequence[str]) -> dict[str, JsonValue]:
    run = a.run
    return {
        "name": run.scenario, "title_vi": run.title_vi, "title_en": run.title_en,
        "seed": run.seed, "start": _iso(run.start), "end": _iso(run.end),
        "stations": len(run.stations), "published_messages": run.published,
        "elapsed_s": round(run.elapsed_s, 1), "warmup_s": run.warmup_s,
        "labels": len(run.labels),
        "alerts": len(run.alerts),
        "alerts_by_rule": dict(Counter(x.rule for x in run.alerts)),
        "kinds": [_kind_json(k) for k in a.scoring.kinds],
        "unscored": dict(a.scoring.unscored),
        "false_alarms_by_rule": dict(Counter(x.rule for x in a.scoring.unmatched)),
        "flood_lead_times": [_lead_json(x) for x in a.leads],
        "targets": [
            {"name": t.name, "kind": t.kind, "target": t.text, "value": t.value,
             "verdict": t.verdict, "note": t.note}
            for t in a.targets
        ],
        "plots": list(plots),
        "counters": {k: dict(v) for k, v in run.counters.items()},
    }  # fmt: skip


def report_json(
    assessments: Sequence[Assessment],
    plots: Mapping[str, Sequence[str]],
    command: str,
    lead: LeadConfig | None = None,
) -> dict[str, JsonValue]:
    """The machine-readable report."""
    cfg = lead or LeadConfig()
    failed = [(a.run.scenario, t.name) for a in assessments for t in a.failed]
    return {
        "generated_at": _iso(datetime.now(UTC)),
        "command": command,
        "matching_rules": (matching.__doc__ or "").split("\n\n>>>")[0],
        "kinds": {
            k: _spec_json(s) for k, s in KINDS.items()
        },
        "unscored_kinds": dict(UNSCORED),
        "lead_time": {"level_cm": cfg.level_cm, "target_s": cfg.target_s,
                      "heavy_mm_h": cfg.heavy_mm_h, "rain_window_s": cfg.rain_window_s},
        "scenarios": [_scenario_json(a, plots.get(a.run.scenario, [])) for a in assessments],
        "summary": {
            "targets_failed": [f"{s}: {n}" for s, n in failed],
            "all_targets_met": not failed,
        },
    }  # fmt: skip


def _row(cells: Sequence[str], *, header: bool = False, left: int = 1) -> str:
    tag = "th" if header else "td"
    out = []
    for i, cell in enumerate(cells):
        klass = ' class="l"' if i < left else ""
        out.append(f"<{tag}{klass}>{cell}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"


def _kinds_table(a: Assessment) -> str:
    head = _row(["kind / loại", "labels", "expected", "detected", "recall", "true alerts",
                 "false alerts", "precision", "delay median", "delay p90", "median (intervals)",
                 "p90 (intervals)"], header=True)  # fmt: skip
    rows = []
    for k in a.scoring.kinds:
        if not k.has_detector:
            rows.append(_row([html.escape(k.kind), str(k.labels), str(k.expected),
                              "no detector", "–", "–", "–", "–", "–", "–", "–", "–"]))  # fmt: skip
            continue
        rows.append(_row([
            html.escape(k.kind), str(k.labels), str(k.expected), str(k.detected),
            _num(k.recall), str(k.true_alerts), str(k.false_alerts), _num(k.precision),
            f"{_num(_minutes(k.delay_median_s), 1)} min", f"{_num(_minutes(k.delay_p90_s), 1)} min",
            _num(k.delay_median_intervals, 1), _num(k.delay_p90_intervals, 1),
        ]))  # fmt: skip
    unscored = ", ".join(f"{html.escape(k)} {n}" for k, n in sorted(a.scoring.unscored.items()))
    extra = f'<p class="note">Counted, not scored: {unscored}.</p>' if unscored else ""
    return f"<table>{head}{''.join(rows)}</table>{extra}"


def _targets_table(a: Assessment) -> str:
    head = _row(["target / chỉ tiêu", "kind", "value", "verdict", "note"], header=True, left=2)
    rows = []
    for t in a.targets:
        klass = {"pass": "pass", "FAIL": "FAIL"}.get(t.verdict, "na")
        rows.append(
            f"<tr><td class='l'>{html.escape(t.text)}</td><td class='l'>{t.kind}</td>"
            f"<td>{_num(t.value)}</td><td class='{klass}'>{t.verdict}</td>"
            f"<td class='l'>{html.escape(t.note)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _leads_table(a: Assessment) -> str:
    if not a.leads:
        return "<p class='note'>No flood in this scenario.</p>"
    head = _row(["hotspot", "flood from", "peak cm", "crossed 30 cm", "rain onset",
                 "opportunity", "first flood alert", "lead", "30 cm warning lead", "verdict"],
                header=True, left=2)  # fmt: skip
    rows = []
    for x in a.leads:
        alert = f"{x.alert.rule} {_local(x.alert.raised_at)}" if x.alert else "–"
        onset = _local(x.onset_at) + ("" if x.onset_from_rain or x.onset_at is None
                                      else " (no heavy rain: flood start)")  # fmt: skip
        verdict = {"met": "met", "missed": "MISSED", "no_chance": "no chance (rain too sudden)",
                   "not_crossed": "did not reach 30 cm"}[x.verdict]  # fmt: skip
        klass = {"met": "pass", "missed": "FAIL"}.get(x.verdict, "na")
        rows.append(
            f"<tr><td class='l'>{x.label.station_id}</td><td class='l'>{_local(x.label.start)}"
            f"</td><td>{_num(x.peak_cm, 1)}</td><td>{_local(x.crossed_at)}</td><td>{onset}</td>"
            f"<td>{_num(_minutes(x.opportunity_s), 1)} min</td><td>{html.escape(alert)}</td>"
            f"<td>{_num(_minutes(x.lead_s), 1)} min</td>"
            f"<td>{_num(_minutes(x.warning_lead_s), 1)} min</td>"
            f"<td class='{klass}'>{verdict}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _false_alarms(a: Assessment) -> str:
    counts = Counter(x.rule for x in a.scoring.unmatched)
    if not counts:
        return "<p>No alert went unexplained by the ground truth.</p>"
    items = "".join(f"<li>{html.escape(r)}: {n}</li>" for r, n in counts.most_common())
    return f"<ul>{items}</ul>"


def _scenario_html(a: Assessment, plots: Sequence[str]) -> str:
    run = a.run
    images = "".join(
        f'<figure><img src="{html.escape(p)}" alt="{html.escape(p)}"></figure>' for p in plots
    )
    return f"""
<h2 id="{run.scenario}">{html.escape(run.scenario)} — {html.escape(run.title_en)}</h2>
<p><i>{html.escape(run.title_vi)}</i><br>
{_local(run.start)} → {_local(run.end)} (giờ Hà Nội), {len(run.stations)} stations, seed
{run.seed}, after a quiet spin-up of {run.warmup_s / 3600:.0f} h (not scored);
{run.published} telemetry messages through MQTT, ingest and processing in
{run.elapsed_s:.0f} s; {len(run.labels)} labels, {len(run.alerts)} alerts scored.</p>
<h3>Targets / Chỉ tiêu</h3>{_targets_table(a)}
<h3>Per kind / Theo loại sự kiện và lỗi</h3>{_kinds_table(a)}
<h3>Flood lead time / Thời gian cảnh báo trước khi ngập 30 cm</h3>{_leads_table(a)}
<h3>Alerts matching no label / Cảnh báo không khớp sự kiện nào</h3>{_false_alarms(a)}
<details open><summary>Plots / Biểu đồ ({len(plots)})</summary>{images}</details>
"""


def _summary_html(assessments: Sequence[Assessment]) -> str:
    head = _row(["scenario", *[t.name for t in assessments[0].targets]], header=True)
    rows = []
    for a in assessments:
        cells = [f"<td class='l'><a href='#{a.run.scenario}'>{a.run.scenario}</a></td>"]
        for t in a.targets:
            klass = {"pass": "pass", "FAIL": "FAIL"}.get(t.verdict, "na")
            cells.append(f"<td class='{klass}'>{t.verdict} {_num(t.value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def write_report(
    out: Path,
    assessments: Sequence[Assessment],
    plots: Mapping[str, Sequence[str]],
    command: str,
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out``; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    document = report_json(assessments, plots, command)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    rules = html.escape(str(document["matching_rules"]))
    sections = "".join(_scenario_html(a, plots.get(a.run.scenario, [])) for a in assessments)
    summary = _summary_html(assessments) if assessments else "<p>No scenario was run.</p>"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Hanoi IOC — detection evaluation</title><style>{_CSS}</style></head><body>
<h1>Hanoi IOC — detection evaluation / Đánh giá phát hiện sự kiện</h1>
<p class="note">Generated {_local(datetime.now(UTC))} (giờ Hà Nội) by
<code>{html.escape(command)}</code>.
Machine-readable figures: <a href="report.json">report.json</a>.</p>
<h2>Summary / Tóm tắt</h2>{summary}
<details><summary>How alerts are matched to ground truth / Quy tắc đối chiếu</summary>
<pre style="white-space:pre-wrap">{rules}</pre></details>
{sections}
</body></html>
"""
    html_path = out / "report.html"
    html_path.write_text(page, encoding="utf-8")
    return html_path, json_path
