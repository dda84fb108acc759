"""Matching alerts to ground truth: the rules of hanoi_ioc.evaluate.matching, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract import Quantity, StationId, TruthEvent
from hanoi_ioc.evaluate.matching import KINDS, percentile, score_alerts
from hanoi_ioc.evaluate.records import AlertTimeline
from processing.alerts import Severity

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def label(
    station: str, kind: str, start_min: float, end_min: float, *quantities: Quantity
) -> TruthEvent:
    category = "fault" if kind in ("spike", "dropout", "offline", "stuck", "drift") else "event"
    return TruthEvent(
        f"{station}-{kind}-{start_min}", "test", StationId(station), kind, category,  # type: ignore[arg-type]
        T0 + start_min * MINUTE, T0 + end_min * MINUTE, tuple(quantities),
    )  # fmt: skip


_ids = iter(range(1, 10_000))


def alert(
    station: str, rule: str, minute: float, quantity: str | None = None, cleared: float = 1e4,
    severity: Severity = Severity.MINOR,
) -> AlertTimeline:  # fmt: skip
    return AlertTimeline(next(_ids), rule, "event", station, quantity, severity,
                       T0 + minute * MINUTE, T0 + cleared * MINUTE)  # fmt: skip


def every_minute(_: str) -> float:
    return 60.0


def test_an_alert_inside_the_window_detects_the_label_with_its_delay() -> None:
    scoring = score_alerts([label("fd-a", "flood", 0, 120)], [alert("fd-a", "flood_depth", 2)],
                           every_minute)  # fmt: skip
    flood = scoring.kind("flood")
    assert (flood.detected, flood.expected, flood.true_alerts, flood.false_alerts) == (1, 1, 1, 0)
    assert flood.recall == 1.0
    assert flood.precision == 1.0
    assert flood.delay_median_s == 120.0
    assert flood.delay_median_intervals == 2.0


def test_another_station_or_an_incompatible_rule_never_matches() -> None:
    labels = [label("fd-a", "flood", 0, 60)]
    alerts = [alert("fd-b", "flood_depth", 5), alert("fd-a", "spike", 5)]
    scoring = score_alerts(labels, alerts, every_minute)
    assert scoring.kind("flood").detected == 0
    assert scoring.kind("flood").false_alerts == 1  # fd-b's flood alert matched nothing
    assert {a.station_id for a in scoring.unmatched} == {"fd-a", "fd-b"}


def test_early_warnings_count_within_the_allowance_only() -> None:
    early = KINDS["flood"].early_s / 60  # an hour
    labels = [label("fd-a", "flood", 200, 260), label("fd-b", "flood", 200, 260)]
    alerts = [
        alert("fd-a", "flood_forecast", 200 - early + 1),  # a forecast 59 min ahead
        # 65 min ahead and cleared before the flood began: unrelated
        alert("fd-b", "flood_forecast", 200 - early - 5, cleared=150),
    ]
    scoring = score_alerts(labels, alerts, every_minute)
    flood = scoring.kind("flood")
    assert flood.detected == 1
    assert flood.false_alerts == 1
    assert flood.delay_median_s == pytest.approx(-(early - 1) * 60)  # negative: early
    missed = [o.label.station_id for o in flood.outcomes if o.alert is None]
    assert missed == ["fd-b"]


def test_alerts_after_the_end_count_within_a_few_intervals() -> None:
    late = KINDS["spike"].late_intervals
    labels = [label("aq-a", "spike", 10, 10, Quantity.PM25)] * 2
    scoring = score_alerts(
        labels[:1], [alert("aq-a", "spike", 10 + late), alert("aq-a", "spike", 10 + late + 1)],
        every_minute,
    )  # fmt: skip
    spike = scoring.kind("spike")
    assert (spike.detected, spike.true_alerts, spike.false_alerts) == (1, 1, 1)


def test_overlapping_labels_share_an_alert_and_extra_alerts_are_duplicates() -> None:
    labels = [label("wl-a", "hypoxia", 0, 120), label("wl-a", "oxygen_crash", 60, 600)]
    alerts = [alert("wl-a", "low_oxygen", 70, severity=Severity.SEVERE),
              alert("wl-a", "oxygen_risk", 75)]  # fmt: skip
    scoring = score_alerts(labels, alerts, lambda _: 300.0)
    for kind in ("hypoxia", "oxygen_crash"):
        score = scoring.kind(kind)
        assert score.detected == 1
        assert score.true_alerts == 2
        assert score.duplicates == 1
    assert scoring.kind("oxygen_crash").delay_median_intervals == pytest.approx(2.0)


def test_no_alerts_means_zero_recall_and_no_precision() -> None:
    scoring = score_alerts([label("fd-a", "flood", 0, 60)], [], every_minute)
    flood = scoring.kind("flood")
    assert flood.recall == 0.0
    assert flood.precision is None
    assert flood.delay_median_s is None


def test_no_labels_means_every_alert_is_a_false_alarm() -> None:
    scoring = score_alerts([], [alert("fd-a", "flood_depth", 1), alert("fd-a", "water_rising", 2)],
                           every_minute)  # fmt: skip
    flood = scoring.kind("flood")
    assert flood.recall is None
    assert flood.precision == 0.0
    assert flood.false_alerts == 2
    assert [a.rule for a in flood.false_alarms] == ["flood_depth", "water_rising"]


def test_an_alert_explained_by_another_kind_is_not_a_false_alarm_of_this_one() -> None:
    labels = [label("wl-a", "hypoxia", 0, 60)]  # no oxygen crash labelled
    severe = alert("wl-a", "low_oxygen", 5, severity=Severity.SEVERE)
    scoring = score_alerts(labels, [severe], lambda _: 300.0)
    crash = scoring.kind("oxygen_crash")
    assert (crash.true_alerts, crash.false_alerts, crash.precision) == (0, 0, None)
    assert scoring.unmatched == ()


def test_a_mild_threshold_level_is_a_notice_not_a_claim_of_the_kind() -> None:
    # DO under the permitted 4 mg/L (moderate) on a night without a labelled crash: not a
    # false crash alarm, still listed as matching nothing; at the fish-kill level it is.
    notice = alert("wl-a", "low_oxygen", 5, severity=Severity.MODERATE)
    scoring = score_alerts([], [notice], lambda _: 300.0)
    assert scoring.get("oxygen_crash") is None
    assert scoring.unmatched == (notice,)
    severe = alert("wl-a", "low_oxygen", 5, severity=Severity.SEVERE)
    assert score_alerts([], [severe], lambda _: 300.0).kind("oxygen_crash").false_alerts == 1
    crash = [label("wl-a", "oxygen_crash", 60, 600)]
    found = score_alerts(crash, [notice, severe], lambda _: 300.0).kind("oxygen_crash")
    assert (found.detected, found.true_alerts, found.false_alerts) == (1, 1, 0)


def test_related_rules_are_explained_but_do_not_detect() -> None:
    labels = [label("wl-a", "algal_bloom", 0, 3000, Quantity.CHLOROPHYLL_A)]
    severe = alert("wl-a", "low_oxygen", 600, severity=Severity.SEVERE)
    scoring = score_alerts(labels, [severe], lambda _: 300.0)
    assert scoring.unmatched == ()  # a dawn oxygen sag in a bloom is the bloom's doing
    assert scoring.kind("algal_bloom").detected == 0
    assert scoring.get("oxygen_crash") is not None
    assert scoring.kind("oxygen_crash").false_alerts == 0


def test_labels_too_short_or_out_of_scope_are_not_expected() -> None:
    short = label("aq-a", "dropout", 0, 2)  # three lost messages: too short to call
    long = label("aq-a", "dropout", 100, 110)
    unwatched = label("aq-a", "spike", 50, 50, Quantity.RELATIVE_HUMIDITY)
    alerts = [alert("aq-a", "sensor_silent", 1), alert("aq-a", "sensor_silent", 106)]
    scoring = score_alerts([short, long, unwatched], alerts, every_minute)
    dropout = scoring.kind("dropout")
    assert (dropout.labels, dropout.expected, dropout.detected) == (2, 1, 1)
    assert dropout.true_alerts == 2  # matching an unexpected label is still true
    assert scoring.kind("spike").expected == 0


def test_unscored_kinds_are_counted_and_kinds_without_a_detector_say_so() -> None:
    labels = [label("aq-a", "duplicate", 1, 1), label("tr-a", "traffic_incident", 0, 90)]
    scoring = score_alerts(labels, [], every_minute)
    assert scoring.unscored == {"duplicate": 1}
    assert scoring.kind("traffic_incident").has_detector is True
    assert scoring.kind("traffic_incident").recall == 0.0
    unequipped = score_alerts(labels, [], every_minute, known_rules=frozenset({"flood_depth"}))
    assert unequipped.kind("traffic_incident").has_detector is False


def test_percentiles_interpolate() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 90) is None


def test_an_alert_still_open_when_a_label_starts_detects_it_at_once() -> None:
    burst, tail = label("rg-a", "heavy_rain", 0, 360), label("rg-a", "heavy_rain", 360, 1000)
    still_open = AlertTimeline(1, "heavy_rain", "event", "rg-a", "rainfall", Severity.SEVERE,
                             T0 + 30 * MINUTE, T0 + 1100 * MINUTE)  # fmt: skip
    cleared = AlertTimeline(2, "heavy_rain", "event", "rg-b", "rainfall", Severity.SEVERE,
                          T0 + 30 * MINUTE, T0 + 300 * MINUTE)  # fmt: skip
    other_tail = label("rg-b", "heavy_rain", 360, 1000)
    scoring = score_alerts([burst, tail, other_tail], [still_open, cleared], every_minute)
    rain = scoring.kind("heavy_rain")
    delays = {(str(o.label.station_id), o.label.start): o.delay_s for o in rain.outcomes}
    assert delays[("rg-a", burst.start)] == 30 * 60.0
    assert delays[("rg-a", tail.start)] == 0.0
    assert delays[("rg-b", other_tail.start)] is None  # cleared before it began
    assert rain.false_alerts == 1  # rg-b's alert matched nothing


def test_alerts_carried_over_from_the_spin_up_detect_but_never_count_as_false() -> None:
    early = AlertTimeline(1, "pm25_high", "event", "aq-a", "pm25", Severity.MODERATE,
                        T0 - 300 * MINUTE, None, carried_over=True)  # fmt: skip
    stale = AlertTimeline(2, "pm25_high", "event", "aq-b", "pm25", Severity.MODERATE,
                        T0 - 300 * MINUTE, None, carried_over=True)  # fmt: skip
    scoring = score_alerts([label("aq-a", "pollution_episode", 10, 400)], [early, stale],
                           every_minute)  # fmt: skip
    episode = scoring.kind("pollution_episode")
    assert (episode.detected, episode.true_alerts, episode.false_alerts) == (1, 1, 0)
    assert episode.delay_median_s == 0.0
    assert scoring.unmatched == ()
