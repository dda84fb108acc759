"""The command line: listing, registry export, dry runs, errors, and a real backfill."""

from pathlib import Path

import pytest

from contract import decode_registry
from simulators.__main__ import main
from simulators.fleet import hanoi_fleet
from simulators.truth import read_truth_file
from tests.fixtures.mqtt import Broker


def test_list_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-scenarios"]) == 0
    assert "storm-2025-09-30" in capsys.readouterr().out


def test_export_registry_writes_the_fleet(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    assert main(["--export-registry", str(path)]) == 0
    stations = decode_registry(path.read_bytes())
    assert len(stations) == 76
    assert main(["--export-registry", str(path), "--load", "--load-stations", "25"]) == 0
    assert len(decode_registry(path.read_bytes())) == 25


def test_dry_run_writes_the_truth_file_without_a_broker(tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    code = main(
        [
            "--scenario",
            "demo",
            "--dry-run",
            "--duration",
            "2h",
            "--seed",
            "4",
            "--stations",
            "fd-*,rg-*",
            "--truth-file",
            str(truth),
            "--fault",
            "spike=0.01",
        ]
    )
    assert code == 0
    kinds = {e.kind for e in read_truth_file(truth)}
    assert {"flood", "heavy_rain", "spike"} <= kinds


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenario", "nope", "--dry-run"],
        ["--scenario", "demo", "--speed", "max"],  # backfill needs an end
        ["--scenario", "demo", "--dry-run", "--stations", "zz-*"],
        ["--scenario", "demo", "--dry-run", "--fault", "gremlins=1"],
        ["--scenario", "demo", "--dry-run", "--speed", "-3"],
    ],
)
def test_bad_arguments_fail_with_a_message(argv: list[str]) -> None:
    assert main(argv) == 2


@pytest.mark.mqtt
def test_backfill_against_a_broker(mqtt_broker: Broker, topic_root: str, tmp_path: Path) -> None:
    truth = tmp_path / "truth.jsonl"
    code = main(
        [
            "--scenario",
            "demo",
            "--speed",
            "max",
            "--duration",
            "45m",
            "--seed",
            "2",
            "--stations",
            "fd-thai-ha,rg-o-cho-dua,aq-hoan-kiem",
            "--mqtt-url",
            mqtt_broker.url,
            "--credentials-dir",
            str(mqtt_broker.devices(hanoi_fleet())),
            "--topic-root",
            topic_root,
            "--truth-file",
            str(truth),
        ]
    )
    assert code == 0
    assert any(e.kind == "flood" for e in read_truth_file(truth))


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulators.settings import SimulatorSettings

    monkeypatch.setenv("MQTT_URL", "mqtt://broker.example:1884")
    monkeypatch.setenv("SIM_SPEED", "max")
    monkeypatch.setenv("SIM_FAULT_SPIKE_RATE", "0.01")
    settings = SimulatorSettings()
    assert settings.broker.host == "broker.example"
    assert settings.broker.port == 1884
    assert settings.is_backfill
    assert settings.fault_spike_rate == 0.01
    monkeypatch.setenv("SIM_MQTT_URL", "mqtts://u:p@secure.example")
    assert SimulatorSettings().broker.tls
