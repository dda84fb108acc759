"""``hanoi-ioc up`` as a good citizen: its port checked, Ctrl-C handled in order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from hanoi_ioc.embedded import free_port
from hanoi_ioc.up import foreign_answer, port_is_free

_ENV = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


def _up(home: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "hanoi_ioc", "up", "--home", str(home), "--api-port", str(port)]


def test_up_refuses_a_port_another_program_listens_on(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert not port_is_free(port)
        result = subprocess.run(
            _up(tmp_path / "home", port), capture_output=True, text=True, timeout=60,
            check=False, env={**_ENV, "HOME": str(tmp_path)},
        )  # fmt: skip
    out = result.stdout
    assert result.returncode == 2, out + result.stderr[-2000:]
    assert f"Port {port} belongs to another program" in out
    assert f"Cổng {port} đã có chương trình khác dùng" in out
    assert "--api-port" in out
    assert "API_PORT=" in out
    assert "is running" not in out
    assert "đang chạy" not in out
    assert not (tmp_path / "home" / "pg").exists()  # refused before starting anything


class _Other(BaseHTTPRequestHandler):
    """Another program's web server, with a /health of its own."""

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Other)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_from_another_program_is_not_ours(other_server: int) -> None:
    # What `up` checks once the API's port opens: it must be the API it started.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        why = foreign_answer(f"http://127.0.0.1:{other_server}", "up-abc", sleeper, timeout_s=1.0)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert why is not None
    assert "not Hanoi IOC" in why


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.db
@pytest.mark.mqtt
def test_ctrl_c_in_a_terminal_stops_services_before_the_servers(tmp_path: Path) -> None:
    """SIGINT to the whole foreground process group, as a terminal sends it on Ctrl-C."""
    home = tmp_path / "home"
    port = free_port()
    env = {**_ENV, "HOME": str(tmp_path), "HANOI_PG_PORT": str(free_port()),
           "HANOI_MQTT_PORT": str(free_port())}  # fmt: skip
    # its own process group, like a shell's foreground job
    with (tmp_path / "up.out").open("w") as log:
        proc = subprocess.Popen(_up(home, port), stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in (tmp_path / "up.out").read_text():
            assert proc.poll() is None, (tmp_path / "up.out").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.out").read_text()
            time.sleep(0.2)
        simulator_log = home / "logs" / "simulator.log"
        while "scenario demo" not in simulator_log.read_text():  # it handles signals from here
            assert time.monotonic() < deadline, simulator_log.read_text()
            time.sleep(0.2)
        time.sleep(2.0)  # publishing
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = (tmp_path / "up.out").read_text()
    # the tokens an operator needs and how to change ports were printed
    assert "dev-operator" in out
    assert "#token=dev-operator" in out
    assert "HANOI_PG_PORT" in out
    assert "--api-port" in out
    stops = [line.strip() for line in out.splitlines() if "stopped" in line.lower()]
    names = [line.split(" ")[1] if line.startswith("stopped ") else line for line in stops]
    services = ["simulator", "processing", "webhooks", "ingest", "api"]
    assert names == [*services, "the", "PostgreSQL", "Stopped / Đã dừng."], out
    # every service stopped on our SIGTERM (not killed, not interrupted by the terminal)
    for name in ("simulator", "processing", "webhooks", "ingest"):
        assert f"stopped {name} (exit code 0)" in out, out
    # uvicorn re-raises the SIGTERM it handled, once it has shut down cleanly
    assert "stopped api (on SIGTERM)" in out, out
    assert "Application shutdown complete" in (home / "logs" / "api.log").read_text()
    # the broker outlived the services: it saw the simulator's devices, then ingest, leave
    # cleanly (a broker that died first logs neither)
    broker_log = (home / "mqtt" / "mosquitto.log").read_text().splitlines()
    left = [i for i, line in enumerate(broker_log) if line.endswith(" disconnected.")]
    ingest_left = [i for i in left if "Client hanoi-ingest-0 " in broker_log[i]]
    devices_left = [i for i in left if "Client hanoi-" not in broker_log[i]]
    assert ingest_left, "\n".join(broker_log[-30:])
    assert devices_left, "\n".join(broker_log[-30:])
    assert max(devices_left) < ingest_left[-1], "\n".join(broker_log[-30:])
    for name in ("ingest", "processing", "webhooks", "api", "simulator"):
        text = (home / "logs" / f"{name}.log").read_text()
        assert "Traceback" not in text, f"{name}.log:\n{text[-3000:]}"
        assert "connection refused" not in text.lower(), f"{name}.log:\n{text[-3000:]}"
