"""Geometry of the console's pictures, computed here so templates only draw: a flow's
swimlane timeline (one lane per system; each step a bar, each vendor call a thin bar under
it, webhooks as marks) and the overview's per-minute chart. Both are inline SVG, sized in
the SVG's own units (the page scales them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from experience_apis.console._reads import CallRow, HookRow, MinuteBar
from experience_apis.console._vendor_links import VendorLinks
from process_apis.flows import Flow, FlowStep

__all__ = ["LANES", "Bar", "Chart", "Lane", "Swimlane", "chart", "swimlane"]

LANES: tuple[tuple[str, str], ...] = (
    ("salesforce", "Salesforce"),
    ("gateway", "gateway"),
    ("stripe", "Stripe"),
    ("netsuite", "NetSuite"),
    ("zendesk", "Zendesk"),
)
LABEL_WIDTH = 110.0
PLOT_WIDTH = 870.0
LANE_HEIGHT = 64.0
AXIS_HEIGHT = 24.0
MIN_BAR = 3.0
_SYSTEM_LANE = {"crm": "salesforce", "billing": "stripe", "erp": "netsuite", "support": "zendesk"}


@dataclass(frozen=True, kw_only=True)
class Link:
    label: str
    url: str | None


@dataclass(frozen=True, kw_only=True)
class Bar:
    kind: str
    """`flow`, `step`, `call` or `webhook`."""
    label: str
    status: str
    x: float
    y: float
    width: float
    height: float
    title: str
    """The tooltip: what, when, how long, how it went."""
    anchor: str | None = None
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Lane:
    key: str
    label: str
    y: float


@dataclass(frozen=True, kw_only=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, kw_only=True)
class Swimlane:
    width: float
    height: float
    lanes: list[Lane]
    bars: list[Bar]
    ticks: list[Tick]


@dataclass(frozen=True, kw_only=True)
class Chart:
    width: float
    height: float
    bars: list[Bar]
    peak: int
    ticks: list[Tick]


def swimlane(
    flow: Flow,
    calls: list[CallRow],
    hooks: list[HookRow],
    links: VendorLinks,
    *,
    now: datetime,
) -> Swimlane:
    """The flow's timeline from its first record to its last (now, while it runs)."""
    lanes = [
        Lane(key=key, label=label, y=AXIS_HEIGHT + i * LANE_HEIGHT)
        for i, (key, label) in enumerate(LANES)
    ]
    lane_y = {lane.key: lane.y for lane in lanes}
    start, end = _span(flow, calls, hooks, now)
    scale = _Scale(start, end)
    bars = [_flow_bar(flow, scale, lane_y["gateway"], now)]
    for step in flow.steps:
        bars.append(_step_bar(step, scale, lane_y[_lane(step.system)], links, now))
    for call in calls:
        bars.append(_call_bar(call, scale, lane_y[_lane(call.system)]))
    for hook in hooks:
        bars.append(_hook_bar(hook, scale, lane_y[_lane(hook.source)]))
    return Swimlane(
        width=LABEL_WIDTH + PLOT_WIDTH + 20,
        height=AXIS_HEIGHT + LANE_HEIGHT * len(lanes),
        lanes=lanes,
        bars=bars,
        ticks=scale.ticks(),
    )


def chart(minutes: list[MinuteBar], *, width: float = 720.0, height: float = 160.0) -> Chart:
    """Flows started (and of them failed) per minute over the last hour."""
    peak = max([bar.started for bar in minutes] + [bar.failed for bar in minutes] + [1])
    slot = width / max(1, len(minutes))
    plot = height - 20
    bars: list[Bar] = []
    for i, minute in enumerate(minutes):
        for kind, count in (("started", minute.started), ("failed", minute.failed)):
            if not count:
                continue
            tall = plot * count / peak
            bars.append(
                Bar(
                    kind=kind,
                    label=str(count),
                    status=kind,
                    x=i * slot + 1 + (slot / 2 if kind == "failed" else 0),
                    y=plot - tall,
                    width=max(1.0, slot / 2 - 1),
                    height=tall,
                    title=f"{minute.start:%H:%M} UTC: {count} {kind}",
                )
            )
    ticks = [
        Tick(x=i * slot, label=f"{minutes[i].start:%H:%M}")
        for i in range(0, len(minutes), 10)
    ]
    return Chart(width=width, height=height, bars=bars, peak=peak, ticks=ticks)


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.seconds = max((end - start).total_seconds(), 0.001)

    def x(self, at: datetime) -> float:
        offset = (at - self.start).total_seconds() / self.seconds
        return LABEL_WIDTH + PLOT_WIDTH * min(1.0, max(0.0, offset))

    def width(self, begin: datetime, finish: datetime) -> float:
        return max(MIN_BAR, self.x(finish) - self.x(begin))

    def ticks(self) -> list[Tick]:
        return [
            Tick(
                x=LABEL_WIDTH + PLOT_WIDTH * i / 5,
                label=_duration(timedelta(seconds=self.seconds * i / 5)),
            )
            for i in range(6)
        ]


