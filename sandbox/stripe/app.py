"""The Litestar app of the sandbox: one handler per Stripe endpoint, Stripe-shaped errors."""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.http_handlers import get

from sandbox.stripe.context import current_request
from sandbox.stripe.errors import StripeApiError, error_body, invalid_request
from sandbox.stripe.forms import parse_form
from sandbox.stripe.params import Params
from sandbox.stripe.routes import ROUTES, Method, Operation
from sandbox.stripe.store import Store

__all__ = ["build_app"]

_FORM = "application/x-www-form-urlencoded"
_log = logging.getLogger(__name__)


def build_app(store: Store) -> Litestar:
    """The endpoint app over `store` (auth, rate limit and idempotency sit in front of it)."""
    handlers = [_handler(store, method, path, op) for method, path, op in ROUTES]
    handlers.extend(_hosted_pages(store))
    return Litestar(
        route_handlers=handlers,
        exception_handlers={
            StripeApiError: _stripe_error,
            NotFoundException: _unrecognized,
            MethodNotAllowedException: _unrecognized,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        openapi_config=None,
        debug=False,
    )


def _handler(store: Store, method: Method, path: str, operation: Operation) -> HTTPRouteHandler:
    async def handle(request: Request[Any, Any, Any]) -> Response[bytes]:
        params = Params(await _read_params(request))
        path_params = {name: str(value) for name, value in request.path_params.items()}
        return _json(200, operation(store, params, path_params))

    handle.__name__ = operation.__name__
    return HTTPRouteHandler(path=path, http_method=method, status_code=200)(handle)


async def _read_params(request: Request[Any, Any, Any]) -> dict[str, Any]:
    params = parse_form(request.scope.get("query_string", b"").decode("latin-1"))
    body = await request.body()
    if not body:
        return params
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != _FORM:
        raise invalid_request(
            f"Invalid request: unsupported Content-Type {media or 'none'}. Stripe takes "
            f"{_FORM} bodies."
        )
    params.update(parse_form(body.decode("utf-8")))
    return params


def _hosted_pages(store: Store) -> list[HTTPRouteHandler]:
    """The public pages `hosted_invoice_url`, `invoice_pdf` and a credit note's `pdf` point at."""

    @get("/hosted/invoices/{invoice:str}", media_type="text/html", sync_to_thread=False)
    def invoice_page(invoice: str) -> str:
        found = store.get("invoice", invoice)
        number = html.escape(str(found["number"] or found["id"]))
        amount = f"{found['amount_due']} {str(found['currency']).upper()} (minor units)"
        return (
            f"<!doctype html><title>Invoice {number}</title><h1>Invoice {number}</h1>"
            f"<p>Status: {html.escape(str(found['status']))}</p><p>Amount due: {amount}</p>"
        )

    @get("/hosted/invoices/{invoice:str}/pdf", media_type="application/pdf", sync_to_thread=False)
    def invoice_pdf(invoice: str) -> bytes:
        return _pdf(f"Invoice {store.get('invoice', invoice)['number']}")

    @get("/hosted/credit_notes/{note:str}/pdf", media_type="application/pdf", sync_to_thread=False)
    def credit_note_pdf(note: str) -> bytes:
        return _pdf(f"Credit note {store.get('credit_note', note)['number']}")

    return [invoice_page, invoice_pdf, credit_note_pdf]


def _pdf(title: str) -> bytes:
    return f"%PDF-1.4\n% {title} (sandbox document)\n%%EOF\n".encode()


def _json(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=json.dumps(payload).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _stripe_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, StripeApiError)
    return _json(exc.status, error_body(exc, current_request().request_id), exc.headers)


def _unrecognized(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    # Stripe answers an unknown path, or a known path with an unknown method, with 404.
    error = StripeApiError(
        404,
        f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )
    return _stripe_error(request, error)


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code if 400 <= exc.status_code < 500 else 400
    return _stripe_error(request, StripeApiError(status, f"Invalid request: {exc.detail}"))


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    _log.exception("stripe sandbox failed on %s %s", request.method, request.url.path)
    error = StripeApiError(
        500,
        "An unknown error occurred while processing your request.",
        type_="api_error",
        headers={"Stripe-Should-Retry": "true"},
    )
    return _stripe_error(request, error)
