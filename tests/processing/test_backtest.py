"""Backtest: CSV reading/writing, strict streaming, the command-line entry."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.detectors import DETECTORS
from processing.errors import DataError, DetectorConfigError
from processing.offline.backtest import backtest, main, read_series_csv, write_results_csv

NAB_STYLE = """timestamp,value
2014-04-01 00:00:00,19.761
2014-04-01 00:05:00,20.500
2014-04-01 00:10:00,
2014-04-01 00:15:00,NaN
2014-04-01 00:20:00,21.0
"""


def test_read_nab_style_csv_with_missing_values() -> None:
    series = read_series_csv(io.StringIO(NAB_STYLE))
    start = datetime(2014, 4, 1, tzinfo=UTC).timestamp()
    assert series.times_s.tolist() == [start + 300.0 * i for i in range(5)]
    assert series.values[0] == pytest.approx(19.761)
    assert np.isnan(series.values[2])
    assert np.isnan(series.values[3])


def test_read_epoch_iso_offsets_extra_columns_and_bom(tmp_path: Path) -> None:
    text = (
        "\ufeffValue, Timestamp ,label\n"
        "1.5,1700000000,a\n"
        "2.5,1700000060000,b\n"
        "3.5,2023-11-15T05:15:20+07:00,c\n"
        "4.5,2023-11-14T22:16:20Z,d\n"
        "NA,1700000240,e\n"
    )
    path = tmp_path / "series.csv"
    path.write_text(text, encoding="utf-8")
    series = read_series_csv(path)
    assert series.times_s.tolist() == [1.7e9, 1.7e9 + 60, 1.7e9 + 120, 1.7e9 + 180, 1.7e9 + 240]
    assert series.values[:4].tolist() == [1.5, 2.5, 3.5, 4.5]
    assert np.isnan(series.values[4])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,value\n1,2\n", "header"),
        ("timestamp,value\nyesterday,2\n", "line 2"),
        ("timestamp,value\n1,2\n2,abc\n", "line 3"),
        ("timestamp,value\n,2\n", "missing timestamp"),
        ("timestamp,value\ninf,2\n", "not finite"),
    ],
)
def test_read_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_series_csv(io.StringIO(text))


def series(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 1.7e9 + 300.0 * np.arange(n)
    v = 20 + 5 * np.sin(2 * np.pi * t / 86400) + rng.normal(0, 0.5, n)
    return t, v


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_backtest_is_strictly_streaming(name: str) -> None:
    t, v = series(300)
    full = backtest(t, v, name)
    altered = v.copy()
    altered[200:] = 1e6  # the future changes wildly
    prefix = backtest(t, altered, name)
    np.testing.assert_array_equal(full.scores[:200], prefix.scores[:200])
    np.testing.assert_array_equal(full.flags[:200], prefix.flags[:200])
    assert full.threshold == DETECTORS[name].default_threshold
    assert np.array_equal(full.flags, full.scores >= full.threshold)


@settings(max_examples=20, deadline=None)
@given(cut=st.integers(min_value=1, max_value=120), seed=st.integers(0, 1000))
def test_prefix_scores_do_not_depend_on_later_points(cut: int, seed: int) -> None:
    t, v = series(150, seed)
    whole = backtest(t, v, "seasonal_mad")
    head = backtest(t[:cut], v[:cut], "seasonal_mad")
    np.testing.assert_array_equal(whole.scores[:cut], head.scores)


def test_backtest_finds_an_injected_anomaly_in_a_series_from_no_known_station() -> None:
    t, v = series(2000)
    v[1500:1510] += 15.0
    result = backtest(t, v)  # default detector: calibrated, its own default threshold
    assert result.detector == "calibrated"
    assert result.flags[1500]
    assert result.flags[:1500].sum() <= 1
    assert result.flags[1501:1510].sum() == 0  # one event, one alarm


def test_backtest_missing_values_thresholds_and_parameters() -> None:
    t, v = series(100)
    v[[10, 50]] = np.nan
    result = backtest(t, v, "ewma", threshold=0.9, protect=False, alpha=0.2)
    assert np.isnan(result.scores[[10, 50]]).all()
    assert not result.flags[[10, 50]].any()
    assert result.threshold == 0.9
    assert result.params["alpha"] == 0.2
    with pytest.raises(DetectorConfigError):
        backtest(t, v, "ewma", nonsense=1)
    with pytest.raises(DataError):
        backtest(t[:5], v, "ewma")


def test_backtest_accepts_aware_datetimes_only() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=i) for i in range(30)]
    result = backtest(times, np.ones(30), "ewma")
    assert result.times_s[0] == start.timestamp()
    with pytest.raises(DataError, match="naive"):
        backtest([datetime(2026, 1, 1)], [1.0], "ewma")


def test_write_results_csv_round_trip(tmp_path: Path) -> None:
    t, v = series(50)
    v[3] = np.nan
    result = backtest(t, v, "spike")
    out = tmp_path / "out.csv"
    write_results_csv(out, result)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 50
    assert rows[0]["timestamp"].endswith("Z")
    assert rows[3]["value"] == ""
    assert rows[3]["score"] == ""
    assert rows[3]["flag"] == "0"
    assert read_series_csv(out).values[0] == pytest.approx(v[0])


def test_main_runs_on_a_csv(tmp_path: Path) -> None:
    t, v = series(400)
    v[350] = 80.0
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8") as handle:
        handle.write("timestamp,value\n")
        for when, value in zip(t, v, strict=True):
            handle.write(f"{datetime.fromtimestamp(when, UTC).isoformat()},{value}\n")
    target = tmp_path / "out.csv"
    argv = ["--csv", str(source), "--detector", "spike", "--out", str(target)]
    assert main([*argv, "--param", "refractory_s=600", "--param", "window=5"]) == 0
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert rows[350]["flag"] == "1"
    assert sum(int(r["flag"]) for r in rows) <= 3
    buffer = io.StringIO()
    assert main(["--csv", str(source), "--detector", "ewma"], stdout=buffer) == 0
    assert buffer.getvalue().startswith("timestamp,value,score,flag\n")


def test_main_errors_and_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = io.StringIO()
    assert main(["--list"], stdout=listing) == 0
    assert "seasonal_mad\t0.5" in listing.getvalue()
    assert main([]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n", encoding="utf-8")
    assert main(["--csv", str(bad)]) == 2
    assert main(["--csv", str(tmp_path / "missing.csv")]) == 2
    good = tmp_path / "good.csv"
    good.write_text("timestamp,value\n1,2\n", encoding="utf-8")
    assert main(["--csv", str(good), "--param", "alpha=2"]) == 2
    with pytest.raises(SystemExit):
        main(["--csv", str(good), "--param", "novalue"])
    assert "backtest:" in capsys.readouterr().err
