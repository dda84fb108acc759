"""Test configuration: fixtures live in plugins under tests/fixtures (psycopg's layout)."""

import pytest

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.mqtt",
    "tests.fixtures.db",
    "tests.fixtures.proxy",
]


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio only."""
    return "asyncio"
