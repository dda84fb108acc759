"""Property-based tests of the whole API against its own OpenAPI document (schemathesis).

The API runs on real uvicorn over a database filled with two hours of simulated Hanoi
(:mod:`tests.ops_api.simulated`). For each kind of caller — a viewer, a flood-only viewer, an
operator, an admin, a database token made through the admin API, and nobody — schemathesis
generates valid and invalid requests from ``/openapi.json`` (examples, boundary coverage and
random fuzzing, NUL bytes included) and runs every check it has: no server error, every
status and header documented, every response body and content type as documented, invalid
data refused, valid data accepted, authentication enforced. The run is deterministic (fixed
seed, derandomized generation, no example database) and bounded (``max_examples`` per
operation), about half a minute per caller.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import anyio
import httpx
import psycopg
import pytest

from hanoi_ioc.simfill import fill_with_simulation
from tests.fixtures.db import _with_database
from tests.ops_api.conftest import ADMIN, FLOOD, OPERATOR, VIEWER, make_settings
from tests.ops_api.server import free_port, running_api

pytestmark = [pytest.mark.db, pytest.mark.slow]

SCHEMATHESIS: Final = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES: Final = int(os.environ.get("HANOI_FUZZ_EXAMPLES", "12"))
SEED: Final = 20260930


@pytest.fixture(scope="module")
def fuzz_db(pg_admin_url: str, db_template: str) -> Iterator[str]:
    """One database for the module, filled with simulator data."""
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{db_template}"')
    url = _with_database(pg_admin_url, name)
    data = anyio.run(fill_with_simulation, url)
    assert data.readings > 10_000, data
    assert data.alerts > 5, data
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def api_url(fuzz_db: str) -> Iterator[str]:
    """The API on real uvicorn, limits generous enough that fuzzing is not throttled."""
    settings = make_settings(
        fuzz_db,
        port=free_port(),
        write_rate_per_s=10_000.0,
        write_burst=10_000,
        auth_failures_per_min=1_000_000,
        secret_key="fuzz-secret-key-0123456789abcdefghijkl",
        ws_pong_timeout_s=10.0,
    )
    with running_api(settings) as url:
        yield url


def _db_token(api_url: str) -> str:
    reply = httpx.post(
        f"{api_url}/api/admin/tokens",
        json={"name": "fuzz-db-operator", "role": "operator"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    token = reply.json()["token"]
    assert isinstance(token, str)
    return token


CALLERS: Final = ["viewer", "flood", "operator", "admin", "db-token", "anonymous"]
_BOOTSTRAP: Final = {"viewer": VIEWER, "flood": FLOOD, "operator": OPERATOR, "admin": ADMIN}


@pytest.mark.parametrize("caller", CALLERS)
def test_api_conforms_to_its_openapi(api_url: str, caller: str, tmp_path: Path) -> None:
    token = _db_token(api_url) if caller == "db-token" else _BOOTSTRAP.get(caller)
    command = [
        str(SCHEMATHESIS), "run", f"{api_url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-deterministic",
        "--workers", "1",
        "--request-timeout", "20",
        "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    if token is not None:
        command += ["--header", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    report = done.stdout[-20_000:] + done.stderr[-5_000:]
    assert done.returncode == 0, report
