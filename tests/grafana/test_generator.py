"""The committed dashboard JSON is exactly what the generator produces."""

import subprocess
import sys
from pathlib import Path

from tests.grafana.artefacts import DASHBOARD_FILES, DASHBOARDS, GRAFANA


def _generate(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GRAFANA / "build_dashboards.py"), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_committed_dashboards_are_generated(tmp_path: Path) -> None:
    done = _generate(tmp_path)
    assert done.returncode == 0, done.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == sorted(DASHBOARD_FILES)
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == generated, "stale or extra files"
    stale = [
        name
        for name in generated
        if (tmp_path / name).read_bytes() != (DASHBOARDS / name).read_bytes()
    ]
    assert not stale, f"regenerate with `python grafana/build_dashboards.py`: {stale}"


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _generate(first).returncode == _generate(second).returncode == 0
    for name in DASHBOARD_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    assert _generate(tmp_path).returncode == 0
    assert _generate(tmp_path, "--check").returncode == 0
    (tmp_path / "alerts.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "old.json").write_text("{}\n", encoding="utf-8")
    drift = _generate(tmp_path, "--check")
    assert drift.returncode == 1
    assert "differs" in drift.stderr
    assert "old.json" in drift.stderr
    assert _generate(tmp_path).returncode == 0
    assert not (tmp_path / "old.json").exists(), "writing removes dashboards no longer generated"
