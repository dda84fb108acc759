"""The offline corpus, peers and harness: deterministic, strictly streaming, honest counts."""

from __future__ import annotations

import io

import numpy as np
import pytest

from processing.offline.corpus import (
    ANOMALY_KINDS,
    FAMILIES,
    Anomaly,
    LabelledSeries,
    corpus,
    labelled_series,
)
from processing.offline.harness import BURN_IN, judge, main, run, tallies
from processing.offline.peers import PEERS, windowed_gaussian


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_is_reproducible_and_labels_lie_inside(family: str) -> None:
    for kind in (None, *ANOMALY_KINDS):
        first = labelled_series(family, kind, seed=4, n=800)
        again = labelled_series(family, kind, seed=4, n=800)
        np.testing.assert_array_equal(first.values, again.values)
        np.testing.assert_array_equal(first.times_s, again.times_s)
        assert np.all(np.isfinite(first.values))
        for anomaly in first.anomalies:
            assert 0.4 * 800 <= anomaly.start < anomaly.end <= 800
            assert anomaly.kind == kind


def test_families_have_the_shapes_they_claim() -> None:
    zero = labelled_series("zero_counts", None, seed=0, n=4000).values
    assert (zero == 0).mean() > 0.8
    assert np.all(zero == np.round(zero))
    assert np.unique(labelled_series("quantised", None, seed=0, n=4000).values).size < 40
    irregular = labelled_series("irregular", None, seed=0, n=4000).times_s
    steps = np.diff(irregular)
    assert (steps == 0).any()
    assert (steps < 0).any()
    assert steps.max() > 3600
    constant = labelled_series("constant", None, seed=0, n=500).values
    assert np.unique(constant).size == 1


def test_judge_counts_windows_alarms_and_false_flags() -> None:
    n = 100
    series = LabelledSeries("x", "spike", 0, np.arange(n, dtype=float), np.zeros(n),
                            (Anomaly("spike", 50, 55),))  # fmt: skip
    flags = np.zeros(n, dtype=bool)
    flags[[5, 30, 31, 52, 53, 70]] = True  # 5 is in the burn-in
    outcome = judge(series, flags)
    assert outcome.points == n - int(BURN_IN * n)
    assert outcome.false_flags == 3
    assert outcome.alarms == 3
    assert outcome.true_alarms == 1
    assert outcome.detected == 1
    assert outcome.delays == (2,)


def test_windowed_gaussian_is_strictly_streaming() -> None:
    s = labelled_series("ar_noise", "spike", seed=1, n=1500)
    whole = windowed_gaussian(s.times_s, s.values)
    head = windowed_gaussian(s.times_s[:700], s.values[:700])
    np.testing.assert_array_equal(whole[:700], head)


def test_ours_beats_every_peer_at_their_own_thresholds_on_a_small_corpus() -> None:
    series = list(corpus(seeds=1, n=2000))
    names = ["calibrated", "windowed_gaussian", "river_gaussian_w", "river_sad", "river_hst"]
    scored = run([PEERS[name] for name in names], series)
    f1 = {name: tallies(scored[name], PEERS[name].threshold)["all"] for name in names}
    ours = f1.pop("calibrated")
    assert ours.clean_rate <= 0.5  # at most one flag per 2000 anomaly-free points
    for name, tally in f1.items():
        assert ours.f1 > tally.f1, name
        assert ours.clean_rate < tally.clean_rate, name


def test_the_harness_prints_its_tables() -> None:
    out = io.StringIO()
    argv = ["--quick", "--peers", "calibrated,windowed_gaussian", "--families", "daily,trend"]
    assert main([*argv, "--compact"], stdout=out) == 0
    text = out.getvalue()
    assert "#### calibrated at its own threshold 0.35" in text
    assert "| daily |" in text
    assert "| all |" in text
    assert "windowed_gaussian" in text.split("FF/1k clean · recall")[-1]
