"""A callout's event id is unique only per sender and event type: one client cannot store an
id first and make another client's real event a duplicate; the migration keeps stored rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import storage
from tests.support.apps import app_client, bearer, gateway_app, new_client_token, settings_for

CALLOUTS = "/webhooks/salesforce"


async def test_another_clients_event_id_does_not_make_mine_a_duplicate(tmp_path: Path) -> None:
    app = gateway_app(settings_for(tmp_path))
    async with app_client(app) as client:
        _, squatter = await new_client_token(client, ["process:write"], entities=["US01"])
        _, salesforce = await new_client_token(client, ["process:write"])
        event = {"event": "opportunity.note_added", "event_id": "evt-1"}

        first = await client.post(CALLOUTS, json=event, headers=bearer(squatter))
        assert first.status_code == 200, first.text
        assert first.json()["duplicate"] is False

        real = await client.post(CALLOUTS, json=event, headers=bearer(salesforce))
        assert real.status_code == 200
        assert real.json()["duplicate"] is False

        # Another type under the same id is another event, even from the same client.
        other = {"event": "opportunity.stage_changed", "event_id": "evt-1"}
        other_type = await client.post(CALLOUTS, json=other, headers=bearer(salesforce))
        assert other_type.json()["duplicate"] is False

        # Control: the same client delivering its own event again is a duplicate.
        again = await client.post(CALLOUTS, json=event, headers=bearer(salesforce))
        assert again.status_code == 200
        assert again.json()["duplicate"] is True


def _downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(storage.MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", storage.sync_url(url).replace("%", "%%"))
    command.downgrade(config, revision)


def _round_trip(url: str) -> None:
    """0003 with a stored event -> head: the event kept, under the empty sender; another
    sender's event of the same id is a row of its own; back to 0003: one row per id again."""
    storage.upgrade(url, "0003")
    engine = sa.create_engine(storage.sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO webhook_inbox (source, event_id, event_type, payload, status, "
                "received_at) VALUES ('stripe', 'evt_1', 'invoice.paid', '{}', 'enqueued', :at)"
            ), {"at": datetime.now(UTC)})
        storage.upgrade(url)
        with engine.begin() as conn:
            kept = conn.execute(sa.text(
                "SELECT source, sender, event_type, event_id, status FROM webhook_inbox"
            )).all()
            assert [tuple(r) for r in kept] == [
                ("stripe", "", "invoice.paid", "evt_1", "enqueued")
            ]
            conn.execute(sa.text(
                "INSERT INTO webhook_inbox (source, sender, event_id, event_type, payload, "
                "status, received_at) VALUES ('stripe', 'other', 'evt_1', 'invoice.paid', "
                "'{}', 'received', :at)"
            ), {"at": datetime.now(UTC)})
            assert conn.execute(sa.text("SELECT count(*) FROM console_sessions")).scalar() == 0
        _downgrade(url, "0003")
        with engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT source, event_id, status FROM webhook_inbox"))
            assert [tuple(r) for r in rows] == [("stripe", "evt_1", "enqueued")]
        storage.upgrade(url)
    finally:
        engine.dispose()


def test_the_migration_keeps_stored_events_and_goes_back(tmp_path: Path) -> None:
    _round_trip(f"sqlite+aiosqlite:///{tmp_path}/inbox.db")


@pytest.mark.postgres
def test_the_migration_keeps_stored_events_on_postgresql(postgres_url: str) -> None:
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(storage.sync_url(postgres_url))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in postgres_url else "?"
        _round_trip(f"{postgres_url}{separator}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
