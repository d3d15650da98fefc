"""Stripe's request encoding: nested parameters as bracket-notation form fields.

`{"metadata": {"k": "v"}, "items": [{"price": "p", "quantity": 2}], "expand": ["customer"]}`
becomes `metadata[k]=v&items[0][price]=p&items[0][quantity]=2&expand[0]=customer`, the way
Stripe's own SDKs encode requests. Lists are indexed (Stripe reads `expand[0]=` like
`expand[]=`).
Booleans are `true`/`false`; None values are left out; an empty string clears a field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FormParams", "encode_form"]

FormParams = Mapping[str, Any]
"""Nested parameters: str/int/bool leaves, Mappings for hashes, Sequences for lists."""


def encode_form(params: FormParams) -> list[tuple[str, str]]:
    """Flatten nested parameters into ordered (name, value) form fields."""
    fields: list[tuple[str, str]] = []
    for key, value in params.items():
        _flatten(key, value, fields)
    return fields


def _flatten(name: str, value: Any, fields: list[tuple[str, str]]) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        if not value:
            fields.append((name, ""))
        for key, inner in value.items():
            _flatten(f"{name}[{key}]", inner, fields)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for index, inner in enumerate(value):
            _flatten(f"{name}[{index}]", inner, fields)
    elif isinstance(value, bool):
        fields.append((name, "true" if value else "false"))
    elif isinstance(value, int | str):
        fields.append((name, str(value)))
    else:
        raise TypeError(f"cannot form-encode {type(value).__name__} for {name}")
