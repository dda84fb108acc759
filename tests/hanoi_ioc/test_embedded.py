"""Embedded servers and the CLI's database commands."""

from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from db import StrategyName
from hanoi_ioc.cli import main
from hanoi_ioc.embedded import EmbeddedBroker, EmbeddedPostgres, _mosquitto_conf, repo_file


def test_broker_config_is_the_repository_one_with_local_paths(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, port=1999)
    conf = _mosquitto_conf(repo_file("deploy", "mosquitto", "mosquitto.conf"), broker, True)
    lines = conf.splitlines()
    assert "persistence true" in lines
    assert "max_queued_messages 1000000" in lines
    assert "listener 1999 127.0.0.1" in lines
    assert f"persistence_location {tmp_path}/" in lines
    assert "listener 1883" not in lines
    assert "listener 8883" not in lines
    assert not [line for line in lines if line.startswith(("certfile", "keyfile"))]
    assert "user root" in lines
    # the trust boundary is the production file's, the paths are the store's
    assert "allow_anonymous false" in lines
    assert "use_username_as_clientid true" in lines
    assert "message_size_limit 262144" in lines
    assert f"password_file {broker.credentials.password_file}" in lines
    assert f"acl_file {broker.credentials.acl_file}" in lines


@pytest.mark.mqtt
def test_broker_keeps_sessions_across_a_restart(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "mq")
    for user in ("hanoi-tester-keeper", "hanoi-tester-pub"):
        broker.credentials.issue(user, "tester")
    received: list[bytes] = []

    def client(user: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311,
                        clean_session=False)  # fmt: skip
        c.username_pw_set(user, broker.credentials.secret(user))
        c.on_message = lambda _c, _u, m: received.append(bytes(m.payload))
        return c

    with broker:
        sub = client("hanoi-tester-keeper")
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("k/#", qos=1)
        sub.loop(timeout=1)
        sub.disconnect()
        pub = client("hanoi-tester-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish("k/1", b"queued", qos=1).wait_for_publish(5)
        pub.disconnect()
        pub.loop_stop()
    with EmbeddedBroker(tmp_path / "mq", port=broker.port) as again:  # persistence reloaded
        sub = client("hanoi-tester-keeper")
        sub.connect("127.0.0.1", again.port)
        for _ in range(50):
            sub.loop(timeout=0.1)
            if received:
                break
        sub.disconnect()
    assert received == [b"queued"]


@pytest.mark.db
def test_postgres_cluster_is_reused(services_dir: Path) -> None:
    # (not under pytest's tmp_path: another pytest session resets its base directory to 0700,
    # which PostgreSQL's service user could then no longer traverse)
    home = services_dir / "pg-reused"
    with EmbeddedPostgres(home, durable=False) as first:
        second = EmbeddedPostgres(home, durable=False).start()  # finds it running
        assert second.port == first.port
        second.stop()  # did not start it: leaves it running
        with psycopg.connect(first.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.db
def test_cli_upgrade_and_registry(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--database-url", db_url]) == 0
    assert "up to date" in capsys.readouterr().out
    registry = tmp_path / "fleet.json"
    registry.write_text(
        '[{"station_id":"rg-test","domain":"flood","name":"Ô Chợ Dừa","district":"Đống Đa",'
        '"lat":21.02,"lon":105.83,"kind":"rain_gauge","sensors":[{"quantity":"rainfall",'
        '"interval_s":60.0}],"attributes":{}}]'
    )
    assert main(["registry", "load", str(registry), "--database-url", db_url]) == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT unit FROM sensors").fetchone() == ("mm",)
    assert main(["quarantine", "list", "--database-url", db_url]) == 0


@pytest.mark.db
def test_the_cli_honours_storage_strategy_and_says_why_in_one_line(
    db_url: str, storage_strategy: StrategyName
) -> None:
    import os
    import subprocess
    import sys

    other = "plain" if storage_strategy == "timescale" else "timescale"
    result = subprocess.run(
        [sys.executable, "-m", "hanoi_ioc", "db", "upgrade", "--database-url", db_url],
        capture_output=True, text=True, check=False,
        env=os.environ | {"STORAGE_STRATEGY": other},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if "lỗi" in x]
    # the strategy the database was built with wins, and the one line says so
    assert f"built with the {storage_strategy!r} storage strategy, not {other!r}" in line
    ok = subprocess.run(
        [sys.executable, "-m", "hanoi_ioc", "db", "upgrade", "--database-url", db_url],
        capture_output=True, text=True, check=False,
        env=os.environ | {"STORAGE_STRATEGY": storage_strategy},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
