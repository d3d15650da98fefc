"""Typed access to one request's parsed parameters, failing the way Stripe fails.

Stripe refuses a parameter it does not know (`parameter_unknown`), a missing required one
(`parameter_missing`) and a malformed one (`parameter_invalid_integer`, ...), naming it in
`param`; nested names are written `items[0][price]`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from sandbox.stripe.errors import invalid_request

__all__ = ["Params"]

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
# Stripe's metadata limits (https://docs.stripe.com/api/metadata).
_METADATA_KEYS_MAX = 50
_METADATA_KEY_MAX = 40
_METADATA_VALUE_MAX = 500


class Params:
    """A parsed form (`parse_form`) plus the name of the object it describes, for messages."""

    def __init__(self, data: dict[str, Any], *, prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def only(self, allowed: Iterable[str]) -> Params:
        """Refuse any parameter outside `allowed` (plus `expand`, accepted everywhere)."""
        known = {*allowed, "expand"}
        for key in self.data:
            if key not in known:
                raise invalid_request(
                    f"Received unknown parameter: {self.name(key)}",
                    param=self.name(key),
                    code="parameter_unknown",
                )
        return self

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self._missing(key)
            return None
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {self.name(key)}", param=self.name(key))
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key, required=True)
        if not value:
            raise self._missing(key)
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        raw = self.text(key, required=required)
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise invalid_request(
                f"Invalid integer: {raw}", param=self.name(key), code="parameter_invalid_integer"
            ) from None
        if minimum is not None and value < minimum:
            raise invalid_request(
                f"This value must be greater than or equal to {minimum}.",
                param=self.name(key),
                code="parameter_invalid_integer",
            )
        return value

    def flag(self, key: str) -> bool | None:
        raw = self.text(key)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise invalid_request(f"Invalid boolean: {raw}", param=self.name(key))

    def choice(
        self, key: str, choices: Collection[str], *, default: str | None = None
    ) -> str | None:
        raw = self.text(key)
        if raw is None or raw == "":
            return default
        if raw not in choices:
            options = ", ".join(f"`{choice}`" for choice in choices)
            raise invalid_request(
                f"Invalid {self.name(key)}: must be one of {options}",
                param=self.name(key),
            )
        return raw

    def mapping(self, key: str) -> dict[str, str] | None:
        """A flat string map such as `metadata`; `metadata=` (empty) means clear it."""
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid_request(f"Invalid hash: {self.name(key)}", param=self.name(key))
        return dict(value)

    def metadata(self, current: dict[str, str]) -> dict[str, str]:
        """`current` updated by `metadata[...]`: Stripe merges keys, an empty value deletes
        one and `metadata=` (empty) clears them all."""
        update = self.mapping("metadata")
        if update is None:
            return current
        if not update:
            return {}
        merged = dict(current)
        for key, value in update.items():
            if len(key) > _METADATA_KEY_MAX or len(value) > _METADATA_VALUE_MAX:
                raise invalid_request(
                    "Metadata keys are limited to 40 characters and values to 500.",
                    param=f"{self.name('metadata')}[{key}]",
                )
            if value == "":
                merged.pop(key, None)
            else:
                merged[key] = value
        if len(merged) > _METADATA_KEYS_MAX:
            raise invalid_request("Metadata is limited to 50 keys.", param=self.name("metadata"))
        return merged

    def nested(self, key: str) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid hash: {self.name(key)}", param=self.name(key))
        return Params(value, prefix=self.name(key))

    def array(self, key: str) -> list[Any]:
        """An indexed (`a[0][b]`) or appended (`a[]`) list, in index order."""
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
        raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))

    def hashes(self, key: str) -> list[Params]:
        """A list of hashes (`items[0][price]=...`) as Params named `items[0]`, `items[1]`..."""
        result: list[Params] = []
        for index, entry in enumerate(self.array(key)):
            if not isinstance(entry, dict):
                raise invalid_request(
                    f"Invalid hash: {self.name(key)}[{index}]", param=f"{self.name(key)}[{index}]"
                )
            result.append(Params(entry, prefix=f"{self.name(key)}[{index}]"))
        return result

    def texts(self, key: str) -> list[str]:
        values = self.array(key)
        if not all(isinstance(value, str) for value in values):
            raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))
        return [str(value) for value in values]

    def _missing(self, key: str) -> Exception:
        return invalid_request(
            f"Missing required param: {self.name(key)}.",
            param=self.name(key),
            code="parameter_missing",
        )
