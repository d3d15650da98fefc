"""How a flow module is written: the decorators, step retries, approvals, and what runs
inside a flow (its record, its steps' records, the exception loop around a failed step). The
engine that runs flows is `process_apis.engine.flow_engine`.

A flow reads as business steps; ports are constructor arguments of a flow class, and the
engine builds the instance (`engine.register(OrderFlows, billing=billing)`, before launch):

    @flow_class("orders")
    class OrderFlows(FlowInstance):
        def __init__(self, *, billing: BillingPort) -> None:
            super().__init__()
            self.billing = billing

        @flow_step(system="stripe", retry=BUSY_PLATFORM)
        async def create_invoice(self, order_id: str) -> str:
            invoice = await self.billing.create_invoice(
                order_id, idempotency_key=current_idempotency_key()
            )
            report_external_ids(stripe_invoice=invoice.id)
            return invoice.id

        @flow()
        async def run(self, order_id: str) -> None:
            await self.create_invoice(order_id)

    flows = engine.register(OrderFlows, billing=billing)
    await engine.launch()
    handle = await engine.start("order", f"order:{order_id}", flows.run, order_id)

Steps retry `UpstreamUnavailable`, whatever the platform (DBOS step retries, by default
`STEP_RETRY`; an open circuit waits without spending an attempt). A step that still fails, or
fails in a way retrying cannot fix, opens an exception for its owner team, marks the flow
`failed`, and waits durably for an operator: retry (the failed step runs again, maybe with an
edited input; finished steps never rerun) or resolve (the flow ends `cancelled`). Exception
and waiting transitions are written in DBOS datasource transactions (exactly once); a flow's
start and success, both idempotent, are plain writes that run again should the flow replay.
A step's record is an upsert keyed by flow and step, written as each attempt ends (and as it
starts, for an attempt that runs long), in a transaction shared with the other flows' steps
ending at the same moment, before DBOS checkpoints the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar

import msgspec
import structlog
from dbos import DBOS, DBOSConfiguredInstance
from dbos import error as dbos_errors
from sqlalchemy import exc as sa_exc

from contracts.errors import ServiceUnavailable, UpstreamUnavailable
from process_apis.engine import _steps
from process_apis.engine._stalls import WAITING_CODES
from process_apis.engine._steps import (
    StepFailure,
    StepScope,
    StepSpec,
    current_idempotency_key,
    report_external_ids,
    report_money,
)
from process_apis.engine.queue import close_exception, owner_for, stop_at_step
from process_apis.engine.records import (
    FlowMeta,
    flow_ended,
    record_attempt,
    set_flow_status,
    step_ended,
)
from process_apis.engine.store import utcnow
from process_apis.engine.traces import TraceKeyKind, keys_of_external_ids, keys_touched
from process_apis.exceptions import OwnerTeam
from process_apis.flows import StepStatus

if TYPE_CHECKING:
    from process_apis.engine.flow_engine import FlowEngine

__all__ = [
    "BUSY_PLATFORM",
    "DECISION_TOPIC",
    "NO_RETRY",
    "SHORT_OUTAGE",
    "STEP_RETRY",
    "Decision",
    "FlowInstance",
    "Retry",
    "activate",
    "active_engine",
    "current_idempotency_key",
    "flow",
    "flow_class",
    "flow_step",
    "report_external_ids",
    "report_money",
    "wait_for_approval",
    "wait_for_event",
]

DECISION_TOPIC = "erpgw.operator"
DECISION_WAIT_SECONDS = 24 * 3600.0
RUNNING_MARKER_SECONDS = 1.0
"""An attempt still running after this long is recorded as running (the flow resource, the
console and the stall reaper see it); a shorter one is recorded once, as it ends: one write an
attempt instead of two, which halved the engine's own writes a flow."""

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound="FlowInstance")

log = structlog.get_logger("process_apis.engine.durable")

_active: FlowEngine | None = None
"""The launched engine. DBOS is one instance per process and runs recovered and queued flows
from its own threads, where nothing of the caller's context is visible; flows find the engine
(its database) here."""


@dataclass(frozen=True)
class Retry:
    """How a step retries an `UpstreamUnavailable` (from any platform): `further` attempts
    after the first, `interval_seconds` apart, each wait `backoff_rate` times the one before.
    Other errors are not retried."""

    further: int = 3
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0


