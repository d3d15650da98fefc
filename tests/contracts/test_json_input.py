"""The one JSON decoder of request bodies: it refuses a body exactly when some object in it
names a key twice, however the keys and values are spelt (escapes, colons inside strings)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import InvalidRequest
from contracts.json_input import decode_json_input

# Few short keys, so repeats are common; colons and quotes inside keys and values.
KEYS = st.sampled_from(["a", "b", "a:", ":", 'q"', "\u00e9", ""])
SCALARS = st.one_of(
    st.integers(), st.booleans(), st.none(), st.sampled_from(["x", ":", "a:b", '":', "\\:"])
)


class Obj(list[tuple[str, Any]]):
    """An object as its written key/value pairs (a key may repeat)."""


def objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Obj]:
    return st.lists(st.tuples(KEYS, children), max_size=4).map(Obj)


VALUES = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), objects(inner)), max_leaves=12
)


def write(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Obj):
        pairs = (
            f"{json.dumps(k, ensure_ascii=ascii_only)} : {write(v, ascii_only)}" for k, v in value
        )
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write(item, ascii_only) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def repeats_a_key(value: Any) -> bool:
    if isinstance(value, Obj):
        keys = [key for key, _ in value]
        return len(keys) != len(set(keys)) or any(repeats_a_key(v) for _, v in value)
    if isinstance(value, list):
        return any(repeats_a_key(item) for item in value)
    return False


@settings(max_examples=400, deadline=None)
@given(objects(VALUES), st.booleans(), st.booleans())
def test_refuses_exactly_the_bodies_that_repeat_a_key(
    value: Obj, ascii_only: bool, escape_colons: bool
) -> None:
    text = write(value, ascii_only)
    if escape_colons:
        text = _escape_colons_in_strings(text)
    body = text.encode()
    if repeats_a_key(value):
        with pytest.raises(InvalidRequest) as refused:
            decode_json_input(body)
        assert refused.value.code == "repeated_json_key"
    else:
        assert decode_json_input(body) == json.loads(body)


def _escape_colons_in_strings(text: str) -> str:
    """`text` with every colon inside a string spelt `\\u003a` (one outside is syntax)."""
    out, in_string, escaped = [], False, False
    for char in text:
        if in_string and not escaped and char == ":":
            out.append("\\u003a")
            continue
        out.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = in_string
        elif char == '"':
            in_string = not in_string
    return "".join(out)


def test_names_the_repeated_key() -> None:
    with pytest.raises(InvalidRequest) as refused:
        decode_json_input(b'{"lines":[{"sku":"A","sku":"B"}]}')
    assert '"sku"' in refused.value.message
