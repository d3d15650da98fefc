"""The flow engine: durable flows on DBOS Transact, the flow resource, the exception queue and
the operations service. Flow modules are written with `flow_class`, `flow`, `flow_step`,
registered with `FlowEngine.register` and run by it (`process_apis.engine.durable` tells how
a flow is written, `process_apis.engine.flow_engine` how it runs).
"""

from process_apis.engine.durable import (
    Decision,
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
    wait_for_approval,
)
from process_apis.engine.flow_engine import APPLICATION_VERSION, FlowEngine, FlowHandle
from process_apis.engine.queue import ExceptionQueue, owner_for
from process_apis.engine.records import FlowQuery, FlowReader
from process_apis.engine.routes import ProcessLayer, build_process_layer, create_router
from process_apis.exceptions import ExceptionEntry, OwnerTeam
from process_apis.flows import Flow, FlowStatus, FlowStep

__all__ = [
    "APPLICATION_VERSION",
    "Decision",
    "ExceptionEntry",
    "ExceptionQueue",
    "Flow",
    "FlowEngine",
    "FlowHandle",
    "FlowInstance",
    "FlowQuery",
    "FlowReader",
    "FlowStatus",
    "FlowStep",
    "OwnerTeam",
    "ProcessLayer",
    "build_process_layer",
    "create_router",
    "current_idempotency_key",
    "flow",
    "flow_class",
    "flow_step",
    "owner_for",
    "report_external_ids",
    "wait_for_approval",
]
