"""Errors the emulated org raises, rendered in Salesforce's own JSON error shapes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AmbiguousExternalId", "ApiError", "RecordError"]


@dataclass(frozen=True)
class RecordError:
    """One Salesforce error entry (`errorCode` in REST errors, `statusCode` in composite)."""

    code: str
    message: str
    fields: tuple[str, ...] = ()

    def rest_entry(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def composite_entry(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


class ApiError(Exception):
    """A refused request: an HTTP status and the error entries of the JSON array body."""

    def __init__(
        self, status: int, code: str, message: str, fields: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = (RecordError(code, message, tuple(fields)),)

    @property
    def first(self) -> RecordError:
        return self.errors[0]

    def body(self) -> list[dict[str, Any]]:
        return [error.rest_entry() for error in self.errors]


class AmbiguousExternalId(Exception):
    """An upsert or lookup by external id matched several records (HTTP 300)."""

    def __init__(self, sobject: str, ids: Sequence[str]) -> None:
        super().__init__(f"{len(ids)} {sobject} records match")
        self.sobject = sobject
        self.ids = tuple(ids)
