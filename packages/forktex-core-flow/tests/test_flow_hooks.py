# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""FlowHooks: org metadata at start, authorisation of start/signal/cancel, observers,
and list_runs filtering by metadata."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    FlowHooks,
    HookDenied,
    InvalidArgument,
    RunEvent,
    RunFailed,
    RunStatus,
    StartRequest,
    StepEvent,
)
from forktex_core.flow._records import RunInfo

from .conftest import user_metadata

current_org: contextvars.ContextVar[str | None] = contextvars.ContextVar("org", default=None)


class OrgHooks(FlowHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def attach_metadata(self, request: StartRequest) -> Mapping[str, Any] | None:
        return {"org_id": current_org.get()}

    async def authorize_start(self, request: StartRequest) -> None:
        if request.metadata.get("org_id") is None:
            raise HookDenied("no organisation in the request context")

    async def authorize_signal(self, run: RunInfo, name: str, payload: Any) -> None:
        if run.metadata.get("org_id") != current_org.get():
            raise HookDenied(f"run {run.id} belongs to another organisation")

    async def authorize_cancel(self, run: RunInfo) -> None:
        if run.metadata.get("org_id") != current_org.get():
            raise PermissionError("not yours")

    async def on_step_completed(self, event: StepEvent) -> None:
        self.events.append(("step", event))

    async def on_step_failed(self, event: StepEvent) -> None:
        self.events.append(("step_failed", event))

    async def on_run_completed(self, event: RunEvent) -> None:
        self.events.append(("run", event))

    async def on_run_failed(self, event: RunEvent) -> None:
        self.events.append(("run_failed", event))


class Broken(FlowHooks):
    async def on_run_completed(self, event: RunEvent) -> None:
        raise RuntimeError("observer bug")


async def test_org_metadata_authorisation_and_observers(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    hooks = OrgHooks()
    flow = make_flow(hooks=[hooks, Broken()])

    @flow.step
    async def greet(ctx: FlowContext, who: str) -> str:
        return f"hi {who}"

    @flow.step
    async def explode(ctx: FlowContext) -> None:
        raise ValueError("boom")

    @flow.workflow(name="hooks.wf", version=1)
    async def wf(ctx: FlowContext, who: str) -> Any:
        greeting = await greet(ctx, who)
        sig = await ctx.wait_for_signal("go")
        return [greeting, sig]

    @flow.workflow(name="hooks.bad", version=1)
    async def bad(ctx: FlowContext, _: Any) -> None:
        await explode(ctx)

    with pytest.raises(HookDenied, match="no organisation"):
        await flow.start("hooks.wf", input="x")
    assert await flow.list_runs() == []  # nothing was written

    async with h.running(flow):
        current_org.set("org-a")
        a1 = await flow.start("hooks.wf", input="ann", metadata={"source": "api"})
        a2 = await flow.start("hooks.wf", input="al")
        current_org.set("org-b")
        b1 = await flow.start("hooks.wf", input="bob")
        assert user_metadata((await flow.get_run(a1)).metadata) == {
            "source": "api",
            "org_id": "org-a",
        }

        mine = await flow.list_runs(metadata={"org_id": "org-a"})
        assert {r.id for r in mine} == {a1, a2}
        assert [r.id for r in await flow.list_runs(metadata={"org_id": "org-b"})] == [b1]
        assert [r.id for r in await flow.list_runs(metadata={"source": "api"})] == [a1]
        with pytest.raises(InvalidArgument):
            await flow.list_runs(metadata="org-a")  # type: ignore[arg-type]

        for rid in (a1, a2, b1):

            async def waiting(rid: Any = rid) -> bool:
                return (await flow.get_run(rid)).status is RunStatus.WAITING

            await h.wait_until(waiting)
        # org-b may not signal or cancel org-a's run
        with pytest.raises(HookDenied, match="another organisation"):
            await flow.send_signal(a1, "go", payload="from b")
        with pytest.raises(PermissionError, match="not yours"):
            await flow.cancel(a1)
        conn = await asyncpg.connect(pg.dsn)
        try:
            stored = await conn.fetchval(
                "SELECT count(*) FROM forktex_flow.signals WHERE run_id = $1", a1
            )
        finally:
            await conn.close()
        assert stored == 0
        await flow.send_signal(b1, "go", payload="own")
        assert await flow.result(b1, timeout=30) == ["hi bob", "own"]

        current_org.set("org-a")
        await flow.send_signal(a1, "go", payload="own")
        assert await flow.result(a1, timeout=30) == ["hi ann", "own"]
        await flow.cancel(a2)

        failing = await flow.start("hooks.bad")
        with pytest.raises(RunFailed):
            await flow.result(failing, timeout=30)
        # observers run after the checkpoint; the final failure event may trail result()

        def seen() -> bool:
            return any(kind == "run_failed" for kind, _ in hooks.events)

        await h.wait_until(seen)

    steps = [e for kind, e in hooks.events if kind == "step"]
    assert {(e.name.rsplit(".", 1)[-1], e.output, e.metadata["org_id"]) for e in steps} == {
        ("greet", "hi ann", "org-a"),
        ("greet", "hi al", "org-a"),
        ("greet", "hi bob", "org-b"),
    }
    runs = [e for kind, e in hooks.events if kind == "run"]
    assert sorted((e.run_id, e.status) for e in runs) == sorted(
        [(a1, "succeeded"), (b1, "succeeded")]
    )
    assert next(e for k, e in hooks.events if k == "run" and e.run_id == b1).output == [
        "hi bob",
        "own",
    ]
    (failed_step,) = [e for kind, e in hooks.events if kind == "step_failed"]
    assert failed_step.error["type"] == "ValueError" and failed_step.metadata["org_id"] == "org-a"
    (failed_run,) = [e for kind, e in hooks.events if kind == "run_failed"]
    assert failed_run.run_id == failing
    assert failed_run.error == (await flow.get_run(failing)).error


async def test_metadata_filter_uses_the_gin_index(make_flow: Callable[..., Flow], pg: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="idx", version=1)
    async def idx(ctx: FlowContext, _: Any) -> None:
        return None

    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN SELECT id FROM forktex_flow.runs WHERE metadata @> $1::jsonb",
                '{"org_id": "o1"}',
            )
        )
    finally:
        await conn.close()
    assert "runs_metadata" in plan


def test_hooks_must_implement_something() -> None:
    with pytest.raises(InvalidArgument, match="implements none"):
        Flow(database_url="postgresql://x@127.0.0.1:1/x", hooks=[object()])  # type: ignore[list-item]