STEP_RETRY = Retry()
"""The default: three more attempts within about 7 s."""
BUSY_PLATFORM = Retry(further=8, interval_seconds=0.5, backoff_rate=1.5)
"""Eight more attempts within about 25 s: with the outbound policy's own retries inside each
attempt, a platform answering 30 % faults still gets through."""
SHORT_OUTAGE = Retry(further=6, interval_seconds=0.5)
"""Six more attempts within about 30 s."""
NO_RETRY = Retry(further=0)


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's answer to an exception, delivered to the waiting flow."""

    action: Literal["retry", "resolve"]
    exception_id: str
    occurrence: int
    """The exception's `occurrences` the operator saw: a decision answers that failure only."""
    actor: str
    input: dict[str, Any] | None = None
    """For retry: the edited (validated) input of the failed step; None keeps the old one."""
    reason: str | None = None
    """For resolve: why the flow is cancelled."""


class FlowInstance(DBOSConfiguredInstance):
    """Base of flow classes whose steps use ports held by the instance (constructor keyword
    arguments). Instances come from `FlowEngine.register`, which hands them to DBOS under the
    class's `flow_name` before DBOS launches."""

    flow_name: ClassVar[str] = ""
    """Set by `flow_class(name)`: how DBOS finds the instance when it recovers its flows."""

    def __init__(self) -> None:
        # Not DBOSConfiguredInstance.__init__: the engine registers the instance at launch.
        self.config_name = self.flow_name


def flow_class(name: str) -> Callable[[type[F]], type[F]]:
    """Declare a flow class and the name of its instance (the same in every process, so that
    one process recovers another's flows)."""

    def declare(cls: type[F]) -> type[F]:
        cls.flow_name = name
        return DBOS.dbos_class()(cls)

    return declare


class _Resolved(BaseException):
    """An operator resolved the flow's exception: unwinds the flow body (past any `except
    Exception` in it) to the flow wrapper, which ends the flow `cancelled`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _FlowScope:
    meta: FlowMeta
    calls: dict[str, int]

    def call_name(self, step: str) -> str:
        """A step called again in the same flow records under `step#2`, `step#3`, ..."""
        count = self.calls.get(step, 0) + 1
        self.calls[step] = count
        return step if count == 1 else f"{step}#{count}"


_flow_scope: ContextVar[_FlowScope | None] = ContextVar("erpgw_flow_scope", default=None)
_call_name: ContextVar[str | None] = ContextVar("erpgw_step_call", default=None)


def flow(
    name: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R | None]]]:
    """Declare a flow: a DBOS workflow whose body only calls steps and decides.

    Its record moves `running` -> `succeeded`; `cancelled` when an operator resolves one of its
    exceptions (the flow then returns None); `failed` when its body raises.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R | None]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
            return await _run_flow(_engine(), fn, args, kwargs)

        return DBOS.workflow(name=name)(run)

    return decorate


def flow_step(
    *,
    system: str,
    retry: Retry = STEP_RETRY,
    owner: OwnerTeam | None = None,
    input: type[msgspec.Struct] | None = None,
    name: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Declare a business step: one call to one platform, taking and returning plain values.

    Args:
        system: the platform it calls (`stripe`, `netsuite`, ...): shown on the flow, and one
            input of the owner rule.
        retry: how it retries an `UpstreamUnavailable`, from any platform (`STEP_RETRY`,
            `BUSY_PLATFORM`, `SHORT_OUTAGE`, `NO_RETRY` or a `Retry` of its own).
        owner: the team that owns its failures; default `exceptions.owner_for(...)`.
        input: the Struct of its single argument, checked when an operator edits the input;
            by default the contract is built from the step's signature.
        name: the business name on the flow; default the function's name.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        spec = StepSpec(
            ref=f"{fn.__module__}.{fn.__qualname__}",
            name=name or fn.__name__,
            system=system,
            owner=owner,
            fn=fn,
            declared_input=input,
        )
        _steps.register_step(spec)

        durable = DBOS.step(
            name=spec.ref,
            retries_allowed=retry.further > 0,
            max_attempts=retry.further + 1,
            interval_seconds=retry.interval_seconds,
            backoff_rate=retry.backoff_rate,
            should_retry=_retryable,
        )(_attempt_of(spec, fn))

        @functools.wraps(fn)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            # Outside a flow (or inside another step) a step is a plain call.
            if _flow_scope.get() is None or _steps.current_step() is not None:
                return await fn(*args, **kwargs)
            return await _run_step(_engine(), spec, durable, args, kwargs)

        return call

    return decorate


