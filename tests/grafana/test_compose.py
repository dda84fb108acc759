"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine.

Cross-references that the compose schema does not check (depends_on targets, declared
volumes, files that bind mounts need) are checked here; when Debian's ``docker-compose``
(1.29) is installed, ``config -q`` validates the file as the tool itself reads it.
"""

import os
import re
import shutil
import subprocess
import tomllib
from typing import Final

import pytest

from tests.grafana.artefacts import COMPOSE, REPO, Json, load_yaml

SECRETS: Final = (
    "POSTGRES_PASSWORD",
    "GRAFANA_DB_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "API_TOKENS",
    "API_SECRET_KEY",
)
OURS: Final = {
    "migrate": ["hanoi-ioc", "db", "upgrade"],
    "ingest-0": ["python", "-m", "ingest"],
    "ingest-1": ["python", "-m", "ingest"],
    "processing": ["python", "-m", "processing"],
    "api": ["python", "-m", "ops_api"],
    "webhooks": ["python", "-m", "webhooks"],
    "simulator": ["python", "-m", "simulators", "--scenario", "demo"],
}
INFRA: Final = ("timescaledb", "mosquitto", "grafana")
ENV_EXAMPLE: Final = REPO / ".env.example"
VAR_REF: Final = re.compile(r"(?<!\$)\$\{(\w+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> Json:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: Json) -> dict[str, Json]:
    out: dict[str, Json] = compose["services"]
    return out


def _named_volume(spec: str) -> str | None:
    source = spec.split(":")[0]
    return None if source.startswith(("./", "/", "~", "${")) else source


def test_top_level(compose: Json) -> None:
    assert "name" not in compose, "docker-compose 1.29 rejects a top-level name"
    assert "version" not in compose
    assert {k for k in compose if not k.startswith("x-")} == {"services", "volumes"}
    assert set(compose["services"]) == set(INFRA) | set(OURS)


def test_images_are_pinned(services: dict[str, Json]) -> None:
    assert re.fullmatch(r"timescale/timescaledb:2\.29\.\d+-pg17", services["timescaledb"]["image"])
    mosquitto = re.fullmatch(r"eclipse-mosquitto:2\.0\.(\d+)", services["mosquitto"]["image"])
    assert mosquitto
    assert int(mosquitto[1]) >= 20
    assert re.fullmatch(r"grafana/grafana:12\.\d+\.\d+", services["grafana"]["image"])


def test_our_services(services: dict[str, Json]) -> None:
    for name, command in OURS.items():
        svc = services[name]
        assert svc["command"] == command, name
        assert svc["build"]["dockerfile"] == "Dockerfile", name
        assert svc["restart"] == ("no" if name == "migrate" else "unless-stopped"), name
        env = svc["environment"]
        assert "@timescaledb:5432/" in env["DATABASE_URL"], name
        assert env["MQTT_URL"] == "mqtt://mosquitto:1883", name
    assert services["simulator"]["profiles"] == ["demo"]
    assert all("profiles" not in s for n, s in services.items() if n != "simulator")
    instances = [services[n]["environment"]["INGEST_INSTANCE"] for n in ("ingest-0", "ingest-1")]
    assert len(set(instances)) == 2, "each ingestor needs its own stable MQTT session id"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", i) for i in instances)
    assert any(p.endswith(":8000") for p in services["api"]["ports"])
    assert services["api"]["environment"]["API_HOST"] == "0.0.0.0"


def test_infrastructure(services: dict[str, Json]) -> None:
    for name in (*INFRA, "api"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert {"interval", "timeout", "retries"} <= set(check), name
        assert services[name]["restart"] == "unless-stopped", name
    assert "/docker-entrypoint-initdb.d/" in " ".join(services["timescaledb"]["volumes"])
    assert "-h 127.0.0.1" in services["timescaledb"]["healthcheck"]["test"][1]
    volumes = services["mosquitto"]["volumes"]
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in volumes


def test_depends_on(services: dict[str, Json]) -> None:
    for name, svc in services.items():
        for target, spec in svc.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", condition
                assert services[target]["restart"] == "no", f"{target} is not a one-shot job"
    for name in OURS:
        if name != "migrate":
            assert "migrate" in services[name]["depends_on"], name
    assert services["grafana"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_volumes_and_mounted_files(compose: Json, services: dict[str, Json]) -> None:
    used = set()
    for name, svc in services.items():
        for spec in svc.get("volumes", []):
            volume = _named_volume(str(spec))
            if volume is None:
                source = str(spec).split(":")[0]
                if source.startswith("${"):  # a host directory outside the repository
                    assert re.match(r"\$\{\w+:\?", str(spec)), f"{name}: {spec} not required"
                    continue
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                used.add(volume)
    assert used == set(compose["volumes"]), "named volumes must be declared and used"


def test_mosquitto_persistence_is_on_the_volume(services: dict[str, Json]) -> None:
    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and line[0] != "#"
    )
    assert settings["persistence"] == "true"
    data = [v.split(":")[1] for v in services["mosquitto"]["volumes"] if v.startswith("mqdata:")]
    assert data == [settings["persistence_location"].rstrip("/")]
    assert settings["listener"].split()[0] == "1883"


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _compose_without_comments() -> str:
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_env_example_covers_every_variable() -> None:
    used = set(VAR_REF.findall(_compose_without_comments()))
    example = _env_example()
    assert used == set(example), used ^ set(example)
    for secret in SECRETS:
        assert example[secret] == "", f"{secret} must be empty in .env.example"


def test_secrets_are_required() -> None:
    text = _compose_without_comments()
    for secret in SECRETS:
        refs = re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)
        assert refs, secret
        assert all(r.startswith(":?") for r in refs), f"{secret} must be ${{{secret}:?...}}"


def test_dockerfile_and_context() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "pip install ." in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*", "allow-list context"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert f"!{pattern.rstrip('*')}/" in ignore, f"{pattern} missing from the build context"
    assert "!pyproject.toml" in ignore
    assert f"!{project['project']['readme']}" in ignore


DUMMY_ENV: Final = {
    "HANOI_CREDENTIALS_DIR": "/srv/hanoi/credentials",
    "MQTT_CERTS_DIR": "/srv/hanoi/certs",
    "POSTGRES_PASSWORD": "dummy-db",
    "GRAFANA_DB_PASSWORD": "dummy-reader",
    "GRAFANA_ADMIN_PASSWORD": "dummy-admin",
    "API_TOKENS": '{"0123456789abcdef0123": {"role": "admin", "name": "ci"}}',
    "API_SECRET_KEY": "dummy-server-key-0123456789abcdef0123",
}


def _docker_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose gives 1.29.2)")
    full = {k: v for k, v in os.environ.items() if k not in DUMMY_ENV} | env
    full["DOCKER_HOST"] = "tcp://127.0.0.1:9"  # config needs no engine; never reach one
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "--project-directory", str(REPO), *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def test_docker_compose_config_validates() -> None:
    done = _docker_compose("--env-file", str(ENV_EXAMPLE), "config", "-q", env=DUMMY_ENV)
    assert done.returncode == 0, done.stderr
    missing = _docker_compose(
        "--env-file",
        str(ENV_EXAMPLE),
        "config",
        "-q",
        env={k: v for k, v in DUMMY_ENV.items() if k != "POSTGRES_PASSWORD"},
    )
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD" in missing.stderr


def test_the_broker_authenticates_and_each_service_has_its_own_password(
    services: dict[str, Json],
) -> None:
    from contract import MAX_PAYLOAD_BYTES

    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    lines = [line.strip() for line in conf.splitlines() if line.strip() and line[0] != "#"]
    assert "allow_anonymous false" in lines
    assert "allow_anonymous true" not in lines
    assert "password_file /mosquitto/credentials/mosquitto.passwd" in lines
    assert "acl_file /mosquitto/credentials/mosquitto.acl" in lines
    assert f"message_size_limit {MAX_PAYLOAD_BYTES}" in lines
    listeners = [i for i, line in enumerate(lines) if line.startswith("listener ")]
    assert [lines[i] for i in listeners] == ["listener 8883", "listener 1883"]
    for i in listeners:  # a listener option: it must follow every listener line
        assert lines[i + 1] == "use_username_as_clientid true", lines[i]
    tls = lines[listeners[0] : listeners[1]]
    assert "certfile /mosquitto/certs/server.crt" in tls
    assert "keyfile /mosquitto/certs/server.key" in tls
    broker = services["mosquitto"]
    mounts = " ".join(broker["volumes"])
    assert "}/broker:/mosquitto/credentials:ro" in mounts
    assert ":/mosquitto/certs:ro" in mounts
    assert any(p.endswith(":8883") for p in broker["ports"])
    for name in ("ingest-0", "ingest-1"):
        env = services[name]["environment"]
        assert env["INGEST_MQTT_PASSWORD_FILE"] == "/run/hanoi/mqtt/password"
        (mount,) = services[name]["volumes"]
        assert mount.endswith(f"/secrets/hanoi-{name}:/run/hanoi/mqtt:ro"), mount
    # processing reads the database's reading feed: no broker user, no password mounted
    assert "volumes" not in services["processing"]
    assert not any(k.startswith("PROC_MQTT") for k in services["processing"]["environment"])
