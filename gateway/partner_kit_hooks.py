"""Schemathesis hooks of the partner kit (`gateway.partner_kit`), loaded by its run.

Before each request: a list's generated cursor in a schema-valid case becomes a cursor that
list really handed this client (or none), a lookup by id gets a real id every other case, and
an unsafe operation on one record reaches only a record the kit seeded (any other id is turned
into one that names nothing), and an unsafe request's Idempotency-Key is one of its own. A
read-only run refuses to send anything but GET and HEAD.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import schemathesis

from gateway.partner_kit import READ_METHODS, STATE_FILE

_turns: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)


@cache
def _state() -> dict[str, Any]:
    """The kit's state, in the run's working directory (none: nothing known, read-only)."""
    path = Path.cwd() / STATE_FILE
    if not path.exists():
        return {"ids": {}, "cursors": {}, "own": [], "read_only": True, "answers": None}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _positive(case: Any) -> bool:
    return case.meta is None or case.meta.generation.mode.name == "POSITIVE"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    state = _state()
    method = case.method.upper()
    if state["read_only"] and method not in READ_METHODS:
        raise RuntimeError(f"read-only run: {method} {case.path} is not sent")
    path = case.operation.path
    turn = next(_turns[f"{method} {path}"])
    if method not in READ_METHODS and _positive(case):
        _own_idempotency_key(case)
    if _positive(case) and case.query and "cursor" in case.query:
        issued = state["cursors"].get(path)
        if issued:
            case.query["cursor"] = issued[turn % len(issued)]
        else:
            del case.query["cursor"]
    if not case.path_parameters:
        return
    if method in READ_METHODS:
        ids = state["ids"].get(path)
        if ids and _positive(case) and turn % 2 == 0:
            name = list(case.path_parameters)[-1]
            case.path_parameters[name] = ids[(turn // 2) % len(ids)]
        return
    own = set(state["own"])
    for name, value in list(case.path_parameters.items()):
        if str(value) not in own:
            case.path_parameters[name] = _naming_nothing(str(value))


def _own_idempotency_key(case: Any) -> None:
    """Generated keys repeat across operations (the generator favours short ones): the first
    request to use one would own it, and every later request of another operation with it
    would meet only the idempotency policy's 422 ("used with a different request"), never the
    operation itself. Each request gets a key no other request has used."""
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key":
            case.headers[name] = f"kit-{uuid.uuid4().hex}"


def _naming_nothing(value: str) -> str:
    """`value` with its last characters zeroed: the same shape, no record of anyone's."""
    head, tail = value[:-6], value[-6:]
    return head + re.sub(r"[A-Za-z]", "a", re.sub(r"[0-9]", "0", tail))


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Where asked (`answers` in the state), one line per request: method, operation, status,
    so a suite can see what each operation answered."""
    path = _state().get("answers")
    if path:
        with Path(path).open("a") as answers:
            answers.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")
