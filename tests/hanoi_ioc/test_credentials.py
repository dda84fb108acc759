"""The credential store: files the broker reads, the grants of every role, rotation, the CLI."""

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from contract import Domain, Quantity, Sensor, Station, StationId
from hanoi_ioc.cli import main
from hanoi_ioc.credentials import (
    CredentialsError,
    CredentialStore,
    hash_password,
    verify_password,
)

FLOOD = Station(
    StationId("fd-cred-1"),
    Domain.FLOOD,
    "Một",
    "Đống Đa",
    21.0,
    105.8,
    "flood_depth",
    (Sensor(Quantity.WATER_DEPTH, 60.0),),
    {"gateway": "gw-cred"},
)
RAIN = Station(
    StationId("rg-cred-1"),
    Domain.FLOOD,
    "Hai",
    "Đống Đa",
    21.0,
    105.8,
    "rain_gauge",
    (Sensor(Quantity.RAINFALL, 60.0),),
    {"gateway": "gw-cred"},
)
AIR = Station(StationId("aq-cred-1"), Domain.AIR, "Ba", "Ba Đình", 21.0, 105.8, "urban",
              (Sensor(Quantity.PM25, 60.0),))  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_hashes_are_mosquittos_and_never_the_password() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("$7$101$")
    assert "s3cret" not in hashed
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret!", hashed)
    assert hash_password("s3cret") != hashed  # salted
    assert not verify_password("x", "garbage")


