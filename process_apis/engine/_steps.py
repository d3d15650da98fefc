"""What a flow step declares (its platform, owner team and input contract) and what it sees
while it runs (its idempotency key, the records it creates); kept apart from DBOS so the
routes can check an edited input without touching the engine.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import typing
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import msgspec

from contracts.context import CallContext, current_context, use_context
from contracts.errors import (
    Conflict,
    FieldError,
    GatewayError,
    InvalidRequest,
    UpstreamInvalid,
    UpstreamUnavailable,
    ValidationFailed,
)
from process_apis.engine.observer import MoneyKind, MoneyMoved
from process_apis.exceptions import OwnerTeam

__all__ = [
    "StepFailure",
    "StepScope",
    "StepSpec",
    "circuit_wait",
    "current_idempotency_key",
    "current_step",
    "refs_of",
    "register_step",
    "report_external_ids",
    "report_money",
    "running",
    "step_spec",
    "validate_step_input",
]

CIRCUIT_WAIT_FLOOR_SECONDS = 0.05
R = typing.TypeVar("R")

_SPECS: dict[str, StepSpec] = {}
"""Every declared step by `module.qualname`, filled at import like DBOS's own registry, so an
operator's edited input can be checked against the step it is meant for."""

_PATH = re.compile(r"at `\$((?:\.[^`.\[]+|\[\d+\])*)`")
_FIELD = re.compile(r"field `([^`]+)`")


@dataclass(frozen=True)
class StepScope:
    """The step running now: its idempotency key and what it reports creating."""

    flow_id: str
    name: str
    external_ids: dict[str, str] = field(default_factory=dict)
    money: list[MoneyMoved] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return f"{self.flow_id}:{self.name}"


_scope: ContextVar[StepScope | None] = ContextVar("erpgw_step_scope", default=None)


def current_step() -> StepScope | None:
    return _scope.get()


def current_idempotency_key() -> str:
    """`{flow_id}:{step}`: pass it to the vendor (Idempotency-Key, external id) so a step that
    runs again after a crash or a retry writes nothing twice."""
    scope = _scope.get()
    if scope is None:
        raise LookupError("current_idempotency_key() is only defined inside a flow step")
    return scope.idempotency_key


def report_external_ids(**ids: str) -> None:
    """Record ids the running step created on its platform (`stripe_invoice="in_1"`); they
    appear on the flow's step. Outside a step this does nothing."""
    scope = _scope.get()
    if scope is not None:
        scope.external_ids.update(ids)


def report_money(kind: MoneyKind, *, legal_entity: str, currency: str, amount: int) -> None:
    """Record an amount the running step booked (`booked`, `invoiced`, `credited`,
    `collected`); measured once the step succeeds. Outside a step this does nothing."""
    scope = _scope.get()
    if scope is not None:
        scope.money.append(
            MoneyMoved(kind=kind, legal_entity=legal_entity, currency=currency, amount=amount)
        )


