"""The control API every emulator answers: JSON writes only, so no cross-site form reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sandbox import netsuite, salesforce, stripe, zendesk
from sandbox.control import EmulatedVendor, FaultResponse, Faults
from tests.support.servers import serve_asgi
from tests.support.waiting import eventually

VENDORS: dict[str, Callable[[], Any]] = {
    "salesforce": salesforce.create_emulator,
    "stripe": stripe.create_emulator,
    "zendesk": zendesk.create_emulator,
    "netsuite": netsuite.create_emulator,
}


@pytest.fixture(params=sorted(VENDORS))
async def control(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    emulator = VENDORS[request.param]()
    transport = httpx.ASGITransport(app=emulator.vendor)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as http:
        yield http
    close = getattr(emulator, "aclose", None)
    if close is not None:
        await close()


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        # What an HTML form can send: urlencoded, multipart and text/plain bodies.
        ("/_emulator/faults", b"outage=true", "application/x-www-form-urlencoded"),
        ("/_emulator/faults", b'{"outage": true}', "text/plain"),
        ("/_emulator/faults", b"--b\r\n\r\n--b--", "multipart/form-data; boundary=b"),
        ("/_emulator/faults", b'{"outage": true}', None),
        ("/_emulator/reset", b"", None),
        ("/_emulator/reset", b"", "application/x-www-form-urlencoded"),
    ],
)
async def test_refuses_writes_that_are_not_json(
    control: httpx.AsyncClient, path: str, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    refused = await control.post(path, content=content, headers=headers)

    assert refused.status_code == 415
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"] == "unsupported_media_type"
    state = (await control.get("/_emulator/faults")).json()
    assert state["faults"]["outage"] is False


async def test_takes_json_writes(control: httpx.AsyncClient) -> None:
    faults = await control.post(
        "/_emulator/faults",
        content=b'{"outage": true}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert faults.status_code == 200
    assert faults.json()["faults"]["outage"] is True

    reset = await control.post("/_emulator/reset", json={})
    assert reset.json() == {"reset": True}
    assert (await control.get("/_emulator/faults")).json()["faults"]["outage"] is False


async def test_delays_only_the_share_of_requests_latency_rate_asks_for(
    control: httpx.AsyncClient,
) -> None:
    refused = await control.post("/_emulator/faults", json={"latency_rate": 1.5})
    set_ = await control.post(
        "/_emulator/faults", json={"latency_ms": 1, "latency_rate": 0.3, "path": "/none*"}
    )
    # Counted only for requests the path matches: none yet.
    assert (await control.get("/_emulator/faults")).json()["counters"]["latency"] == 0
    set_ = await control.post("/_emulator/faults", json={"latency_ms": 1, "latency_rate": 0.3})
    for _ in range(200):
        await control.get("/no-such-path")
    counters = (await control.get("/_emulator/faults")).json()["counters"]

    assert refused.status_code == 400
    assert "latency_rate" in refused.json()["detail"]
    assert set_.json()["faults"]["latency_rate"] == 0.3
    assert counters["requests"] == 200
    assert 30 <= counters["latency"] <= 90, counters


async def test_a_request_held_past_its_callers_timeout_is_served_whole() -> None:
    # Whatever the vendor, it has a request whole before it sits on it; the server hands an
    # app only the disconnect of a caller that left, so the body must be read before the hold.
    bodies: list[bytes] = []

    async def vendor_app(scope: Any, receive: Any, send: Any) -> None:
        chunks = []
        while (message := await receive())["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    held = EmulatedVendor(
        vendor_app,
        render_fault=lambda status, _: FaultResponse(status=status, body=b""),
        reset=lambda: None,
    )
    held.set_faults(Faults(latency_ms=300, path="/held"))
    with serve_asgi(held, lifespan="off") as url:
        async with httpx.AsyncClient(base_url=url) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/held", content=b'{"amount": 1000}', timeout=0.1)
            await eventually(lambda: bodies, timeout=5.0, interval=0.05, what="the held request")

    assert bodies == [b'{"amount": 1000}']
