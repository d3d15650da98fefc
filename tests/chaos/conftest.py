"""Fixtures of the chaos runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tests.chaos.cluster import admin


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    """A PostgreSQL database of the run's own (the run may drop it and create it again): its
    name is the run's alone, since test workers run chaos runs side by side on one server."""
    name = f"{sa.make_url(postgres_url).database}_chaos_{uuid.uuid4().hex[:12]}"
    url = sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    await admin(
        postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    yield url
    await admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