async def wait_for_approval(topic: str, *, timeout_seconds: float) -> Any | None:
    """Wait durably for a message on `topic` (sent with `FlowEngine.send`), the flow showing
    `waiting_approval` meanwhile; None when `timeout_seconds` pass first."""
    scope = _flow_scope.get()
    if scope is None:
        raise LookupError("wait_for_approval() is only defined inside a flow")
    if topic == DECISION_TOPIC:
        raise ValueError(f"topic {DECISION_TOPIC} is reserved for operator decisions")
    engine = _engine()
    await engine.transaction(
        "erpgw.flow_waiting", set_flow_status, scope.meta.id, "waiting_approval"
    )
    message = await DBOS.recv_async(topic, timeout_seconds=timeout_seconds)
    await engine.transaction("erpgw.flow_resumed", set_flow_status, scope.meta.id, "running")
    return message


async def wait_for_event(topic: str, *, timeout_seconds: float) -> Any | None:
    """Wait durably for a message on `topic` while the flow is idle (`waiting`: open to
    events, nothing to do until one comes); None when `timeout_seconds` pass first."""
    scope = _flow_scope.get()
    if scope is None:
        raise LookupError("wait_for_event() is only defined inside a flow")
    if topic == DECISION_TOPIC:
        raise ValueError(f"topic {DECISION_TOPIC} is reserved for operator decisions")
    engine = _engine()
    await engine.transaction("erpgw.flow_idle", set_flow_status, scope.meta.id, "waiting")
    message = await DBOS.recv_async(topic, timeout_seconds=timeout_seconds)
    await engine.transaction("erpgw.flow_resumed", set_flow_status, scope.meta.id, "running")
    return message


def activate(engine: FlowEngine | None) -> None:
    """Make `engine` the one flows run on (None: no engine is launched)."""
    global _active
    _active = engine


def active_engine() -> FlowEngine | None:
    return _active


def _engine() -> FlowEngine:
    if _active is None:
        raise ServiceUnavailable("The flow engine is not running")
    return _active


# -- inside flows (workflow code: deterministic, replayed on recovery) -------------------


