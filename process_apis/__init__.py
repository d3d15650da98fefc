"""Process APIs: governed business operations as durable flows on DBOS Transact, the flow
resource and the exception queue. Flow modules are written with `flow_class`, `flow`,
`flow_step` and run by a `FlowEngine`; see `process_apis.durable`."""

from process_apis.api import ProcessLayer, build_process_layer, create_router
from process_apis.durable import (
    APPLICATION_VERSION,
    Decision,
    FlowEngine,
    FlowHandle,
    FlowInstance,
    current_idempotency_key,
    flow,
    flow_class,
    flow_step,
    report_external_ids,
    wait_for_approval,
)
from process_apis.exceptions import ExceptionEntry, ExceptionQueue, OwnerTeam, owner_for
from process_apis.flows import Flow, FlowQuery, FlowReader, FlowStatus, FlowStep

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
