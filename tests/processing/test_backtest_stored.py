"""Backtest over stored data: a sensor's series from a real PostgreSQL, streamed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from processing.errors import DataError
from processing.offline.backtest import backtest, backtest_stored, iter_backtest_stored, main
from tests.ops_api.seed import add_readings, add_station

pytestmark = [pytest.mark.db]

T0 = datetime(2025, 9, 29, 22, 0, tzinfo=UTC)  # two calendar days: two partitions


def depth_series() -> list[tuple[datetime, float]]:
    rng = np.random.default_rng(5)
    values = 0.2 * rng.standard_normal(600)
    values[400] = 60.0  # one glitch
    return [(T0 + timedelta(minutes=i), float(v)) for i, v in enumerate(values)]


@pytest.fixture
def stored(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        ids = add_station(conn, "fd-test", "flood", {"water_depth": ("cm", 60.0),
                                                     "rainfall": ("mm", 60.0)})  # fmt: skip
        add_readings(conn, ids["water_depth"], depth_series())
        add_readings(conn, ids["rainfall"], [(T0, 5.0)])  # another sensor: never mixed in
    return db_url


def test_stored_series_scores_as_the_whole_series_does(stored: str) -> None:
    points = depth_series()
    expected = backtest([t for t, _ in points], [v for _, v in points], "spike")
    # small chunks: the detector state must carry over from one round trip to the next
    chunks = list(iter_backtest_stored(stored, "fd-test.water_depth", "spike", chunk=64))
    assert len(chunks) == 10
    scores = np.concatenate([c.scores for c in chunks])
    np.testing.assert_allclose(scores, expected.scores)
    whole = backtest_stored(stored, "fd-test.water_depth", "spike")
    assert whole.times_s.tolist() == [t.timestamp() for t, _ in points]
    assert np.flatnonzero(whole.flags).tolist() == [400]


def test_since_until_select_a_window(stored: str) -> None:
    since, until = T0 + timedelta(minutes=100), T0 + timedelta(minutes=160)
    result = backtest_stored(stored, "fd-test.water_depth", "ewma", since=since, until=until)
    assert result.times_s.size == 60
    assert result.times_s[0] == since.timestamp()
    assert result.times_s[-1] == (until - timedelta(minutes=1)).timestamp()


def test_unknown_sensors_and_naive_times_are_refused(stored: str) -> None:
    with pytest.raises(DataError, match="no sensor"):
        backtest_stored(stored, "fd-nowhere.water_depth")
    with pytest.raises(DataError, match="unknown quantity"):
        backtest_stored(stored, "fd-test.depth")
    with pytest.raises(DataError, match="tz-aware"):
        backtest_stored(stored, "fd-test.water_depth", since=datetime(2025, 9, 30))


def test_command_line_streams_a_stored_series(stored: str) -> None:
    out = io.StringIO()
    status = main(
        ["--sensor", "fd-test.water_depth", "--detector", "spike", "--database-url", stored,
         "--since", "2025-09-29T22:00:00", "--until", "2025-09-30T08:00:00+00:00"],
        stdout=out,
    )  # fmt: skip
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 600
    assert rows[0]["timestamp"] == "2025-09-29T22:00:00Z"
    assert [r["timestamp"] for r in rows if r["flag"] == "1"] == ["2025-09-30T04:40:00Z"]
    bad = main(["--sensor", "nope", "--database-url", stored], stdout=io.StringIO())
    assert bad == 2