async def _run_flow(
    engine: FlowEngine,
    fn: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> R | None:
    """The flow's body, its record moving `running` -> `succeeded` (or `cancelled`, `failed`)."""
    flow_id = DBOS.workflow_id
    assert flow_id is not None, "a flow runs inside a DBOS workflow"
    # Not a checkpointed step: the start is idempotent and runs again as the flow replays
    # (see `start_running`), which costs one statement where a datasource transaction cost
    # DBOS five (its checks, its two checkpoints) and two more commits.
    meta = await engine.start_running(flow_id, fn.__name__)
    token = _flow_scope.set(_FlowScope(meta=meta, calls={}))
    untrack = engine.track(asyncio.current_task())
    try:
        result = await fn(*args, **kwargs)
    except _Resolved as resolved:
        await engine.transaction(
            "erpgw.flow_cancelled",
            set_flow_status,
            flow_id,
            "cancelled",
            reason=resolved.reason,
        )
        engine.observer.flow_finished(meta.type, "cancelled")
        return None
    except (dbos_errors.DBOSException, sa_exc.DBAPIError):
        # The engine's own storage failed (a database gone, or re-created and not yet
        # upgraded): not the flow's outcome. Its record is left as it was, so the flow is
        # resumed or started again once the database serves, never `failed` for it.
        raise
    except Exception as exc:
        cause = StepFailure.of(exc).cause
        await engine.transaction(
            "erpgw.flow_failed", set_flow_status, flow_id, "failed", reason=cause
        )
        engine.observer.flow_finished(meta.type, "failed")
        raise
    finally:
        _flow_scope.reset(token)
        untrack()
    # Idempotent too, and the flow's last write: should the flow replay before DBOS records
    # it finished, the same status is written again.
    await engine.record(flow_ended(flow_id, "succeeded", now=utcnow()))
    engine.observer.flow_finished(meta.type, "succeeded")
    return result


async def _run_step(
    engine: FlowEngine,
    spec: StepSpec,
    durable: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> R:
    """The step, and the exception loop around it: a failure that retries did not cure
    waits for an operator, then the step runs again (new input maybe) or the flow ends."""
    scope = _flow_scope.get()
    assert scope is not None
    call = scope.call_name(spec.name)
    exception_id: str | None = None
    while True:
        token = _call_name.set(call)
        try:
            result = await durable(*args, **kwargs)
        except (StepFailure, dbos_errors.DBOSMaxStepRetriesExceeded) as exc:
            failure = _failure_of(exc)
        else:
            if exception_id is not None:
                await engine.transaction("erpgw.exception_closed", close_exception, exception_id)
            return result
        finally:
            _call_name.reset(token)
        opened, occurrence = await engine.transaction(
            "erpgw.exception_opened",
            stop_at_step,
            scope.meta,
            step=call,
            step_ref=spec.ref,
            system=spec.system,
            owner=spec.owner or owner_for(spec.system, spec.name, failure.error_type),
            error_class=failure.error_type.__name__,
            cause=failure.cause,
            input_json=spec.input_json(args, kwargs),
        )
        exception_id = opened
        decision = await _await_decision(opened, occurrence)
        if decision.action == "resolve":
            raise _Resolved(decision.reason or "resolved by an operator")
        if decision.input is not None:
            args, kwargs = spec.arguments(args, decision.input)
        await engine.transaction("erpgw.flow_resumed", set_flow_status, scope.meta.id, "running")


async def _await_decision(exception_id: str, occurrence: int) -> Decision:
    while True:
        message = await DBOS.recv_async(DECISION_TOPIC, timeout_seconds=DECISION_WAIT_SECONDS)
        # A decision about an earlier failure (a late double click) is not for this one.
        if (
            isinstance(message, Decision)
            and message.exception_id == exception_id
            and message.occurrence == occurrence
        ):
            return message


def _attempt_of(
    spec: StepSpec, fn: Callable[..., Awaitable[R]]
) -> Callable[..., Coroutine[Any, Any, R]]:
    """What DBOS runs as the step, once per attempt: records the attempt and its outcome, runs
    the step's code with its idempotency key and call context (an open circuit waits there
    without spending an attempt: the platform was never asked), and hands DBOS a
    `StepFailure`, which it can record and replay."""

    @functools.wraps(fn)
    async def attempt(*args: Any, **kwargs: Any) -> R:
        scope, call = _flow_scope.get(), _call_name.get()
        if scope is None or call is None:
            return await fn(*args, **kwargs)
        engine, flow_id = _engine(), scope.meta.id
        step = StepScope(flow_id=flow_id, name=call)
        began, started_at = time.perf_counter(), utcnow()
        # DBOS's step id orders the steps as the flow ran them.
        record = _StepRecord(engine, flow_id, call, spec.system, DBOS.step_id or 0, started_at)
        try:
            with _steps.running(step, scope.meta.correlation_id):
                result = await _waiting_out_outages(
                    engine, scope.meta, call, spec, fn, args, kwargs
                )
        except Exception as exc:
            engine.observer.step_attempted(spec.system, "failed", time.perf_counter() - began)
            failure = StepFailure.of(exc)
            with contextlib.suppress(Exception):
                await record.ended("running", error=failure.cause)
            raise failure from exc
        engine.observer.step_attempted(spec.system, "succeeded", time.perf_counter() - began)
        for money in step.money:
            engine.observer.money_moved(money)
        ids = {**_steps.refs_of(result), **step.external_ids}
        try:
            # The records the step made or found join the flow's trace (found by them later).
            await record.ended(
                "succeeded",
                external_ids=ids,
                trace_keys=keys_of_external_ids(ids),
                correlation_id=scope.meta.correlation_id,
                legal_entity=scope.meta.legal_entity,
            )
        except Exception as exc:
            # The platform did the work: a record we could not write must not fail the step
            # (an operator retry would only repeat the call).
            log.warning("step_record_failed", flow_id=flow_id, step=call, error=str(exc))
        return result

    return attempt


class _StepRecord:
    """The record of one attempt of a step: written once as the attempt ends, with its
    outcome; and, should it run past `RUNNING_MARKER_SECONDS`, as running meanwhile."""

    def __init__(
        self,
        engine: FlowEngine,
        flow_id: str,
        step: str,
        system: str,
        position: int,
        started_at: datetime,
    ) -> None:
        self._engine = engine
        self._flow_id = flow_id
        self._step = step
        self._system = system
        self._position = position
        self._started_at = started_at
        self._attempt_recorded = False
        self._marker: asyncio.Task[None] | None = None
        # A timer, not a sleeping task: most attempts end long before it fires, and
        # cancelling a timer costs the event loop less than a task that never ran.
        self._timer = asyncio.get_running_loop().call_later(
            RUNNING_MARKER_SECONDS, self._start_marking
        )

    def _start_marking(self) -> None:
        self._marker = asyncio.create_task(self._mark_running())

    async def _mark_running(self) -> None:
        try:
            await self._engine.write(
                record_attempt,
                self._flow_id,
                self._step,
                system=self._system,
                position=self._position,
                started_at=self._started_at,
            )
        except Exception as exc:
            # The attempt's end writes the record whole; meanwhile it is not shown running.
            log.warning("step_start_not_recorded", step=self._step, error=str(exc))
            return
        self._attempt_recorded = True

    async def ended(
        self,
        status: StepStatus,
        *,
        error: str | None = None,
        external_ids: dict[str, str] | None = None,
        trace_keys: list[tuple[TraceKeyKind, str]] | None = None,
        correlation_id: str | None = None,
        legal_entity: str | None = None,
    ) -> None:
        """The attempt ended: its outcome (and the trace keys of what it made or found) in
        one transaction (shared with other flows' steps ending at the same moment), written
        after the running marker's, never before it."""
        self._timer.cancel()
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)
        now = utcnow()
        await self._engine.record(
            step_ended(
                self._flow_id,
                self._step,
                system=self._system,
                position=self._position,
                started_at=self._started_at,
                status=status,
                attempt_recorded=self._attempt_recorded,
                now=now,
                error=error,
                external_ids=external_ids,
            ),
            *keys_touched(
                trace_keys or [],
                correlation_id=correlation_id,
                flow_id=self._flow_id,
                legal_entity=legal_entity,
                now=now,
            ),
        )


async def _waiting_out_outages(
    engine: FlowEngine,
    meta: FlowMeta,
    call: str,
    spec: StepSpec,
    fn: Callable[..., Awaitable[R]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> R:
    """The step's code, called again while its platform's breaker is open or its quota
    spent (no attempt spent: the platform was never asked). Past the step wait ceiling the
    integration team gets an exception, once; when the call goes through, the exception
    resolves itself with a note and the flow carries on."""
    since = utcnow()
    opened = False
    while True:
        try:
            result = await fn(*args, **kwargs)
        except UpstreamUnavailable as exc:
            if exc.code not in WAITING_CODES:
                raise
            waited = (utcnow() - since).total_seconds()
            if not opened and waited > engine.step_wait_ceiling_seconds:
                opened = await _open_wait(engine, meta, call, spec, exc, waited)
            await asyncio.sleep(_steps.circuit_wait(exc))
            continue
        if opened:
            waited = (utcnow() - since).total_seconds()
            note = f"Resolved by itself: {spec.system} answered again after {waited:.0f} s"
            try:
                await engine.resolve_wait(meta.id, note=note)
            except Exception as exc:
                # The engine's reaper resolves it on its next round.
                log.warning("wait_exception_not_resolved", flow_id=meta.id, error=str(exc))
        return result


async def _open_wait(
    engine: FlowEngine,
    meta: FlowMeta,
    call: str,
    spec: StepSpec,
    exc: UpstreamUnavailable,
    waited: float,
) -> bool:
    """Whether the wait exception could be written (else the next round tries again)."""
    reason = "its circuit breaker is open" if exc.code == "circuit_open" else "its quota is spent"
    cause = (
        f"Step {call} has waited {waited:.0f} s on {spec.system}: {reason} "
        f"(ceiling {engine.step_wait_ceiling_seconds:.0f} s); the flow continues by itself "
        "when the platform is back"
    )
    try:
        await engine.open_wait(
            meta.id, meta.type, call, spec.system, cause=cause, legal_entity=meta.legal_entity
        )
    except Exception as error:
        log.warning("wait_exception_not_opened", flow_id=meta.id, error=str(error))
        return False
    return True


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, StepFailure) and exc.retryable


def _failure_of(exc: Exception) -> StepFailure:
    if isinstance(exc, dbos_errors.DBOSMaxStepRetriesExceeded) and exc.errors:
        return StepFailure.of(exc.errors[-1])
    return StepFailure.of(exc)
