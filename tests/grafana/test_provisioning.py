"""Provisioning YAML against strict allow-lists, and its wiring to docker-compose.

Grafana decodes these files into Go structs and silently drops unknown or misspelt keys
(integration.md A1), so a typo would only show as a broken datasource in production.
"""

import re

from tests.grafana.artefacts import (
    COMPOSE,
    DASHBOARDS,
    DATASOURCES_YAML,
    GRAFANA,
    PROVIDERS_YAML,
    Json,
    load_yaml,
)

DATASOURCES_TOP = {"apiVersion", "datasources", "deleteDatasources"}
DATASOURCE_KEYS = {
    "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData", "version",
    "editable", "correlations",
}  # fmt: skip
POSTGRES_JSON_DATA = {
    "database", "sslmode", "tlsConfigurationMethod", "sslRootCertFile", "sslCertFile",
    "sslKeyFile", "maxOpenConns", "maxIdleConns", "maxIdleConnsAuto", "connMaxLifetime",
    "postgresVersion", "timescaledb", "timeInterval",
}  # fmt: skip
POSTGRES_SECURE = {"password", "tlsCACert", "tlsClientCert", "tlsClientKey"}
PROVIDERS_TOP = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name", "orgId", "folder", "folderUid", "type", "disableDeletion", "updateIntervalSeconds",
    "allowUiUpdates", "options",
}  # fmt: skip
PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}
ENV_REF = re.compile(r"\$\{(\w+)\}")


def _grafana_service() -> Json:
    service: Json = load_yaml(COMPOSE)["services"]["grafana"]
    return service


def _mounts(service: Json) -> dict[str, str]:
    """Repository path -> container path of the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            out[source.removeprefix("./").rstrip("/")] = target
    return out


def test_datasource_keys() -> None:
    doc = load_yaml(DATASOURCES_YAML)
    assert set(doc) <= DATASOURCES_TOP
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert set(ds) <= DATASOURCE_KEYS, set(ds) - DATASOURCE_KEYS
    assert {"name", "type", "uid", "url"} <= set(ds)
    assert ds["type"] == "grafana-postgresql-datasource"
    assert ds["uid"] == "hanoi-tsdb"
    assert ds["access"] == "proxy"
    assert set(ds["jsonData"]) <= POSTGRES_JSON_DATA, set(ds["jsonData"]) - POSTGRES_JSON_DATA
    assert set(ds["secureJsonData"]) <= POSTGRES_SECURE
    assert "database" not in ds, "PostgreSQL wants jsonData.database"


def test_datasource_values_come_from_the_environment() -> None:
    ds = load_yaml(DATASOURCES_YAML)["datasources"][0]
    for key in ("url", "user"):
        assert ENV_REF.search(ds[key]), key
    assert ENV_REF.fullmatch(ds["jsonData"]["database"])
    assert ENV_REF.fullmatch(ds["secureJsonData"]["password"]), "no literal secrets"
    # A whole-value env reference is what Grafana turns into a JSON boolean; a YAML string
    # "true" would reach the plugin as a string and fail its bool field.
    assert ENV_REF.fullmatch(ds["jsonData"]["timescaledb"])


def test_every_datasource_variable_is_set_by_compose() -> None:
    text = DATASOURCES_YAML.read_text(encoding="utf-8")
    env = _grafana_service()["environment"]
    missing = set(ENV_REF.findall(text)) - set(env)
    assert not missing, f"grafana service does not set {missing}"
    assert str(env["GRAFANA_DB_TIMESCALEDB"]) in {"true", "false"}
    assert env["GRAFANA_DB_USER"] == "grafana_reader"


def test_provider_keys_and_path_match_the_compose_mount() -> None:
    doc = load_yaml(PROVIDERS_YAML)
    assert set(doc) <= PROVIDERS_TOP
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert set(provider) <= PROVIDER_KEYS, set(provider) - PROVIDER_KEYS
    assert set(provider["options"]) <= PROVIDER_OPTIONS
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False
    if provider["options"].get("foldersFromFilesStructure"):
        assert not provider.get("folder")
        assert not provider.get("folderUid")
    mounts = _mounts(_grafana_service())
    assert mounts["grafana/dashboards"] == provider["options"]["path"]
    assert DASHBOARDS.is_dir()


def test_provisioning_directory_is_mounted_where_grafana_reads_it() -> None:
    mounts = _mounts(_grafana_service())
    assert mounts["grafana/provisioning"] == "/etc/grafana/provisioning"
    for sub in ("datasources", "dashboards"):
        assert any((GRAFANA / "provisioning" / sub).glob("*.yaml")), sub
