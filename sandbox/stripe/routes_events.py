"""Events and webhook endpoints (`/v1/events`, `/v1/webhook_endpoints`)."""

from __future__ import annotations

import fnmatch
from urllib.parse import urlsplit

from sandbox.credentials import STRIPE
from sandbox.loopback import LOOPBACK_HOSTS, is_loopback_url
from sandbox.stripe.errors import invalid_request
from sandbox.stripe.params import Params
from sandbox.stripe.render import created_filter, page, render
from sandbox.stripe.store import Obj, Store

__all__ = [
    "create_webhook_endpoint",
    "delete_webhook_endpoint",
    "get_event",
    "get_webhook_endpoint",
    "list_events",
    "list_webhook_endpoints",
    "update_webhook_endpoint",
]

_MAX_TYPES = 20
HISTORY_SECONDS = 30 * 24 * 3600
"""Stripe lists the events of the last 30 days only."""


def get_event(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("event", path["id"]), params.texts("expand"))


def list_events(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(
        ("created", "delivery_success", "type", "types", "limit", "starting_after", "ending_before")
    )
    pattern, types = params.text("type"), set(params.texts("types"))
    if pattern and types:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(types) > _MAX_TYPES:
        raise invalid_request(f"You may pass at most {_MAX_TYPES} types.", param="types")
    in_window = created_filter(params)
    kept_since = store.real_now() - HISTORY_SECONDS
    candidates = [
        event
        for event in store.newest_first("event")
        # `type` takes a `*` wildcard (`invoice.*`), `types` exact names.
        if (pattern is None or fnmatch.fnmatchcase(event["type"], pattern))
        and (not types or event["type"] in types)
        and in_window(event)
        and event["created"] >= kept_since
    ]
    return page(store, candidates, params, "/v1/events")


def create_webhook_endpoint(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("api_version", "description", "enabled_events", "metadata", "url"))
    endpoint: Obj = {
        "id": store.mint("we"),
        "object": "webhook_endpoint",
        "api_version": params.text("api_version") or None,
        "application": None,
        "created": store.real_now(),
        "description": params.text("description") or None,
        "enabled_events": _enabled_events(params, required=True),
        "livemode": False,
        "metadata": params.metadata({}),
        "status": "enabled",
        "url": _url(params, required=True),
    }
    store.insert(endpoint)
    answer = render(store, endpoint, params.texts("expand"))
    # The signing secret is shown once, on creation; the sandbox uses one fixed secret so the
    # gateway can verify without a round trip.
    answer["secret"] = STRIPE.webhook_secret
    return answer


def get_webhook_endpoint(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    return render(store, store.get("webhook_endpoint", path["endpoint"]), params.texts("expand"))


def update_webhook_endpoint(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("description", "disabled", "enabled_events", "metadata", "url"))
    endpoint = store.get("webhook_endpoint", path["endpoint"])
    if params.has("url"):
        endpoint["url"] = _url(params, required=True)
    if params.has("enabled_events"):
        endpoint["enabled_events"] = _enabled_events(params, required=True)
    if params.has("description"):
        endpoint["description"] = params.text("description") or None
    disabled = params.flag("disabled")
    if disabled is not None:
        endpoint["status"] = "disabled" if disabled else "enabled"
    endpoint["metadata"] = params.metadata(endpoint["metadata"])
    return render(store, endpoint, params.texts("expand"))


def delete_webhook_endpoint(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(())
    endpoint = store.get("webhook_endpoint", path["endpoint"])
    store.remove(endpoint)
    return {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}


def list_webhook_endpoints(store: Store, params: Params, path: dict[str, str]) -> Obj:
    params.only(("limit", "starting_after", "ending_before"))
    return page(store, store.newest_first("webhook_endpoint"), params, "/v1/webhook_endpoints")


def _enabled_events(params: Params, *, required: bool) -> list[str]:
    events = params.texts("enabled_events")
    if required and not events:
        raise invalid_request(
            "Missing required param: enabled_events.",
            param="enabled_events",
            code="parameter_missing",
        )
    return events


def _url(params: Params, *, required: bool) -> str:
    url = params.required_text("url") if required else (params.text("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_request(f"Invalid URL: {url}", param="url", code="url_invalid")
    if not is_loopback_url(url):
        raise invalid_request(
            f"Invalid URL: {url}. The sandbox delivers webhooks only to loopback URLs "
            f"({LOOPBACK_HOSTS}).",
            param="url",
            code="url_invalid",
        )
    return url
