# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.flow — Postgres-native durable execution.

Code-defined workflows whose steps are checkpointed in Postgres (schema ``forktex_flow``),
replayed on resume after a crash, woken by durable timers and signals, and run by any
number of workers that elect one leader through an advisory lock.

Example::

    from forktex_core.flow import Flow, FlowContext

    flow = Flow(database_url="postgresql+asyncpg://user:pass@host/db")

    @flow.step
    async def provision_vps(ctx: FlowContext, manifest: dict) -> str:
        return await hetzner.create_server(...)

    @flow.workflow(name="cloud.deploy", version=1)
    async def deploy(ctx: FlowContext, manifest: dict) -> dict:
        server_id = await provision_vps(ctx, manifest)
        return {"server_id": server_id}

    # a declarative state machine, run as a synthesised workflow
    g = Graph(name="user.onboarding", version=1, initial="email_pending")

    @g.state("email_pending", manual=True)
    async def email_pending(ctx, payload):
        await send_verification_email_step(ctx, payload["email"])
        return payload

    @g.state("verified", terminal=True)
    async def verified(ctx, payload):
        return payload

    g.transition("email_pending", "verified")
    flow.register_graph(g)

    run_id = await flow.start("user.onboarding", input={"email": "a@example.com"})
    await flow.send_signal(run_id, "advance", payload={"code": "abc"})
    # elsewhere: await flow.run_worker(concurrency=16)  or  forktex-flow worker app:flow
"""

from ._children import ChildHandle
from ._client import FlowClient
from ._context import FlowContext
from ._errors import (
    ChildFailed,
    ConditionError,
    EventNotSet,
    FlowClosed,
    FlowError,
    FlowUnavailable,
    GraphValidationError,
    HookDenied,
    InvalidArgument,
    InvalidSchedule,
    NonDeterminismError,
    NotSerialisable,
    ResultTimeout,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
    ScheduleNotFound,
    SignalError,
    SignalTimeout,
    StepFailed,
    TransitionError,
    UnknownQueue,
    UnknownWorkflow,
    VersionGateError,
    WorkflowTimeout,
)
from ._flow import Flow
from ._graph import Graph
from ._hooks import FlowHooks, RunEvent, StartRequest, StepEvent
from ._queues import Queue, QueueInfo
from ._records import RunInfo, RunStatus, StepInfo
from ._schedules import ScheduleInfo
from ._serde import JsonSerializer, Serializer
from ._views import RunCounts, RunPage, SignalInfo, WorkerInfo

__all__ = [
    "ChildFailed",
    "ChildHandle",
    "ConditionError",
    "EventNotSet",
    "Flow",
    "FlowClient",
    "FlowClosed",
    "FlowContext",
    "FlowError",
    "FlowHooks",
    "FlowUnavailable",
    "Graph",
    "GraphValidationError",
    "HookDenied",
    "InvalidArgument",
    "InvalidSchedule",
    "JsonSerializer",
    "NonDeterminismError",
    "NotSerialisable",
    "Queue",
    "QueueInfo",
    "ResultTimeout",
    "RunCancelled",
    "RunCounts",
    "RunEvent",
    "RunFailed",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunNotRetryable",
    "RunPage",
    "RunStatus",
    "ScheduleInfo",
    "ScheduleNotFound",
    "Serializer",
    "SignalError",
    "SignalInfo",
    "SignalTimeout",
    "StartRequest",
    "StepEvent",
    "StepFailed",
    "StepInfo",
    "TransitionError",
    "UnknownQueue",
    "UnknownWorkflow",
    "VersionGateError",
    "WorkerInfo",
    "WorkflowTimeout",
]
