"""Field checks for the emulator's writes, collected into one Zendesk `RecordInvalid` answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sandbox.zendesk.errors import record_invalid

__all__ = ["Checks"]


class Checks:
    """Reads typed values out of a request body; every problem found is reported at once."""

    def __init__(self) -> None:
        self.details: dict[str, list[tuple[str, str]]] = {}

    def fail(self, field: str, code: str, text: str) -> None:
        self.details.setdefault(field, []).append((code, text))

    def done(self) -> None:
        if self.details:
            raise record_invalid(self.details)

    def text(
        self, payload: Mapping[str, Any], key: str, label: str, *, required: bool = False
    ) -> str | None:
        value = payload.get(key)
        if value is None or (isinstance(value, str) and not value.strip() and required):
            if required:
                self.fail(key, "BlankValue", f"{label}: cannot be blank")
            return None
        if not isinstance(value, str):
            self.fail(key, "InvalidValue", f"{label}: is invalid")
            return None
        return value

    def choice(
        self, payload: Mapping[str, Any], key: str, label: str, options: Sequence[str]
    ) -> str | None:
        value = payload.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or value not in options:
            self.fail(key, "InvalidValue", f"{label}: {value} is not valid")
            return None
        return value

    def identifier(self, payload: Mapping[str, Any], key: str, label: str) -> int | None:
        value = payload.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, "InvalidValue", f"{label}: is invalid")
            return None
        return value

    def strings(self, payload: Mapping[str, Any], key: str, label: str) -> list[str] | None:
        value = payload.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(key, "InvalidValue", f"{label}: must be a list of strings")
            return None
        return [item.strip() for item in value if item.strip()]

    def mapping(self, payload: Mapping[str, Any], key: str, label: str) -> dict[str, Any] | None:
        value = payload.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(key, "InvalidValue", f"{label}: is invalid")
            return None
        return value
