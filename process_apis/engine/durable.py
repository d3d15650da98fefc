"""Durable flows on DBOS Transact: the engine, and the decorators a flow module is written with.
The only module that imports `dbos`.

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
edited input; finished steps never rerun) or resolve (the flow ends `cancelled`). Flow and
exception transitions are written in DBOS datasource transactions (exactly once); per-attempt
step records are upserts keyed by flow and step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, ParamSpec, TypeVar, cast

import msgspec
import sqlalchemy as sa
import structlog
from dbos import (
    DBOS,
    AsyncSQLAlchemyDatasource,
    DBOSConfig,
    DBOSConfiguredInstance,
    Queue,
    SetWorkflowID,
    WorkflowHandleAsync,
)
from dbos import error as dbos_errors
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import Conflict, ServiceUnavailable, UpstreamUnavailable
from process_apis.engine import _steps
from process_apis.engine._executors import ExecutorRegistry
from process_apis.engine._steps import (
    StepFailure,
    StepScope,
    StepSpec,
    current_idempotency_key,
    report_external_ids,
)
from process_apis.engine.queue import close_exception, owner_for, stop_at_step
from process_apis.engine.records import (
    FlowMeta,
    UnfinishedFlow,
    create_flow,
    fail_unfinished,
    record_attempt,
    record_step_outcome,
    set_flow_status,
    start_running,
    unfinished_flows,
)
from process_apis.engine.store import create_process_engine, utcnow
from process_apis.exceptions import OwnerTeam

__all__ = [
    "APPLICATION_VERSION",
    "BUSY_PLATFORM",
    "NO_RETRY",
    "SHORT_OUTAGE",
    "STEP_RETRY",
    "Decision",
    "FlowEngine",
    "FlowHandle",
    "FlowInstance",
    "Retry",
    "current_idempotency_key",
    "default_system_database_url",
    "flow",
    "flow_class",
    "flow_step",
    "report_external_ids",
    "sync_database_url",
    "wait_for_approval",
]

APPLICATION_VERSION = "2026.12.1"
"""Pinned so a restart recovers the flows the previous process left (DBOS only recovers flows
of its own version). Bump it whenever a flow's sequence of steps changes, or a step's name (its
module path) does."""

APP_NAME = "erp-gateway"
FLOWS_QUEUE = "flows"
DECISION_TOPIC = "erpgw.operator"
DECISION_WAIT_SECONDS = 24 * 3600.0
ORPHAN_GRACE_SECONDS = 30.0
"""A pending flow record younger than this may still be getting its workflow (a start writes
the record first); only older ones count as missing their workflow."""
RECONCILE_BATCH = 200
_RESUMABLE = frozenset({"CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
_FINISHED = frozenset({"SUCCESS", "ERROR"})

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound="FlowInstance")

log = structlog.get_logger("process_apis.engine.durable")

_active: FlowEngine | None = None
"""The launched engine. DBOS is one instance per process and runs recovered and queued flows
from its own threads, where nothing of the caller's context is visible; flows find the engine
(its database) here."""

_instances: dict[type[FlowInstance], FlowInstance] = {}
"""The one instance of each flow class in this process: DBOS keeps the instances it knows for
the life of the process and refuses a second one under a known name, and every process must
use the same name so that one recovers another's flows."""


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


@dataclass(frozen=True)
class FlowHandle:
    """A started (or already existing) flow."""

    flow_id: str
    created: bool
    """False when a flow with this business key already existed (a duplicate delivery)."""
    workflow: WorkflowHandleAsync[Any]
    poll_interval_seconds: float = 1.0

    async def result(self) -> Any:
        """Wait for the flow to end; None when an operator resolved (cancelled) it."""
        return await self.workflow.get_result(polling_interval_sec=self.poll_interval_seconds)


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
            return await _engine()._run_flow(fn, args, kwargs)

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
            return await _engine()._run_step(spec, durable, args, kwargs)

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
    await engine._tx("erpgw.flow_waiting", set_flow_status, scope.meta.id, "waiting_approval")
    message = await DBOS.recv_async(topic, timeout_seconds=timeout_seconds)
    await engine._tx("erpgw.flow_resumed", set_flow_status, scope.meta.id, "running")
    return message


