"""The report: JSON figures, an HTML page a person can open, readable PNG plots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from contract import Quantity, StationId, TruthEvent
from hanoi_ioc.evaluate.assessment import assess
from hanoi_ioc.evaluate.plots import plot_run
from hanoi_ioc.evaluate.records import AlertTimeline, RunResult, Series
from hanoi_ioc.evaluate.report import write_report
from processing.alerts import Severity
from simulators import hanoi_fleet

T0 = datetime(2025, 9, 30, 0, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n"


def run() -> RunResult:
    wanted = ("fd-thai-ha", "rg-o-cho-dua")
    fleet = {str(s.station_id): s for s in hanoi_fleet() if s.station_id in wanted}
    step = np.arange(300)
    minutes = (T0.timestamp() + 60.0 * step).astype(np.float64)
    depth = (
        np.clip((step - 100) * 1.0, 0.0, 45.0) - np.clip((step - 200) * 0.6, 0.0, 45.0)
    ).astype(np.float64)
    rain = np.where((step > 80) & (step < 140), 2.0, 0.0).astype(np.float64)
    label = TruthEvent("f", "storm", StationId("fd-thai-ha"), "flood", "event",
                       T0 + timedelta(minutes=110), T0 + timedelta(minutes=260),
                       (Quantity.WATER_DEPTH,))  # fmt: skip
    alerts = (
        AlertTimeline(1, "flood_forecast", "event", "fd-thai-ha", "water_depth", Severity.SEVERE,
                    T0 + timedelta(minutes=98), T0 + timedelta(minutes=150),
                    {Severity.MINOR: T0 + timedelta(minutes=98),
                     Severity.SEVERE: T0 + timedelta(minutes=112)}),
        AlertTimeline(2, "flood_depth", "event", "fd-thai-ha", "water_depth", Severity.SEVERE,
                    T0 + timedelta(minutes=111), T0 + timedelta(minutes=270)),
    )  # fmt: skip
    series = {
        ("fd-thai-ha", "water_depth"): Series("fd-thai-ha", "water_depth", minutes, depth),
        ("rg-o-cho-dua", "rainfall"): Series("rg-o-cho-dua", "rainfall", minutes, rain),
    }
    return RunResult("storm", "Mưa", "Storm", 0, T0, T0 + timedelta(hours=5), fleet, (label,),
                     alerts, series, 600, {"ingest": {"stored": 600}}, 3.0, 3600.0)  # fmt: skip


def test_report_files_hold_the_figures_and_the_plots(tmp_path: Path) -> None:
    result = run()
    assessment = assess(result)
    files = plot_run(result, assessment.panels, tmp_path / "plots" / "storm")
    assert [f.name for f in files] == ["fd-thai-ha__water_depth.png"]
    assert files[0].read_bytes()[:8] == PNG
    assert files[0].stat().st_size > 20_000  # a real figure, not an empty canvas
    plots = {"storm": [str(f.relative_to(tmp_path)) for f in files]}
    html_path, json_path = write_report(tmp_path, [assessment], plots, "hanoi-ioc evaluate")
    document = json.loads(json_path.read_text(encoding="utf-8"))
    scenario = document["scenarios"][0]
    flood = next(k for k in scenario["kinds"] if k["kind"] == "flood")
    assert (flood["recall"], flood["precision"], flood["detected"]) == (1.0, 1.0, 1)
    assert flood["false_alarms"] == []
    assert flood["missed"] == []
    lead = scenario["flood_lead_times"][0]
    assert lead["verdict"] == "met"
    assert lead["first_alert_rule"] == "flood_forecast"
    assert lead["lead_min"] == 32.0  # 30 cm at minute 130, forecast at minute 98
    assert {t["name"]: t["verdict"] for t in scenario["targets"]}["flood.lead_time"] == "pass"
    assert document["summary"]["all_targets_met"] is True
    assert "same station" in document["matching_rules"]
    page = html_path.read_text(encoding="utf-8")
    assert 'src="plots/storm/fd-thai-ha__water_depth.png"' in page
    assert "Chỉ tiêu" in page
    assert "giờ Hà Nội" in page
