"""A callout's event id is unique only per sender and event type: one client cannot store an
id first and make another client's real event a duplicate; the migration keeps stored rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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


def test_the_migration_keeps_stored_events_and_goes_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/inbox.db"
    storage.upgrade(url, "0002")
    engine = sa.create_engine(storage.sync_url(url))
    row = {
        "source": "stripe", "event_id": "evt_1", "event_type": "invoice.paid",
        "payload": "{}", "status": "enqueued", "received_at": datetime.now(UTC),
    }
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO webhook_inbox (source, event_id, event_type, payload, status, "
            "received_at) VALUES (:source, :event_id, :event_type, :payload, :status, "
            ":received_at)"
        ), row)
    storage.upgrade(url)
    with engine.begin() as conn:
        kept = conn.execute(sa.text(
            "SELECT source, sender, event_type, event_id, status FROM webhook_inbox"
        )).all()
        assert [tuple(r) for r in kept] == [("stripe", "", "invoice.paid", "evt_1", "enqueued")]
        # Under the new key the same id of another sender is another row.
        conn.execute(sa.text(
            "INSERT INTO webhook_inbox (source, sender, event_id, event_type, payload, status, "
            "received_at) VALUES ('stripe', 'other', 'evt_1', 'invoice.paid', '{}', "
            "'received', :at)"
        ), {"at": datetime.now(UTC)})
    engine.dispose()
