"""The flow engine: runs the process layer's flows on DBOS Transact, one per process. With
`process_apis.engine.durable` (how flows are written) the only modules that import `dbos`.

It registers the flow classes' instances (`register`), launches DBOS on the app's loop,
starts flows under their business keys, delivers operators' decisions and approvals, keeps
a heartbeat per executor, resumes the pending flows of dead executors, and reconciles flow
records with their workflows so that none is left pending without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

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
from dbos import _dbos as _dbos_internals
from dbos import error as dbos_errors
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.audit import (
    AuditActor,
    AuditEvent,
    AuditTrail,
    FlowSource,
    gateway_target,
    system_actor,
)
from contracts.context import current_context
from contracts.errors import Conflict, ServiceUnavailable
from process_apis.engine import _stalls, _steps, durable
from process_apis.engine._batches import BatchWriter, Write
from process_apis.engine._executors import ExecutorRegistry, SlotLock
from process_apis.engine.durable import DECISION_TOPIC, Decision, FlowInstance
from process_apis.engine.observer import FlowObserver, NoObserver
from process_apis.engine.records import (
    FlowMeta,
    UnfinishedFlow,
    create_flow,
    fail_unfinished,
    start_running,
    unfinished_flows,
)
from process_apis.engine.store import (
    create_process_engine,
    transaction_retried_if_dropped,
    utcnow,
)
from process_apis.engine.system_database import (
    default_system_database_url,
    prepare_sqlite,
    redact,
)
from process_apis.engine.traces import find_origin, record_trace_keys

__all__ = [
    "APPLICATION_VERSION",
    "ORPHAN_GRACE_SECONDS",
    "FlowEngine",
    "FlowHandle",
    "migrate_engine_storage",
]

APPLICATION_VERSION = "2026.12.2"
"""Pinned so a restart recovers the flows the previous process left (DBOS only recovers flows
of its own version). Bump it whenever a flow's sequence of steps changes, or a step's name (its
module path) does."""

APP_NAME = "erp-gateway"
FLOWS_QUEUE = "flows"
ORPHAN_GRACE_SECONDS = 30.0
"""A pending flow record younger than this may still be getting its workflow (a start writes
the record first); only older ones count as missing their workflow."""
RECONCILE_BATCH = 200
WAIT_ERROR_PREFIX = "Waiting past the ceiling:"
_RESUMABLE = frozenset({"CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
_FINISHED = frozenset({"SUCCESS", "ERROR"})

R = TypeVar("R")
F = TypeVar("F", bound=FlowInstance)

log = structlog.get_logger("process_apis.engine.flow_engine")

_instances: dict[type[FlowInstance], FlowInstance] = {}
"""The one instance of each flow class in this process: DBOS keeps the instances it knows for
the life of the process and refuses a second one under a known name, and every process must
use the same name so that one recovers another's flows."""


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
        slot_lock_dir: Path | None = None,
        system_database_url: str | None = None,
        system_schema: str = "dbos",
        worker_concurrency: int = 8,
        global_concurrency: int | None = None,
        poll_interval_seconds: float = 0.25,
        heartbeat_seconds: float = 5.0,
        executor_timeout_seconds: float = 30.0,
        pool_size: int = 10,
        log_level: str = "WARNING",
        step_wait_ceiling_seconds: float = 900.0,
        observer: FlowObserver | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        """
        Args:
            database_url: the gateway's async SQLAlchemy URL (flows, steps, exceptions).
            executor_id: fixed executor id (`ERPGW_EXECUTOR_ID`): a restart under the same id
                resumes this process's flows at once. Two live processes must never share one.
            executor_prefix: without a fixed id, the engine claims `{prefix}/{n}`, the lowest
                slot no live or unrecovered executor holds (prefix: `{host}:{port}`).
            slot_lock_dir: a directory on this host for the slots' file locks: with it, a
                process restarted on the same host, port and worker slot takes its dead
                predecessor's id and resumes its flows at once, instead of waiting for the
                dead one's heartbeat to go stale.
            poll_interval_seconds: how often queues and message waits poll the database.
            step_wait_ceiling_seconds: how long a flow may go without progress (a step
                waiting on an open breaker or a spent quota, an outage) before the integration
                team gets an exception; the flow keeps waiting and resumes by itself.
            observer: told of flows, steps, money and webhooks (the gateway's metrics).
            pool_size: PostgreSQL connections at most in each of the engine's two pools (its
                records', DBOS's system database's).
            audit: the audit trail every accepted start request is recorded in (with its
                source, and whether it created the flow or found it there).
        """
        self.observer: FlowObserver = observer or NoObserver()
        self._audit = audit
        self._database_url = database_url
        self._registered: dict[type[FlowInstance], dict[str, Any]] = {}
        self._fixed_executor_id = executor_id
        self._executor_prefix = executor_prefix
        self._slot_lock_dir = slot_lock_dir
        self._slot_lock: SlotLock | None = None
        self._system_database_url = system_database_url
        self._system_schema = system_schema
        self._worker_concurrency = worker_concurrency
        self._global_concurrency = global_concurrency
        self._poll = poll_interval_seconds
        self._heartbeat = heartbeat_seconds
        self._executor_timeout = executor_timeout_seconds
        self._pool_size = pool_size
        self._log_level = log_level
        self.step_wait_ceiling_seconds = step_wait_ceiling_seconds
        # Keyed writes need no stronger isolation; SQLite knows only SERIALIZABLE.
        self._isolation: Literal["SERIALIZABLE", "READ COMMITTED"] = (
            "SERIALIZABLE" if database_url.startswith("sqlite") else "READ COMMITTED"
        )
        self._db: AsyncEngine | None = None
        self._batches: BatchWriter | None = None
        self._system_url: str | None = None
        self._system_probe: sa.Engine | None = None
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

    @property
    def running(self) -> bool:
        """Whether the engine is launched (and flows can be started)."""
        return self._queue is not None

    async def launch(self) -> None:
        """Start DBOS on the running loop, recover this executor's flows, start the heartbeat
        and the reaper of dead executors."""
        if durable.active_engine() is not None:
            raise RuntimeError("a FlowEngine is already launched in this process")
        self._db = create_process_engine(self._database_url, pool_size=self._pool_size)
        self._batches = BatchWriter(self._db)
        self._executors = ExecutorRegistry(self._db, timeout_seconds=self._executor_timeout)
        if self._fixed_executor_id is not None:
            self._executor_id = self._fixed_executor_id
        elif self._slot_lock_dir is not None:
            self._executor_id, self._slot_lock = await self._executors.claim_slot(
                self._executor_prefix, self._slot_lock_dir
            )
        else:
            self._executor_id = await self._executors.claim(self._executor_prefix)
        # Before DBOS runs anything: a process that dies from here on has a heartbeat to expire.
        await self._executors.beat(self._executor_id)
        system_url = self._system_database_url or default_system_database_url(self._database_url)
        if system_url.startswith("sqlite"):
            await asyncio.to_thread(prepare_sqlite, system_url)
        self._system_url = system_url
        DBOS(config=self._config(system_url, self._executor_id))
        try:
            self._datasource = await AsyncSQLAlchemyDatasource.create(
                self._database_url, engine=self._db, schema=self._system_schema
            )
            durable.activate(self)
            self._hand_instances_to_dbos()
            # On the loop on purpose: DBOS adopts the running loop for async flows. DBOS
            # resumes this executor id's pending flows itself as it launches.
            DBOS.launch()
            self._queue = await self._register_queue()
        except BaseException:
            durable.activate(None)
            await _destroy_dbos()
            await self._db.dispose()
            self._release_slot()
            raise
        self._background = [
            asyncio.create_task(self._every(self._beat)),
            asyncio.create_task(self._every(self.recover_dead_executors)),
            asyncio.create_task(self._every(self._keep_registered)),
            asyncio.create_task(self._every(self.reap_stalled)),
        ]
        log.info("flow_engine_launched", executor_id=self._executor_id, system=redact(system_url))
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
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        await self._cancel_running()
        await _destroy_dbos()
        await self._cancel_running()
        self._queue = None
        durable.activate(None)
        if self._system_probe is not None:
            self._system_probe.dispose()
            self._system_probe = None
        if self._batches is not None:
            await self._batches.close()
            self._batches = None
        if self._db is not None:
            if self._executors is not None and self._executor_id is not None:
                with contextlib.suppress(Exception):
                    await self._executors.hand_over(self._executor_id)
            await self._db.dispose()
            self._db = None
        self._release_slot()

    def _release_slot(self) -> None:
        if self._slot_lock is not None:
            self._slot_lock.release()
            self._slot_lock = None

    async def check_storage(self) -> None:
        """Nothing when DBOS's system tables are there (or the engine is not running).

        Raises:
            LookupError: the tables are missing (a database re-created empty and not yet
                migrated: `erp-gateway db upgrade`).
            Exception: the driver's error when the system database cannot be reached.
        """
        if self._system_url is None or self._queue is None:
            return
        if self._system_probe is None:
            self._system_probe = sa.create_engine(
                self._system_url, pool_size=1, max_overflow=0, pool_pre_ping=True
            )
        probe = self._system_probe
        schema = None if self._system_url.startswith("sqlite") else self._system_schema

        def has_tables() -> bool:
            with probe.connect() as conn:
                return sa.inspect(conn).has_table("workflow_status", schema=schema)

        if not await asyncio.to_thread(has_tables):
            raise LookupError("the durable engine's system tables are missing")

    async def start(
        self,
        flow_type: str,
        business_key: str,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        correlation_id: str | None = None,
        crm_account: str | None = None,
        legal_entity: str | None = None,
        trace_keys: Mapping[str, str] | None = None,
        record_correlation_id: str | None = None,
        source: FlowSource = "api",
        actor: AuditActor | None = None,
    ) -> FlowHandle:
        """Start flow `fn(*args)` under id `business_key` (e.g. `q2c:{opportunity_id}`).

        Starting a key that already exists returns that flow: a duplicate delivery is the same
        flow, and its arguments are those of the first start. Either way the request is
        audited (`flow.start`) with its `source` and `actor` (default: the calling client,
        else the gateway).

        The flow joins a trace: that of the record it is about when the record carries one
        (`record_correlation_id`, from its metadata) or a trace already holds one of its
        `trace_keys` (`deal`, `customer`, `subscription`, `invoice`: the flow that made the
        record is named its cause), else the caller's `correlation_id`, else a new one.

        Raises:
            Conflict: the key belongs to a flow of another function.
            ServiceUnavailable: the engine is not running.
        """
        queue = self._require_queue()
        # The record's transaction commits only once the workflow is enqueued, so no record
        # is ever left pending without a workflow; should this process die between the two,
        # the workflow writes its record itself as it starts (`records.start_running`).
        keys = {kind: value for kind, value in (trace_keys or {}).items() if value}
        if crm_account:
            keys.setdefault("customer", crm_account)
        async with self._require_db().begin() as conn:
            origin = await find_origin(conn, keys, excluding=business_key)
            correlation = (
                record_correlation_id
                or (origin.correlation_id if origin else None)
                or correlation_id
                or uuid.uuid4().hex
            )
            now = utcnow()
            created = await create_flow(
                conn,
                flow_id=business_key,
                flow_type=flow_type,
                correlation_id=correlation,
                crm_account=crm_account,
                legal_entity=legal_entity,
                now=now,
                caused_by=origin.flow_id if origin else None,
            )
            if created:
                await record_trace_keys(
                    conn,
                    keys.items(),
                    correlation_id=correlation,
                    flow_id=business_key,
                    legal_entity=legal_entity,
                    now=now,
                )
            try:
                with SetWorkflowID(business_key):
                    workflow = await queue.enqueue_async(fn, *args)
            except dbos_errors.DBOSConflictingWorkflowError as exc:
                raise Conflict(
                    f"Flow {business_key} already exists as another kind of flow",
                    code="flow_key_taken",
                ) from exc
        if created:
            self.observer.flow_started(flow_type)
        await self.record_start(
            flow_type,
            business_key,
            created=created,
            source=source,
            actor=actor,
            legal_entity=legal_entity,
            correlation_id=correlation_id,
        )
        return FlowHandle(
            flow_id=business_key,
            created=created,
            workflow=workflow,
            poll_interval_seconds=self._poll,
        )

    async def record_start(
        self,
        flow_type: str,
        flow_id: str,
        *,
        created: bool,
        source: FlowSource,
        actor: AuditActor | None,
        legal_entity: str | None,
        correlation_id: str | None = None,
    ) -> None:
        """Audit a start request: `start` does for every request it takes, and a service
        that answers a request with the flow that already exists (without `start`) calls it."""
        if self._audit is None:
            return
        await self._audit.record(
            AuditEvent(
                action="flow.start",
                actor=actor or _calling_client(),
                target=gateway_target(flow_id),
                legal_entity=legal_entity,
                correlation_id=correlation_id,
                detail={"flow_type": flow_type, "source": source, "created": created},
            )
        )

    async def has_workflow(self, flow_id: str) -> bool:
        """Whether the durable workflow of flow `flow_id` exists (a record without one was
        written before its workflow by an older gateway, or its system database was lost)."""
        self._require_queue()
        return await DBOS.get_workflow_status_async(flow_id) is not None

    async def decide(self, flow_id: str, decision: Decision) -> None:
        """Deliver an operator's decision to the flow waiting on an exception.

        Raises:
            Conflict: the flow has no durable workflow to take it (its record outlived the
                engine's state, e.g. a database restored without the engine's tables).
        """
        self._require_queue()
        try:
            await DBOS.send_async(flow_id, decision, topic=DECISION_TOPIC)
        except dbos_errors.DBOSNonExistentWorkflowError as exc:
            raise Conflict(
                f"Flow {flow_id} has no durable workflow to take this decision", code="no_workflow"
            ) from exc

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

    async def reap_stalled(self) -> list[str]:
        """Open an exception for the integration team for each unfinished flow that has made
        no progress for longer than the step wait ceiling and has none open; resolve (with a
        note) those whose flow has moved on since. Runs every heartbeat; returns the flows
        given an exception now (none when a step opened one at the same moment: the next
        heartbeat looks again)."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.step_wait_ceiling_seconds)
        try:
            return await self._reap(now, cutoff)
        except sa.exc.IntegrityError:
            return []

    async def _reap(self, now: datetime, cutoff: datetime) -> list[str]:
        async with self._require_db().begin() as conn:
            await _stalls.resolve_waits(conn, now=now)
            stalled = await _stalls.stalled_flows(conn, cutoff=cutoff)
            for flow in stalled:
                waited = int((now - flow.last_progress).total_seconds())
                where = (
                    f"at step {flow.step} on {flow.system}"
                    if flow.step
                    else "before its first step"
                )
                await _stalls.open_wait_exception(
                    conn,
                    flow_id=flow.id,
                    flow_type=flow.type,
                    step=flow.step,
                    system=flow.system,
                    legal_entity=flow.legal_entity,
                    cause=(
                        f"{WAIT_ERROR_PREFIX} {flow.status} {where} with no progress for "
                        f"{waited} s (ceiling {self.step_wait_ceiling_seconds:.0f} s); it "
                        "continues by itself when the platform is back"
                    ),
                    now=now,
                )
        for flow in stalled:
            log.warning("flow_past_wait_ceiling", flow_id=flow.id, step=flow.step)
        return [flow.id for flow in stalled]

    # -- for the flow runtime (`process_apis.engine.durable`) --------------------------

    async def open_wait(
        self,
        flow_id: str,
        flow_type: str,
        step: str,
        system: str,
        *,
        cause: str,
        legal_entity: str | None,
    ) -> None:
        """A step has waited past the ceiling: the integration team's exception (the flow
        keeps running). For the flow runtime.

        The reaper may open the flow's exception at the same moment; the loser of that race
        finds the winner's on its second look and refines it."""
        for attempt in (1, 2):
            try:
                async with self._require_db().begin() as conn:
                    await _stalls.open_wait_exception(
                        conn,
                        flow_id=flow_id,
                        flow_type=flow_type,
                        step=step,
                        system=system,
                        legal_entity=legal_entity,
                        cause=cause,
                        now=utcnow(),
                        refine=True,
                    )
                return
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise

    async def resolve_wait(self, flow_id: str, *, note: str) -> None:
        """The waiting step went through: its wait exception resolves itself with `note`."""
        async with self._require_db().begin() as conn:
            await _stalls.resolve_waits(conn, now=utcnow(), flow_id=flow_id, note=note)

    async def transaction(
        self, name: str, fn: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any
    ) -> R:
        """`fn(session, *args, now=..., **kwargs)` in a DBOS datasource transaction, committed
        with its checkpoint: a flow replayed after a crash reads the recorded result back
        instead of writing again. For the flow runtime."""
        datasource = self._datasource
        assert datasource is not None, "the flow engine is not launched"

        async def transaction() -> R:
            return await fn(datasource.sql_session(), *args, now=utcnow(), **kwargs)

        return await datasource.run_tx_step_async(
            {"name": name, "isolation_level": self._isolation}, transaction
        )

    def track(self, task: asyncio.Task[Any] | None) -> Callable[[], None]:
        """Count `task` (a flow running here) among those `shutdown` cancels; returns the call
        that stops counting it."""
        if task is None:
            return lambda: None
        self._running.add(task)
        return lambda: self._running.discard(task)

    async def start_running(self, flow_id: str, flow_type: str) -> FlowMeta:
        """The flow's record as its body starts (`records.start_running`), in a plain
        transaction. For the flow runtime."""

        async def start(conn: AsyncConnection) -> FlowMeta:
            return await start_running(conn, flow_id, flow_type, now=utcnow())

        return await transaction_retried_if_dropped(self._require_db(), start)

    async def record(self, *writes: Write) -> None:
        """Commit `writes` (a step's end, a flow's end), sharing the transaction with other
        flows' writes of the same moment; returns once they are committed. For the flow
        runtime."""
        if self._batches is None:
            raise ServiceUnavailable("The flow engine is not running")
        await self._batches.write(*writes)

    async def write(self, fn: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
        """A plain transaction, for the keyed upserts a step makes on each attempt (a
        datasource transaction inside a step would run as a plain one anyway). For the flow
        runtime."""
        async with self._require_db().begin() as conn:
            await fn(conn, *args, now=utcnow(), **kwargs)

    # -- plumbing -------------------------------------------------------------------------

    async def _beat(self) -> None:
        await self._require_executors().beat(self.executor_id)

    async def _register_queue(self) -> Queue:
        return await DBOS.register_queue_async(
            FLOWS_QUEUE,
            worker_concurrency=self._worker_concurrency,
            global_concurrency=self._global_concurrency,
            polling_interval_sec=self._poll,
        )

    async def _keep_registered(self) -> None:
        """A system database lost and re-created empty (`erp-gateway db upgrade`) no longer
        knows this application version nor the flows queue, and DBOS then runs nothing from
        it (its queue worker exits once the queue's row is gone): register both again, so
        the running gateway resumes without a restart."""
        if await DBOS.retrieve_queue_async(FLOWS_QUEUE) is not None:
            return
        # DBOS registers the version only as it launches; its system database handle is
        # the one way to do it again in a running process.
        system_database = _dbos_internals._get_dbos_instance()._sys_db
        await asyncio.to_thread(system_database.create_application_version, APPLICATION_VERSION)
        self._queue = await self._register_queue()
        log.warning("flow_engine_registered_again", queue=FLOWS_QUEUE)

    async def _every(self, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await job()
            except Exception as exc:
                # The first line: a database error goes on with its whole SQL, kilobytes that
                # a pipe does not write atomically beside other threads' log lines.
                error = str(exc).split("\n", 1)[0][:300]
                log.warning("flow_engine_job_failed", job=job.__name__, error=error)

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
            "sys_db_pool_size": self._pool_size,
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


def _calling_client() -> AuditActor:
    client_id = current_context().client_id
    if client_id is not None:
        return AuditActor(kind="client", id=client_id)
    return system_actor("gateway")


def migrate_engine_storage(
    database_url: str, *, system_database_url: str | None = None, system_schema: str = "dbos"
) -> None:
    """Create or migrate the durable engine's own tables (DBOS's system database and its
    transaction records beside the app's tables), as a launch does; blocking. For
    `erp-gateway db upgrade`, so that a database re-created empty serves again without a
    restart."""
    system_url = system_database_url or default_system_database_url(database_url)
    if system_url.startswith("sqlite"):
        prepare_sqlite(system_url)
    DBOS.migrate(system_url, schema=system_schema)
    asyncio.run(AsyncSQLAlchemyDatasource.migrate(database_url, schema=system_schema))


async def _destroy_dbos() -> None:
    """DBOS.destroy() off the loop (it joins DBOS's threads, which may be waiting on the loop).

    DBOS made its own thread pool the loop's default executor and shuts that pool down here,
    so the loop gets a fresh default executor: `asyncio.to_thread` keeps working after.
    """
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="erpgw-dbos-stop") as stopper:
        await loop.run_in_executor(stopper, DBOS.destroy)
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))
