"""``hanoi-ioc up`` from nothing: readings stored and an alert visible within 60 seconds."""

import subprocess
import sys
from pathlib import Path

import pytest

from hanoi_ioc.embedded import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.db, pytest.mark.mqtt]


def test_up_shows_readings_and_an_alert_within_a_minute(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hanoi_ioc", "up", "--home", str(tmp_path / "home"),
         "--api-port", str(free_port()), "--ready-check", "60"],
        capture_output=True, text=True, timeout=180, check=False,
        env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)},
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr[-3000:]
    assert "Operations console / Bảng điều hành" in out
    assert "readings in the database:" in out
    assert "alert over WebSocket after" in out
    assert "alerts listed by REST: " in out
    assert "Stopped / Đã dừng." in out
    for log in ("ingest", "processing", "webhooks", "api", "simulator"):
        text = (tmp_path / "home" / "logs" / f"{log}.log").read_text()
        assert "Traceback" not in text, f"{log}.log:\n{text[-3000:]}"
        assert "not authori" not in text.lower(), f"{log}.log:\n{text[-3000:]}"
    # the broker authenticated everyone: no anonymous client, every password file private
    credentials = tmp_path / "home" / "credentials"
    assert "Broker users (passwords, 0600)" in out
    for path in (credentials / "broker" / "mosquitto.passwd",
                 credentials / "secrets" / "hanoi-ingest-0" / "password",
                 credentials / "secrets" / "fd-thai-ha" / "password"):  # fmt: skip
        assert path.stat().st_mode & 0o077 == 0, path
    conf = (tmp_path / "home" / "mqtt" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf.splitlines()
