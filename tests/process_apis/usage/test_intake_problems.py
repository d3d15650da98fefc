"""Bad usage requests answer a clear application/problem+json 4xx, never a 500: too many
records, no records, not JSON, unknown fields, a caller without the scope or without a token,
and a flush or read by a caller without process scopes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.process_apis.served_gateway import served_gateway
from tests.process_apis.usage.test_usage_billing import _headers


async def test_bad_usage_requests_are_problems(tmp_path: Path) -> None:
    at = datetime.now(UTC).isoformat()
    record = {
        "id": "r",
        "subscription_id": "sub_x",
        "metric": "api_calls",
        "quantity": 1,
        "timestamp": at,
    }
    async with served_gateway(tmp_path) as world:
        usage = await _headers(tmp_path, world, scopes=["usage:write"], entities=["US01"])
        answers = {
            "too_many": await world.http.post(
                "/process/v1/usage-records",
                headers=usage,
                json={"records": [record] * 1001},
            ),
            "none": await world.http.post(
                "/process/v1/usage-records", headers=usage, json={"records": []}
            ),
            "not_json": await world.http.post(
                "/process/v1/usage-records",
                headers={**usage, "Content-Type": "application/json"},
                content=b"{records: nope",
            ),
            "unknown_field": await world.http.post(
                "/process/v1/usage-records",
                headers=usage,
                json={"records": [record], "idempotency": "x"},
            ),
            "no_scope": await world.http.post(
                "/process/v1/usage-records", headers=world.reader, json={"records": [record]}
            ),
            "no_token": await world.http.post(
                "/process/v1/usage-records", json={"records": [record]}
            ),
            "flush_without_process_write": await world.http.post(
                "/process/v1/usage/flush", headers=usage
            ),
            "read_without_process_read": await world.http.get(
                "/process/v1/usage/sub_x", headers=usage
            ),
        }

    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "too_many": 422,
        "none": 422,
        "not_json": 400,
        "unknown_field": 400,
        "no_scope": 403,
        "no_token": 401,
        "flush_without_process_write": 403,
        "read_without_process_read": 403,
    }
    for name, answer in answers.items():
        assert answer.headers["content-type"].startswith("application/problem+json"), name
        assert answer.json()["status"] == statuses[name]
    assert "records" in str(answers["too_many"].json())
