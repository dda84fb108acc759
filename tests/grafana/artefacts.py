"""Loading the Grafana and deployment files under test, and walking dashboards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import yaml

Json = dict[str, Any]

REPO: Final = Path(__file__).resolve().parents[2]
GRAFANA: Final = REPO / "grafana"
DASHBOARDS: Final = GRAFANA / "dashboards"
DATASOURCES_YAML: Final = GRAFANA / "provisioning" / "datasources" / "timescaledb.yaml"
PROVIDERS_YAML: Final = GRAFANA / "provisioning" / "dashboards" / "hanoi.yaml"
COMPOSE: Final = REPO / "docker-compose.yml"
READER_SQL: Final = REPO / "deploy" / "timescaledb" / "initdb" / "10-grafana-reader.sql"

DASHBOARD_FILES: Final = (
    "city-overview.json",
    "air-quality.json",
    "flooding.json",
    "west-lake.json",
    "traffic.json",
    "alerts.json",
    "ingest-health.json",
)


def load_yaml(path: Path) -> Json:
    """A YAML mapping (merge keys resolved, as docker-compose and Grafana see it)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return cast(Json, data)


def load_dashboard(name: str) -> Json:
    """One committed dashboard JSON."""
    data = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return cast(Json, data)


def datasource_uids() -> dict[str, str]:
    """uid -> type of every provisioned datasource."""
    doc = load_yaml(DATASOURCES_YAML)
    return {str(ds["uid"]): str(ds["type"]) for ds in doc["datasources"]}


@dataclass(frozen=True, slots=True)
class Query:
    """One SQL query of a dashboard: a panel target, a variable or an annotation.

    Args:
        where: human-readable location for messages.
        sql: the raw SQL as stored.
        fmt: ``time_series`` or ``table``.
        interval: the panel's minimum interval (``None``: the datasource's).
        time_from: the panel's relative-time override, if any.
    """

    where: str
    sql: str
    fmt: str
    interval: str | None = None
    time_from: str | None = None


def all_panels(board: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries(board: Json) -> Iterator[Query]:
    """Every panel target and annotation query (variables are separate)."""
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            yield Query(
                f"{board['uid']} / {panel['title']} / {target['refId']}",
                target["rawSql"],
                target.get("format", "time_series"),
                panel.get("interval"),
                panel.get("timeFrom"),
            )
    for anno in board["annotations"]["list"]:
        if "target" in anno:
            yield Query(
                f"{board['uid']} / annotation {anno['name']}", anno["target"]["rawSql"], "table"
            )


def variables(board: Json) -> list[Json]:
    """The dashboard's template variables, in order."""
    return cast(list[Json], board["templating"]["list"])