class StepFailure(Exception):
    """A step's error as DBOS records it: contracts errors take keyword-only arguments, which
    pickle cannot rebuild, so the engine records this instead and keeps the original class."""

    def __init__(
        self,
        message: str,
        *,
        error_type: type[BaseException],
        retryable: bool,
        vendor: str | None = None,
        errors: tuple[FieldError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.retryable = retryable
        self.vendor = vendor
        self.errors = errors

    @classmethod
    def of(cls, exc: BaseException) -> StepFailure:
        if isinstance(exc, StepFailure):
            return exc
        message = exc.message if isinstance(exc, GatewayError) else str(exc) or type(exc).__name__
        return cls(
            message,
            error_type=type(exc),
            retryable=isinstance(exc, UpstreamUnavailable),
            vendor=getattr(exc, "vendor", None),
            errors=tuple(exc.errors) if isinstance(exc, UpstreamInvalid | InvalidRequest) else (),
        )

    @property
    def cause(self) -> str:
        """One line for operators: class, vendor, message, refused fields."""
        text = f"{self.error_type.__name__}: {self.message}"
        if self.vendor:
            text += f" (vendor {self.vendor})"
        if self.errors:
            text += "; " + "; ".join(f"{item.pointer}: {item.detail}" for item in self.errors)
        return text

    def __reduce__(self) -> tuple[Callable[..., StepFailure], tuple[Any, ...]]:
        return _restore_failure, (
            self.message,
            self.error_type,
            self.retryable,
            self.vendor,
            self.errors,
        )


def _restore_failure(
    message: str,
    error_type: type[BaseException],
    retryable: bool,
    vendor: str | None,
    errors: tuple[FieldError, ...],
) -> StepFailure:
    return StepFailure(
        message, error_type=error_type, retryable=retryable, vendor=vendor, errors=errors
    )


@dataclass(eq=False)
class StepSpec:
    """A declared step. Its input contract is the declared Struct (the step's one argument) or,
    by default, a Struct built from the step's signature."""

    ref: str
    name: str
    system: str
    owner: OwnerTeam | None
    fn: Callable[..., Any]
    declared_input: type[msgspec.Struct] | None = None
    _derived: type[msgspec.Struct] | None = None

    @property
    def takes_self(self) -> bool:
        params = list(inspect.signature(self.fn).parameters)
        return bool(params) and params[0] == "self"

    @property
    def input_type(self) -> type[msgspec.Struct]:
        if self.declared_input is not None:
            return self.declared_input
        if self._derived is None:
            # Built on first use: the step's annotations may name types defined after it.
            self._derived = _signature_struct(self.fn, f"{self.name}_input", self.takes_self)
        return self._derived

    def input_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The step's input as JSON-ready values (what the exception shows and retry edits)."""
        bound = inspect.signature(self.fn).bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        if self.takes_self:
            values.pop("self", None)
        if self.declared_input is not None:
            (value,) = values.values()
            values = value if isinstance(value, dict) else msgspec.to_builtins(value)
            return dict(values)
        return {name: msgspec.to_builtins(value, enc_hook=str) for name, value in values.items()}

    def input_json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The input as JSON text, or None when a value has no JSON form."""
        try:
            return msgspec.json.encode(self.input_of(args, kwargs)).decode()
        except (TypeError, ValueError, msgspec.EncodeError):
            return None

    def arguments(
        self, args: tuple[Any, ...], edited: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call arguments for a retry with an edited (already validated) input."""
        head = args[:1] if self.takes_self else ()
        value = msgspec.convert(edited, self.input_type)
        if self.declared_input is not None:
            return (*head, value), {}
        names = self.input_type.__struct_fields__
        return head, {name: getattr(value, name) for name in names}


@contextlib.contextmanager
def running(scope: StepScope, correlation_id: str | None) -> Iterator[None]:
    """While a step's code runs: its idempotency key, and the call context the outbound policy
    reads (batch priority, the flow and step on every vendor call)."""
    previous = current_context()
    use_context(
        CallContext(
            correlation_id=correlation_id,
            traceparent=previous.traceparent,
            client_id=previous.client_id,
            flow_id=scope.flow_id,
            step=scope.name,
            priority="batch",
        )
    )
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)
        use_context(previous)


def circuit_wait(exc: UpstreamUnavailable) -> float:
    """How long a step waits on an open circuit before calling again."""
    return max(exc.retry_after or 1.0, CIRCUIT_WAIT_FLOOR_SECONDS)


def refs_of(result: Any) -> dict[str, str]:
    """External ids a step returns: the `refs` of a canonical entity."""
    refs = getattr(result, "refs", None)
    if isinstance(refs, dict):
        return {str(key): str(value) for key, value in refs.items()}
    return {}


def register_step(spec: StepSpec) -> None:
    if spec.declared_input is not None:
        params = [p for p in inspect.signature(spec.fn).parameters if p != "self"]
        if len(params) != 1:
            raise TypeError(f"step {spec.ref} declares input=, so it must take one argument")
    _SPECS[spec.ref] = spec


def step_spec(ref: str) -> StepSpec | None:
    return _SPECS.get(ref)


def validate_step_input(ref: str, raw: Any) -> dict[str, Any]:
    """`raw` checked against the input contract of step `ref`, as JSON-ready values.

    Raises:
        ValidationFailed: with one field error per problem (pointers under `/input`).
        Conflict: the step is not declared in this deployment (its code changed).
    """
    spec = _SPECS.get(ref)
    if spec is None:
        raise Conflict(f"Step {ref} is not part of this deployment", code="unknown_step")
    try:
        value = msgspec.convert(raw, spec.input_type)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            f"The edited input does not fit step {spec.name}",
            errors=[FieldError(pointer=_pointer(str(exc)), detail=str(exc))],
        ) from exc
    return dict(msgspec.to_builtins(value))


def _pointer(message: str) -> str:
    """A JSON Pointer into the request body from a msgspec error message."""
    path = _PATH.search(message)
    parts = [p for p in re.split(r"[.\[\]]", path.group(1)) if p] if path else []
    missing = _FIELD.search(message)
    if missing:
        parts.append(missing.group(1))
    return "/input" + "".join(f"/{part}" for part in parts)


def _signature_struct(
    fn: Callable[..., Any], name: str, takes_self: bool
) -> type[msgspec.Struct]:
    hints = typing.get_type_hints(fn)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for index, param in enumerate(inspect.signature(fn).parameters.values()):
        if takes_self and index == 0:
            continue
        hint = hints.get(param.name, Any)
        if param.default is inspect.Parameter.empty:
            fields.append((param.name, hint))
        else:
            fields.append((param.name, hint, param.default))
    return msgspec.defstruct(name, fields, kw_only=True, forbid_unknown_fields=True)