def test_files_are_private_and_hold_no_anonymous_access(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cred")
    store.issue_service("ingest")
    result = store.sync_registry([FLOOD, RAIN, AIR])
    assert _mode(store.path) == 0o700
    assert _mode(store.secrets_dir) == 0o700
    for path in (store.password_file, store.acl_file, store.path / "identities.json",
                 store.secret_file("hanoi-ingest-0")):  # fmt: skip
        assert _mode(path) == 0o600, path
    acl = store.acl_file.read_text().splitlines()
    first_user = next(i for i, line in enumerate(acl) if line.startswith("user "))
    assert not [line for line in acl[:first_user] if line.startswith(("topic", "pattern"))]
    # devices' passwords are shown once, not kept, unless asked
    assert set(result.issued) == {"fd-cred-1", "rg-cred-1", "aq-cred-1", "gw-cred"}
    assert not store.secret_file("fd-cred-1").exists()
    for name, password in result.passwords.items():
        assert password not in store.password_file.read_text()
        line = next(x for x in store.password_file.read_text().splitlines() if x.startswith(name))
        assert verify_password(password, line.split(":", 1)[1])


def _grants(store: CredentialStore, name: str) -> set[str]:
    return {f"{g.access} {g.topic}" for g in store.identities[name].grants}


def test_every_role_gets_only_what_it_needs(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cred")
    store.issue_service("ingest", "2")
    store.sync_registry([FLOOD, RAIN, AIR])
    assert _grants(store, "hanoi-ingest-2") == {
        "read hanoi/v1/+/+/telemetry", "read hanoi/v1/+/+/status"}  # fmt: skip
    with pytest.raises(CredentialsError):  # processing reads the database, not the broker
        store.issue_service("processing")
    assert _grants(store, "aq-cred-1") == {
        "write hanoi/v1/air/aq-cred-1/telemetry",
        "write hanoi/v1/air/aq-cred-1/status",
    }
    assert _grants(store, "gw-cred") == {
        "write hanoi/v1/flood/gw-cred/telemetry",
        "write hanoi/v1/flood/fd-cred-1/telemetry", "write hanoi/v1/flood/fd-cred-1/status",
        "write hanoi/v1/flood/rg-cred-1/telemetry", "write hanoi/v1/flood/rg-cred-1/status",
    }  # fmt: skip
    with pytest.raises(CredentialsError):
        store.issue_service("nonsense")


def test_the_registry_decides_who_exists(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cred")
    store.issue_service("ingest")
    store.sync_registry([FLOOD, RAIN, AIR], keep_secrets=True)
    moved = Station(AIR.station_id, Domain.AIR, "Ba", "Ba Đình", 21.0, 105.8, "urban",
                    AIR.sensors, {"gateway": "gw-cred-2"})  # fmt: skip
    result = store.sync_registry([FLOOD, moved], keep_secrets=True)
    assert result.issued == ("gw-cred-2",)
    assert "gw-cred" in result.updated  # it lost rg-cred-1
    assert result.revoked == ("rg-cred-1",)
    assert "rg-cred-1" not in store.identities
    assert not store.secret_file("rg-cred-1").exists()
    assert "hanoi-ingest-0" in store.identities  # services are not the registry's
    with pytest.raises(CredentialsError, match="both a station and the gateway"):
        store.sync_registry([FLOOD, Station(StationId("gw-cred"), Domain.FLOOD, "x", "x", 21.0,
                                            105.8, "gateway")])  # fmt: skip


def test_names_cannot_cross_roles(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cred")
    store.issue_service("ingest")
    with pytest.raises(CredentialsError):
        store.issue("hanoi-ingest-0", "device", ())
    with pytest.raises(CredentialsError):
        store.issue("hanoi-x", "device", ())  # a device never starts with hanoi-
    with pytest.raises(CredentialsError):
        store.issue("aq-1", "observer")  # an operational user always does
    with pytest.raises(CredentialsError):
        store.secret_file("../../etc/passwd")


def test_rotation_changes_the_hash_and_keeps_the_grants(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cred")
    store.issue_service("ingest")
    before = store.identities["hanoi-ingest-0"]
    old = store.secret("hanoi-ingest-0")
    new = store.rotate("hanoi-ingest-0")
    after = store.identities["hanoi-ingest-0"]
    assert new != old
    assert store.secret("hanoi-ingest-0") == new
    assert after.grants == before.grants
    assert after.password_hash != before.password_hash
    assert verify_password(new, after.password_hash)


def test_two_processes_share_one_store(tmp_path: Path) -> None:
    first = CredentialStore(tmp_path / "cred")
    second = CredentialStore(tmp_path / "cred")
    first.issue_service("ingest")
    second.issue_service("ingest", "1")  # reads the store afresh: keeps the first's user
    first.issue_operational("observer")
    assert set(CredentialStore(tmp_path / "cred").identities) == {
        "hanoi-ingest-0", "hanoi-ingest-1", "hanoi-observer"}  # fmt: skip


@pytest.mark.mqtt
def test_cli_issues_rotates_and_revokes_on_a_running_broker(tmp_path: Path) -> None:
    from hanoi_ioc.embedded import EmbeddedBroker, wait_for_login

    registry = tmp_path / "registry.json"
    from contract import encode_registry

    registry.write_bytes(encode_registry([FLOOD, RAIN, AIR]))
    store_dir = tmp_path / "cred"
    assert main(["credentials", "init", "--dir", str(store_dir), "--no-reload"]) == 0
    store = CredentialStore(store_dir)
    with EmbeddedBroker(tmp_path / "mqtt", credentials=store) as broker:
        code = main(["credentials", "sync", "--dir", str(store_dir), "--registry-file",
                     str(registry), "--keep-secrets"])  # fmt: skip
        assert code == 0
        wait_for_login(broker.port, "aq-cred-1", store.secret("aq-cred-1"))  # reloaded
        old = store.secret("aq-cred-1")
        assert main(["credentials", "rotate", "aq-cred-1", "--dir", str(store_dir)]) == 0
        wait_for_login(broker.port, "aq-cred-1", store.secret("aq-cred-1"))
        with pytest.raises(RuntimeError):
            wait_for_login(broker.port, "aq-cred-1", old, timeout_s=1.0)
        assert main(["credentials", "revoke", "aq-cred-1", "--dir", str(store_dir)]) == 0
        assert main(["credentials", "revoke", "aq-cred-1", "--dir", str(store_dir)]) == 1
        assert main(["credentials", "list", "--dir", str(store_dir)]) == 0


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hanoi_ioc", "credentials", "rotate", "nobody", "--dir",
         str(tmp_path / "cred"), "--no-reload"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "nobody" in result.stderr
