"""The settings both stream services share: one accepted time window, one staleness rule."""

import pytest

from ingest.settings import IngestSettings
from ops_api.settings import ApiSettings
from processing.settings import ProcessingSettings


def test_the_accepted_window_has_one_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # The window is ingest's (processing decides on what ingest stored); the old
    # per-service spellings cannot set it any more.
    monkeypatch.setenv("INGEST_MAX_AGE_DAYS", "3")
    monkeypatch.setenv("INGEST_MAX_FUTURE_S", "1")
    assert (IngestSettings().max_age_days, IngestSettings().max_future_s) == (400.0, 300.0)
    monkeypatch.setenv("MAX_AGE_DAYS", "30")
    monkeypatch.setenv("MAX_FUTURE_S", "60")
    assert (IngestSettings().max_age_days, IngestSettings().max_future_s) == (30.0, 60.0)
    assert not hasattr(ProcessingSettings(), "max_age_days")


def test_shared_variables_with_per_service_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/hanoi")
    monkeypatch.setenv("PROC_DATABASE_URL", "postgresql://proc@db/hanoi")
    monkeypatch.setenv("STORAGE_STRATEGY", "plain")
    assert IngestSettings().database_url == "postgresql://shared@db/hanoi"
    assert ProcessingSettings().database_url == "postgresql://proc@db/hanoi"
    assert IngestSettings().forced_storage == ProcessingSettings().forced_storage == "plain"
    assert IngestSettings(max_age_days=7).max_age_days == 7.0  # arguments still win


def test_one_staleness_rule_for_ingest_and_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_STALE_FACTOR", "9")
    monkeypatch.setenv("STALE_FACTOR", "4")
    monkeypatch.setenv("STALE_MIN_S", "120")
    api, ingest = ApiSettings(), IngestSettings()
    assert (api.stale_factor, api.stale_min_s) == (4.0, 120.0)
    assert ingest.stale_rule.threshold_s(10.0) == 120.0
    assert ingest.stale_rule.threshold_s(60.0) == 240.0
