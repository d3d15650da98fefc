"""The console as routes to mount: its pages and forms behind the sign-in cookie, its
static assets, and the `console` dependency they take."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from experience_apis.console._actions import ACTIONS
from experience_apis.console._audit_page import AUDIT_PAGES
from experience_apis.console._credits import CREDIT_PAGES
from experience_apis.console._pages import PAGES
from experience_apis.console._people import PEOPLE
from experience_apis.console._reconciliation import RECONCILIATION_PAGES
from experience_apis.console._signin import cookie_middleware
from experience_apis.console._web import STATIC_DIR, Console, exception_handlers

__all__ = ["console_routes"]

_PUBLIC: dict[str, Any] = {"public": True, "rate_limit": False}


def console_routes(console: Console, *, secret: bytes, secure_cookies: bool) -> list[Any]:
    """The `/ops` router and `/ops/static` assets. They answer without a bearer token
    (`opt["public"]`): the pages check the console's own sign-in cookie instead."""
    pages = Router(
        path="/ops",
        route_handlers=[
            *PAGES, *RECONCILIATION_PAGES, *ACTIONS, *PEOPLE, *CREDIT_PAGES, *AUDIT_PAGES
        ],
        middleware=[cookie_middleware(secret, secure=secure_cookies)],
        dependencies={"console": Provide(lambda: console, use_cache=True, sync_to_thread=False)},
        exception_handlers=dict(exception_handlers(console)),
        include_in_schema=False,
        opt={"public": True},
    )
    assets = create_static_files_router(
        path="/ops/static",
        directories=[STATIC_DIR],
        opt=_PUBLIC,
        include_in_schema=False,
        send_as_attachment=False,
    )
    return [pages, assets]