class FlowEngine:
    """Runs the process layer's flows on DBOS: one per process, launched in the app's lifespan
    on the app's event loop (DBOS then runs queued and recovered async flows on that loop).

    All state follows `database_url`: DBOS's system database is the SQLite file beside the app
    database (`<name>.dbos.sqlite`, WAL), or the PostgreSQL app database itself (schema
    `system_schema`). Flows run from the `flows` queue, at most `worker_concurrency` at once in
    this process and `global_concurrency` in all. Each engine writes a heartbeat to
    `executors`; an engine whose heartbeat is older than `executor_timeout_seconds` is taken
    for dead, and a live one resumes its pending flows (DBOS's `list_workflows` and
    `resume_workflow`). A flow record whose workflow is missing or already finished is
    reported at launch and when read (`reconcile`): resumed if it can be, else `failed`.
    """

    def __init__(
        self,
        *,
        database_url: str,
        executor_id: str | None = None,
        executor_prefix: str = "local",
        system_database_url: str | None = None,
        system_schema: str = "dbos",
        worker_concurrency: int = 8,
        global_concurrency: int | None = None,
        poll_interval_seconds: float = 0.25,
        heartbeat_seconds: float = 5.0,
        executor_timeout_seconds: float = 30.0,
        system_pool_size: int = 10,
        log_level: str = "WARNING",
    ) -> None:
        """
        Args:
            database_url: the gateway's async SQLAlchemy URL (flows, steps, exceptions).
            executor_id: fixed executor id (`ERPGW_EXECUTOR_ID`): a restart under the same id
                resumes this process's flows at once. Two live processes must never share one.
            executor_prefix: without a fixed id, the engine claims `{prefix}/{n}`, the lowest
                slot no live or unrecovered executor holds (prefix: `{host}:{port}`).
            poll_interval_seconds: how often queues and message waits poll the database.
        """
        self._database_url = database_url
        self._registered: dict[type[FlowInstance], dict[str, Any]] = {}
        self._fixed_executor_id = executor_id
        self._executor_prefix = executor_prefix
        self._system_database_url = system_database_url
        self._system_schema = system_schema
        self._worker_concurrency = worker_concurrency
        self._global_concurrency = global_concurrency
        self._poll = poll_interval_seconds
        self._heartbeat = heartbeat_seconds
        self._executor_timeout = executor_timeout_seconds
        self._system_pool_size = system_pool_size
        self._log_level = log_level
        # Keyed writes need no stronger isolation; SQLite knows only SERIALIZABLE.
        self._isolation: Literal["SERIALIZABLE", "READ COMMITTED"] = (
            "SERIALIZABLE" if database_url.startswith("sqlite") else "READ COMMITTED"
        )
        self._db: AsyncEngine | None = None
        self._executors: ExecutorRegistry | None = None
        self._datasource: AsyncSQLAlchemyDatasource | None = None
        self._queue: Queue | None = None
        self._executor_id: str | None = None
        self._background: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def executor_id(self) -> str:
        if self._executor_id is None:
            raise ServiceUnavailable("The flow engine is not running")
        return self._executor_id

    async def launch(self) -> None:
        """Start DBOS on the running loop, recover this executor's flows, start the heartbeat
        and the reaper of dead executors."""
        global _active
        if _active is not None:
            raise RuntimeError("a FlowEngine is already launched in this process")
        self._db = create_process_engine(self._database_url)
        self._executors = ExecutorRegistry(self._db, timeout_seconds=self._executor_timeout)
        self._executor_id = self._fixed_executor_id or await self._executors.claim(
            self._executor_prefix
        )
        # Before DBOS runs anything: a process that dies from here on has a heartbeat to expire.
        await self._executors.beat(self._executor_id)
        system_url = self._system_database_url or default_system_database_url(
            self._database_url
        )
        if system_url.startswith("sqlite"):
            await asyncio.to_thread(_prepare_sqlite, system_url)
        DBOS(config=self._config(system_url, self._executor_id))
        try:
            self._datasource = await AsyncSQLAlchemyDatasource.create(
                self._database_url, engine=self._db, schema=self._system_schema
            )
            _active = self
            self._hand_instances_to_dbos()
            # On the loop on purpose: DBOS adopts the running loop for async flows. DBOS
            # resumes this executor id's pending flows itself as it launches.
            DBOS.launch()
            self._queue = await DBOS.register_queue_async(
                FLOWS_QUEUE,
                worker_concurrency=self._worker_concurrency,
                global_concurrency=self._global_concurrency,
                polling_interval_sec=self._poll,
            )
        except BaseException:
            _active = None
            await _destroy_dbos()
            await self._db.dispose()
            raise
        self._background = [
            asyncio.create_task(self._every(self._beat)),
            asyncio.create_task(self._every(self.recover_dead_executors)),
        ]
        log.info("flow_engine_launched", executor_id=self._executor_id, system=_redact(system_url))
        try:
            await self.reconcile_unfinished()
        except Exception as exc:
            log.warning("flow_reconcile_failed", error=str(exc))

    def register(self, flow_type: type[F], /, **ports: Any) -> F:
        """The instance of `flow_type` this engine runs, on `ports` (its constructor's keyword
        arguments). Register every flow class before `launch`, so DBOS knows each instance
        before it recovers flows.

        One instance per class lives in a process (DBOS keeps what it was given for the life
        of the process); an engine launched later in the same process (tests) binds it to
        that engine's ports as it launches.
        """
        if self._queue is not None:
            raise RuntimeError(f"register {flow_type.__name__} before the flow engine launches")
        if not flow_type.flow_name:
            raise TypeError(f"{flow_type.__name__} is not declared with @flow_class(name)")
        instance = _instances.get(flow_type)
        if instance is None:
            instance = _instances[flow_type] = flow_type(**ports)
        self._registered[flow_type] = ports
        return cast(F, instance)

    def _hand_instances_to_dbos(self) -> None:
        """Bind each registered instance to this engine's ports and register it with DBOS
        (after `DBOS(config)`, before `DBOS.launch()`)."""
        for flow_type, ports in self._registered.items():
            instance = _instances[flow_type]
            flow_type.__init__(instance, **ports)
            DBOSConfiguredInstance.__init__(instance, flow_type.flow_name)

    async def shutdown(self) -> None:
        """Stop DBOS; flows in flight stay pending and resume on the next launch of this
        executor id, or on a live executor, which sees this one's heartbeat as stale at once."""
        global _active
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await self._cancel_running()
        await _destroy_dbos()
        await self._cancel_running()
        self._queue = None
        _active = None
        if self._db is not None:
            if self._executors is not None and self._executor_id is not None:
                with contextlib.suppress(Exception):
                    await self._executors.hand_over(self._executor_id)
            await self._db.dispose()
            self._db = None

    async def start(
        self,
        flow_type: str,
        business_key: str,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        correlation_id: str | None = None,
        crm_account: str | None = None,
        legal_entity: str | None = None,
    ) -> FlowHandle:
        """Start flow `fn(*args)` under id `business_key` (e.g. `q2c:{opportunity_id}`).

        Starting a key that already exists returns that flow: a duplicate delivery is the same
        flow, and its arguments are those of the first start.

        Raises:
            Conflict: the key belongs to a flow of another function.
            ServiceUnavailable: the engine is not running.
        """
        queue = self._require_queue()
        async with self._require_db().begin() as conn:
            created = await create_flow(
                conn,
                flow_id=business_key,
                flow_type=flow_type,
                correlation_id=correlation_id,
                crm_account=crm_account,
                legal_entity=legal_entity,
                now=utcnow(),
            )
        try:
            with SetWorkflowID(business_key):
                workflow = await queue.enqueue_async(fn, *args)
        except dbos_errors.DBOSConflictingWorkflowError as exc:
            raise Conflict(
                f"Flow {business_key} already exists as another kind of flow",
                code="flow_key_taken",
            ) from exc
        return FlowHandle(
            flow_id=business_key,
            created=created,
            workflow=workflow,
            poll_interval_seconds=self._poll,
        )

    async def decide(self, flow_id: str, decision: Decision) -> None:
        """Deliver an operator's decision to the flow waiting on an exception."""
        self._require_queue()
        await DBOS.send_async(flow_id, decision, topic=DECISION_TOPIC)

    async def send(self, flow_id: str, topic: str, message: Any) -> None:
        """Deliver a message to a flow waiting in `wait_for_approval(topic)` (now or later)."""
        self._require_queue()
        await DBOS.send_async(flow_id, message, topic=topic)

    @staticmethod
    def validate_input(step_ref: str, raw: Any) -> dict[str, Any]:
        """An operator's edited input checked against the step's input contract."""
        return _steps.validate_step_input(step_ref, raw)

    async def recover_dead_executors(self) -> list[str]:
        """Resume the pending flows of every executor whose heartbeat is stale; never this
        one's, nor a live one's. Returns the executors recovered.

        A live engine first takes a lease on the dead executor (its heartbeat renewed, so no
        other engine recovers it meanwhile; should this one die too, the lease runs out), then
        puts each of its pending flows back on the flows queue (`DBOS.resume_workflow`), whose
        atomic claim gives each to exactly one executor, and forgets the dead one.
        """
        registry = self._require_executors()
        dead = await registry.dead(excluding=self.executor_id)
        recovered: list[str] = []
        for executor_id in dead:
            lease = await registry.lease(executor_id)
            if lease is None:
                continue
            pending = await DBOS.list_workflows_async(
                status=["PENDING", "ENQUEUED"],
                executor_id=executor_id,
                load_input=False,
                load_output=False,
            )
            for workflow in pending:
                await DBOS.resume_workflow_async(workflow.workflow_id, queue_name=FLOWS_QUEUE)
            await registry.forget(executor_id, lease=lease)
            recovered.append(executor_id)
            log.warning(
                "executor_recovered", dead=executor_id, by=self.executor_id, flows=len(pending)
            )
        return recovered

    async def reconcile(self, flow_id: str) -> bool:
        """Check an unfinished flow record against its durable workflow: a workflow that
        stopped without finishing (cancelled, out of recovery attempts) is resumed; one that is
        missing (past `ORPHAN_GRACE_SECONDS`: a start writes the record just before its
        workflow) or finished without saying so fails the flow with the reason. Returns True
        when the record changed or the flow was resumed."""
        if self._queue is None or self._db is None:
            return False  # not running: nothing to check against
        async with self._db.connect() as conn:
            unfinished = await unfinished_flows(conn, flow_ids=[flow_id])
        if not unfinished:
            return False
        status = await DBOS.get_workflow_status_async(flow_id)
        return await self._reconcile_one(unfinished[0], status.status if status else None)

    async def reconcile_unfinished(self) -> int:
        """`reconcile` every unfinished flow record (at launch); returns how many changed."""
        db = self._require_db()
        async with db.connect() as conn:
            records = await unfinished_flows(conn)
        changed = 0
        for start in range(0, len(records), RECONCILE_BATCH):
            batch = records[start : start + RECONCILE_BATCH]
            statuses = {
                status.workflow_id: status.status
                for status in await DBOS.list_workflows_async(
                    workflow_ids=[record.id for record in batch],
                    load_input=False,
                    load_output=False,
                )
            }
            for record in batch:
                changed += await self._reconcile_one(record, statuses.get(record.id))
        return changed

    async def _reconcile_one(self, record: UnfinishedFlow, workflow_status: str | None) -> bool:
        if workflow_status in _RESUMABLE:
            log.warning("flow_resumed", flow_id=record.id, workflow_status=workflow_status)
            await DBOS.resume_workflow_async(record.id, queue_name=FLOWS_QUEUE)
            return True
        if workflow_status is None:
            age = (utcnow() - record.created_at).total_seconds()
            if record.status == "pending" and age < ORPHAN_GRACE_SECONDS:
                return False
            reason = (
                "Its durable workflow is missing (the engine's system database does not "
                "hold it); start the flow again under a new key"
            )
        elif workflow_status in _FINISHED:
            reason = (
                f"Its durable workflow had already ended ({workflow_status}) without recording "
                "it here: the key ran before against another database"
            )
        else:
            return False
        async with self._require_db().begin() as conn:
            changed = await fail_unfinished(conn, record.id, reason=reason, now=utcnow())
        if changed:
            log.warning("flow_without_workflow", flow_id=record.id, reason=reason)
        return changed

    # -- inside flows (workflow code: deterministic, replayed on recovery) ---------------

    async def _run_flow(
        self, fn: Callable[..., Awaitable[R]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R | None:
        flow_id = DBOS.workflow_id
        assert flow_id is not None, "a flow runs inside a DBOS workflow"
        meta = await self._tx("erpgw.flow_started", start_running, flow_id, fn.__name__)
        token = _flow_scope.set(_FlowScope(meta=meta, calls={}))
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            result = await fn(*args, **kwargs)
        except _Resolved as resolved:
            await self._tx(
                "erpgw.flow_cancelled",
                set_flow_status,
                flow_id,
                "cancelled",
                reason=resolved.reason,
            )
            return None
        except dbos_errors.DBOSException:
            raise
        except Exception as exc:
            cause = StepFailure.of(exc).cause
            await self._tx("erpgw.flow_failed", set_flow_status, flow_id, "failed", reason=cause)
            raise
        finally:
            _flow_scope.reset(token)
            if task is not None:
                self._running.discard(task)
        await self._tx("erpgw.flow_succeeded", set_flow_status, flow_id, "succeeded")
        return result

    async def _run_step(
        self,
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
                    await self._tx("erpgw.exception_closed", close_exception, exception_id)
                return result
            finally:
                _call_name.reset(token)
            opened, occurrence = await self._tx(
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
            decision = await self._await_decision(opened, occurrence)
            if decision.action == "resolve":
                raise _Resolved(decision.reason or "resolved by an operator")
            if decision.input is not None:
                args, kwargs = spec.arguments(args, decision.input)
            await self._tx("erpgw.flow_resumed", set_flow_status, scope.meta.id, "running")

    async def _await_decision(self, exception_id: str, occurrence: int) -> Decision:
        while True:
            message = await DBOS.recv_async(DECISION_TOPIC, timeout_seconds=DECISION_WAIT_SECONDS)
            # A decision about an earlier failure (a late double click) is not for this one.
            if (
                isinstance(message, Decision)
                and message.exception_id == exception_id
                and message.occurrence == occurrence
            ):
                return message

    async def _tx(
        self, name: str, fn: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any
    ) -> R:
        """`fn(session, *args, now=..., **kwargs)` in a DBOS datasource transaction, committed
        with its checkpoint: a flow replayed after a crash reads the recorded result back
        instead of writing again."""
        datasource = self._datasource
        assert datasource is not None, "the flow engine is not launched"

        async def transaction() -> R:
            return await fn(datasource.sql_session(), *args, now=utcnow(), **kwargs)

        return await datasource.run_tx_step_async(
            {"name": name, "isolation_level": self._isolation}, transaction
        )

    async def _write(self, fn: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        """A plain transaction, for the keyed upserts a step makes on each attempt (a
        datasource transaction inside a step would run as a plain one anyway)."""
        async with self._require_db().begin() as conn:
            await fn(conn, *args, now=utcnow(), **kwargs)

    # -- plumbing -------------------------------------------------------------------------

    async def _beat(self) -> None:
        await self._require_executors().beat(self.executor_id)

    async def _every(self, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await job()
            except Exception as exc:
                log.warning("flow_engine_job_failed", job=job.__name__, error=str(exc))

    async def _cancel_running(self) -> None:
        tasks = [task for task in self._running if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _config(self, system_url: str, executor_id: str) -> DBOSConfig:
        return {
            "name": APP_NAME,
            "system_database_url": system_url,
            "dbos_system_schema": self._system_schema,
            "application_version": APPLICATION_VERSION,
            "executor_id": executor_id,
            "sys_db_pool_size": self._system_pool_size,
            "notification_listener_polling_interval_sec": self._poll,
            "log_level": self._log_level,
        }

    def _require_db(self) -> AsyncEngine:
        if self._db is None:
            raise ServiceUnavailable("The flow engine is not running")
        return self._db

    def _require_executors(self) -> ExecutorRegistry:
        if self._executors is None:
            raise ServiceUnavailable("The flow engine is not running")
        return self._executors

    def _require_queue(self) -> Queue:
        if self._queue is None:
            raise ServiceUnavailable("The flow engine is not running")
        return self._queue


def sync_database_url(url: str) -> str:
    """The synchronous twin of an async SQLAlchemy URL (DBOS's system database is sync)."""
    return url.replace("sqlite+aiosqlite", "sqlite").replace(
        "postgresql+asyncpg", "postgresql+psycopg"
    )


def default_system_database_url(database_url: str) -> str:
    """Where DBOS keeps its state, so that one URL holds all state: a PostgreSQL app database
    itself; beside a SQLite app database file, `<name>.dbos.sqlite` (`var/erp-gateway.db` ->
    `var/erp-gateway.dbos.sqlite`)."""
    if database_url.startswith("postgresql"):
        return sync_database_url(database_url)
    url = sa.make_url(database_url)
    if not url.database or url.database == ":memory:":
        raise ValueError("the flow engine needs a file or server database, not an in-memory one")
    path = Path(url.database)
    return f"sqlite:///{path.with_name(path.stem + '.dbos.sqlite')}"


def _engine() -> FlowEngine:
    if _active is None:
        raise ServiceUnavailable("The flow engine is not running")
    return _active


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
        try:
            # DBOS's step id orders the steps as the flow ran them.
            position = DBOS.step_id or 0
            await engine._write(
                record_attempt, flow_id, call, system=spec.system, position=position
            )
            with _steps.running(step, scope.meta.correlation_id):
                while True:
                    try:
                        result = await fn(*args, **kwargs)
                        break
                    except UpstreamUnavailable as exc:
                        if exc.code != "circuit_open":
                            raise
                        await asyncio.sleep(_steps.circuit_wait(exc))
        except Exception as exc:
            failure = StepFailure.of(exc)
            with contextlib.suppress(Exception):
                await engine._write(
                    record_step_outcome, flow_id, call, status="running", error=failure.cause
                )
            raise failure from exc
        ids = {**_steps.refs_of(result), **step.external_ids}
        try:
            await engine._write(
                record_step_outcome, flow_id, call, status="succeeded", external_ids=ids
            )
        except Exception as exc:
            # The platform did the work: a record we could not write must not fail the step
            # (an operator retry would only repeat the call).
            log.warning("step_record_failed", flow_id=flow_id, step=call, error=str(exc))
        return result

    return attempt


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, StepFailure) and exc.retryable


def _failure_of(exc: Exception) -> StepFailure:
    if isinstance(exc, dbos_errors.DBOSMaxStepRetriesExceeded) and exc.errors:
        return StepFailure.of(exc.errors[-1])
    return StepFailure.of(exc)


async def _destroy_dbos() -> None:
    """DBOS.destroy() off the loop (it joins DBOS's threads, which may be waiting on the loop).

    DBOS made its own thread pool the loop's default executor and shuts that pool down here,
    so the loop gets a fresh default executor: `asyncio.to_thread` keeps working after.
    """
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="erpgw-dbos-stop") as stopper:
        await loop.run_in_executor(stopper, DBOS.destroy)
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))


def _prepare_sqlite(url: str) -> None:
    """The system database file with WAL on (DBOS sets a busy timeout but not the journal)."""
    path = Path(url.split(":///", 1)[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _redact(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)
