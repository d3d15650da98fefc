"""Query parameters the canonical list routes share: cursor, page size, legal entity.

Declared once with their bounds so that the OpenAPI states them and Litestar refuses a value
outside them (400 with the field named) before a route runs.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "LegalEntityFilter", "PageCursor", "PageLimit"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

PageLimit = Annotated[
    int,
    Parameter(query="limit", ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}"),
]
PageCursor = Annotated[
    str | None,
    Parameter(
        query="cursor",
        min_length=1,
        max_length=512,
        description="The `next_cursor` of the previous page",
    ),
]
LegalEntityFilter = Annotated[
    str | None,
    Parameter(
        query="legal_entity",
        pattern=r"^[A-Z0-9_-]{2,16}$",
        description="Only records of this legal entity (ERP subsidiary code, e.g. US01)",
    ),
]
