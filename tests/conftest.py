"""Fixtures shared by every suite."""

from __future__ import annotations

import pytest

from tests.support.services import require_env


@pytest.fixture
def redis_url() -> str:
    """A Redis database the test may flush (CI: db 15)."""
    return require_env("ERPGW_TEST_REDIS_URL", "Redis")


@pytest.fixture
def postgres_url() -> str:
    """An async SQLAlchemy URL of a PostgreSQL database the test may write to."""
    return require_env("ERPGW_TEST_DATABASE_URL", "PostgreSQL")
