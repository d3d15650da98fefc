"""Routes of the emulated Zendesk Webhooks API (create, list, show, delete, signing secret)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath

from sandbox.zendesk.context import Call, json_response
from sandbox.zendesk.webhooks import Webhook

__all__ = ["WEBHOOK_ROUTES"]

AnyRequest = Request[Any, Any, Any]


def _sequence(hook: Webhook) -> int:
    return hook.sequence


@post("/api/v2/webhooks")
async def create_webhook(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    dispatcher = call.account.webhooks
    hook = dispatcher.create(await call.body("webhook"))
    return json_response(
        {"webhook": dispatcher.render(hook, created_by=call.actor().id)},
        status=201,
        headers={"Location": f"{call.base}/api/v2/webhooks/{hook.id}"},
    )


@get("/api/v2/webhooks")
async def list_webhooks(request: AnyRequest) -> Response[bytes]:
    call = Call(request)
    dispatcher = call.account.webhooks
    hooks = sorted(dispatcher.webhooks.values(), key=_sequence)
    if call.query("page[size]") is None:
        # The Webhooks API pages by cursor only; without page[size] it uses its default size.
        call.params.append(("page[size]", "100"))
    actor_id = call.actor().id
    return call.page("webhooks", hooks, key=_sequence,
                     render=lambda hook: dispatcher.render(hook, created_by=actor_id))


@get("/api/v2/webhooks/{webhook_id:str}")
async def show_webhook(request: AnyRequest, webhook_id: FromPath[str]) -> Response[bytes]:
    call = Call(request)
    dispatcher = call.account.webhooks
    hook = dispatcher.webhook(webhook_id)
    return json_response({"webhook": dispatcher.render(hook, created_by=call.actor().id)})


@delete("/api/v2/webhooks/{webhook_id:str}", status_code=204)
async def delete_webhook(request: AnyRequest, webhook_id: FromPath[str]) -> None:
    dispatcher = Call(request).account.webhooks
    dispatcher.webhook(webhook_id)
    del dispatcher.webhooks[webhook_id]


@get("/api/v2/webhooks/{webhook_id:str}/signing_secret")
async def show_signing_secret(request: AnyRequest, webhook_id: FromPath[str]) -> Response[bytes]:
    dispatcher = Call(request).account.webhooks
    dispatcher.webhook(webhook_id)
    return json_response({"signing_secret": {"algorithm": "SHA256",
                                             "secret": dispatcher.secret}})


WEBHOOK_ROUTES = [
    create_webhook, list_webhooks, show_webhook, delete_webhook, show_signing_secret,
]
