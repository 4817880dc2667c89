# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Several versions of one workflow at once, version-aware claims, and ctx.patched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from forktex_core.flow import Flow, FlowContext, RunStatus


async def _status(flow: Flow, h: Any, run_id: Any, status: RunStatus) -> None:
    async def check() -> bool:
        return (await flow.get_run(run_id)).status is status

    await h.wait_until(check)


def _register_v1(flow: Flow) -> None:
    @flow.workflow(name="ver.flow", version=1)
    async def v1(ctx: FlowContext, payload: Any) -> Any:
        sig = await ctx.wait_for_signal("go")
        return ["v1", sig]


def _register_v2(flow: Flow) -> None:
    @flow.step
    async def extra(ctx: FlowContext) -> str:
        return "extra"

    @flow.workflow(name="ver.flow", version=2)
    async def v2(ctx: FlowContext, payload: Any) -> Any:
        first = await extra(ctx)
        sig = await ctx.wait_for_signal("go")
        return ["v2", first, sig]


async def test_v1_run_resumes_on_v1_code_after_v2_is_registered(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    _register_v1(flow)
    async with h.running(flow):
        old = await flow.start("ver.flow", input=None)
        await _status(flow, h, old, RunStatus.WAITING)
    _register_v2(flow)  # a deploy: both versions registered
    async with h.running(flow):
        new = await flow.start("ver.flow", input=None)
        assert (await flow.get_run(new)).version == 2
        assert (await flow.get_run(old)).version == 1
        await _status(flow, h, new, RunStatus.WAITING)
        await flow.send_signal(old, "go", payload="a")
        await flow.send_signal(new, "go", payload="b")
        assert await flow.result(old, timeout=30) == ["v1", "a"]
        assert await flow.result(new, timeout=30) == ["v2", "extra", "b"]


async def test_worker_never_claims_a_version_it_lacks(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    client = make_flow()
    _register_v1(client)
    _register_v2(client)
    v2_only = make_flow()
    _register_v2(v2_only)
    async with h.running(v2_only):
        run1 = await client.start("ver.flow", input=None, version=1)
        run2 = await client.start("ver.flow", input=None)
        await _status(client, h, run2, RunStatus.WAITING)

        async def flagged() -> bool:
            return (await client.get_run(run1)).waiting_for_worker

        await h.wait_until(flagged)
        info = await client.get_run(run1)
        assert info.status is RunStatus.PENDING and info.worker is None
        assert not (await client.get_run(run2)).waiting_for_worker
        listed = {r.id: r for r in await client.list_runs(workflow="ver.flow")}
        assert listed[run1].waiting_for_worker and not listed[run2].waiting_for_worker
    v1_worker = make_flow()
    _register_v1(v1_worker)
    async with h.running(v1_worker):
        await _status(client, h, run1, RunStatus.WAITING)
        assert not (await client.get_run(run1)).waiting_for_worker
        await client.send_signal(run1, "go", payload=1)
        assert await client.result(run1, timeout=30) == ["v1", 1]
    # the claim probes the (workflow, version, wake_at) index
    conn = await asyncpg.connect(pg.dsn)
    try:
        names = {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'forktex_flow'"
            )
        }
    finally:
        await conn.close()
    assert {"runs_claim_version", "runs_metadata"} <= names


def _old_body(flow: Flow, log: list[str]) -> None:
    @flow.step(name="step_a")
    async def step_a(ctx: FlowContext) -> str:
        log.append("a")
        return "a"

    @flow.workflow(name="hotfix", version=1)
    async def body(ctx: FlowContext, payload: Any) -> Any:
        x = await step_a(ctx)
        sig = await ctx.wait_for_signal("go")
        return [x, sig]


def _patched_body(flow: Flow, log: list[str]) -> None:
    @flow.step(name="step_a")
    async def step_a(ctx: FlowContext) -> str:
        log.append("a")
        return "a"

    @flow.step(name="step_fix")
    async def step_fix(ctx: FlowContext, x: str) -> str:
        log.append("fix")
        return x + "+fix"

    @flow.workflow(name="hotfix", version=1)
    async def body(ctx: FlowContext, payload: Any) -> Any:
        x = await step_a(ctx)
        if ctx.patched("fix-a"):
            x = await step_fix(ctx, x)
        sig = await ctx.wait_for_signal("go")
        return [x, sig]


async def test_patched_reaches_new_runs_and_replays_deterministically(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    log: list[str] = []
    old = make_flow()
    _old_body(old, log)
    async with h.running(old):
        before = await old.start("hotfix")
        await _status(old, h, before, RunStatus.WAITING)
    new = make_flow()
    _patched_body(new, log)
    async with h.running(new):
        after = await new.start("hotfix")
        await _status(new, h, after, RunStatus.WAITING)
        await new.send_signal(before, "go", payload=1)
        await new.send_signal(after, "go", payload=2)
        # 'before' already passed the patch point on the old code: it keeps the old path
        assert await new.result(before, timeout=30) == ["a", 1]
        # 'after' took the new branch, and replay after the signal took it again
        assert await new.result(after, timeout=30) == ["a+fix", 2]
    assert log == ["a", "a", "fix"]
    kinds = [(s.kind, s.name) for s in await new.history(after)]
    assert kinds[1] == ("patch", "fix-a")
    assert [k for k, _ in await _kinds(new, before)] == ["step", "signal"]


async def _kinds(flow: Flow, run_id: Any) -> list[tuple[str, str]]:
    return [(s.kind, s.name) for s in await flow.history(run_id)]
