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

    run_id = await flow.start("cloud.deploy", input={"name": "web"})
    await flow.send_signal(run_id, "advance", payload={"code": "abc"})
    # elsewhere: await flow.run_worker(concurrency=16)
"""

from ._context import FlowContext
from ._errors import (
    FlowClosed,
    FlowError,
    InvalidArgument,
    NonDeterminismError,
    NotSerialisable,
    ResultTimeout,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunNotFound,
    RunNotRetryable,
    SignalError,
    SignalTimeout,
    StepFailed,
    UnknownWorkflow,
    WorkflowTimeout,
)
from ._flow import Flow
from ._records import RunInfo, RunStatus, StepInfo
from ._serde import JsonSerializer, Serializer

__all__ = [
    "Flow",
    "FlowClosed",
    "FlowContext",
    "FlowError",
    "InvalidArgument",
    "JsonSerializer",
    "NonDeterminismError",
    "NotSerialisable",
    "ResultTimeout",
    "RunCancelled",
    "RunFailed",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunNotRetryable",
    "RunStatus",
    "Serializer",
    "SignalError",
    "SignalTimeout",
    "StepFailed",
    "StepInfo",
    "UnknownWorkflow",
    "WorkflowTimeout",
]