def _span(
    flow: Flow, calls: list[CallRow], hooks: list[HookRow], now: datetime
) -> tuple[datetime, datetime]:
    starts = [flow.created_at, *(c.started_at for c in calls), *(h.received_at for h in hooks)]
    starts += [s.started_at for s in flow.steps if s.started_at]
    running = flow.status in ("pending", "running", "waiting_approval", "waiting")
    ends = [now if running else flow.updated_at]
    ends += [c.started_at + timedelta(milliseconds=c.latency_ms) for c in calls]
    ends += [s.finished_at for s in flow.steps if s.finished_at]
    return min(starts), max(ends)


def _flow_bar(flow: Flow, scale: _Scale, y: float, now: datetime) -> Bar:
    running = flow.status in ("pending", "running", "waiting_approval", "waiting")
    end = now if running else flow.updated_at
    return Bar(
        kind="flow",
        label=f"{flow.type} ({flow.status})",
        status=flow.status,
        x=scale.x(flow.created_at),
        y=y + 8,
        width=scale.width(flow.created_at, end),
        height=22,
        title=f"flow {flow.id}: {flow.status}, {_duration(end - flow.created_at)}",
    )


def _step_bar(step: FlowStep, scale: _Scale, y: float, links: VendorLinks, now: datetime) -> Bar:
    begin = step.started_at or now
    finish = step.finished_at or now
    ids = [
        Link(label=f"{key} {value}", url=links.url(key, value))
        for key, value in sorted(step.external_ids.items())
    ]
    detail = f", {step.error}" if step.error else ""
    return Bar(
        kind="step",
        label=f"{step.name} x{step.attempts}" if step.attempts > 1 else step.name,
        status=step.status,
        x=scale.x(begin),
        y=y + 8,
        width=scale.width(begin, finish),
        height=22,
        title=(
            f"{step.name} on {step.system}: {step.status}, {step.attempts} attempt(s), "
            f"{_duration(finish - begin)}{detail}"
        ),
        anchor=f"step-{step.name}",
        links=ids,
    )


def _call_bar(call: CallRow, scale: _Scale, y: float) -> Bar:
    finish = call.started_at + timedelta(milliseconds=call.latency_ms)
    status = str(call.status) if call.status is not None else "no answer"
    ok = call.status is not None and call.status < 400
    return Bar(
        kind="call",
        label=status,
        status="succeeded" if ok else "failed",
        x=scale.x(call.started_at),
        y=y + 38,
        width=scale.width(call.started_at, finish),
        height=12,
        title=(
            f"{call.method} {call.path_template} -> {status} in {call.latency_ms:.1f} ms "
            f"(attempt {call.attempt}{', ' + call.error if call.error else ''})"
        ),
    )


def _hook_bar(hook: HookRow, scale: _Scale, y: float) -> Bar:
    return Bar(
        kind="webhook",
        label=hook.event_type,
        status=hook.status,
        x=scale.x(hook.received_at),
        y=y + 4,
        width=MIN_BAR,
        height=52,
        title=f"webhook {hook.event_type} ({hook.event_id}) received: {hook.status}",
    )


def _lane(system: str) -> str:
    known = {key for key, _ in LANES}
    name = _SYSTEM_LANE.get(system, system)
    return name if name in known else "gateway"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
