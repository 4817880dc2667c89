# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Steps, replay, workflows, context, signals, idempotency — one worker in-process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    JsonSerializer,
    NotSerialisable,
    RunFailed,
    RunStatus,
    SignalTimeout,
    StepFailed,
    UnknownWorkflow,
)


async def test_spec_sample_runs_as_written(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    created: list[str] = []

    @flow.step
    async def provision_vps(ctx: FlowContext, manifest: dict) -> str:  # type: ignore[type-arg]
        created.append(manifest["name"])
        return f"srv-{manifest['name']}"

    @flow.workflow(name="cloud.deploy", version=1)
    async def deploy(ctx: FlowContext, manifest: dict) -> dict:  # type: ignore[type-arg]
        server_id = await provision_vps(ctx, manifest)
        advance = await ctx.wait_for_signal("advance")
        return {"server_id": server_id, "code": advance["code"]}

    async with h.running(flow):
        run_id = await flow.start("cloud.deploy", input={"name": "web"})
        await flow.send_signal(run_id, "advance", payload={"code": "abc"})
        assert await flow.result(run_id, timeout=20) == {"server_id": "srv-web", "code": "abc"}
    assert created == ["web"]
    info = await flow.get_run(run_id)
    assert info.status is RunStatus.SUCCEEDED and info.workflow == "cloud.deploy"
    assert info.version == 1 and info.input == {"name": "web"}


async def test_replay_returns_recorded_results(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    calls: dict[str, int] = {}

    @flow.step
    async def count(ctx: FlowContext, name: str) -> dict[str, Any]:
        calls[name] = calls.get(name, 0) + 1
        return {"name": name, "z": 1, "a": [1, 2]}

    @flow.workflow(name="replay", version=1)
    async def wf(ctx: FlowContext, _: Any) -> list[Any]:
        out = [await count(ctx, "a"), await count(ctx, "b")]
        for i in range(3):  # each wait suspends the run; resuming replays a and b
            out.append(await ctx.wait_for_signal("go"))
            out.append(await count(ctx, f"c{i}"))
        return [*out, list(out[0])]  # keys as seen by the (replaying) last execution

    async with h.running(flow):
        run_id = await flow.start("replay")
        for i in range(3):
            await h.wait_until(lambda: flow.get_run(run_id), timeout=10)
            await asyncio.sleep(0.05)
            await flow.send_signal(run_id, "go", payload=i)
        result = await flow.result(run_id, timeout=20)
    assert calls == {"a": 1, "b": 1, "c0": 1, "c1": 1, "c2": 1}
    assert [r if isinstance(r, int) else r["name"] for r in result[:-1]] == [
        "a",
        "b",
        0,
        "c0",
        1,
        "c1",
        2,
        "c2",
    ]
    # key order of a step's dict is the same on first execution and on replay
    assert result[-1] == ["name", "z", "a"]
    steps = await flow.history(run_id)
    assert [s.name.rsplit(".", 1)[-1] for s in steps if s.kind == "step"] == ["count"] * 5
    assert all(s.status == "completed" for s in steps)


async def test_step_outside_workflow_is_plain(make_flow: Any) -> None:
    flow = make_flow()

    @flow.step(max_attempts=3)
    async def add(ctx: Any, a: int, b: int) -> int:
        return a + b

    assert await add(None, 1, 2) == 3


async def test_retries_with_backoff_then_success(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    attempts: list[float] = []

    @flow.step(max_attempts=4, backoff=0.05, retry_on=ConnectionError)
    async def flaky(ctx: FlowContext) -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError("boom")
        return "ok"

    @flow.workflow(name="flaky", version=1)
    async def wf(ctx: FlowContext) -> str:
        return await flaky(ctx)

    async with h.running(flow):
        run_id = await flow.start("flaky")
        assert await flow.result(run_id, timeout=20) == "ok"
    assert len(attempts) == 3
    assert attempts[2] - attempts[1] >= 0.04  # backoff doubled: >= 0.1 * 0.5 jitter
    (step,) = await flow.history(run_id)
    assert step.attempt == 3 and step.status == "completed" and step.error is None


async def test_final_failure_recorded_and_reraised_on_replay(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    runs: list[int] = []

    @flow.step(max_attempts=2, backoff=0.01)
    async def bad(ctx: FlowContext) -> None:
        runs.append(1)
        raise ValueError("nope")

    @flow.step(max_attempts=2, retry_on=KeyError)
    async def not_retried(ctx: FlowContext) -> None:
        runs.append(2)
        raise ValueError("other")

    @flow.workflow(name="fails", version=1)
    async def wf(ctx: FlowContext) -> dict[str, Any]:
        seen = {}
        try:
            await bad(ctx)
        except StepFailed as exc:
            seen["bad"] = [exc.error_type, exc.error_message, exc.attempts]
        try:
            await not_retried(ctx)
        except StepFailed as exc:
            seen["other"] = [exc.error_type, exc.attempts]
        await ctx.wait_for_signal("resume")  # forces a replay of both failures
        return seen

    async with h.running(flow):
        run_id = await flow.start("fails")
        await h.wait_until(lambda: _status(flow, run_id, "waiting"), timeout=10)
        await flow.send_signal(run_id, "resume")
        out = await flow.result(run_id, timeout=20)
    assert out == {"bad": ["ValueError", "nope", 2], "other": ["ValueError", 1]}
    assert runs == [1, 1, 2]
    hist = await flow.history(run_id)
    assert [s.status for s in hist[:2]] == ["failed", "failed"]
    assert hist[0].error["message"] == "nope"


async def _status(flow: Flow, run_id: Any, status: str) -> bool:
    return (await flow.get_run(run_id)).status == status


async def test_workflow_exception_fails_run(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="boom", version=1)
    async def wf(ctx: FlowContext, x: int) -> int:
        raise RuntimeError(f"bad {x}")

    async with h.running(flow):
        run_id = await flow.start("boom", 7)
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    assert err.value.status == "failed" and err.value.error["message"] == "bad 7"
    assert "RuntimeError" in str(err.value)


async def test_not_serialisable_names_the_step(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.step
    async def load(ctx: FlowContext) -> Any:
        return {1, 2}

    @flow.workflow(name="ser", version=1)
    async def wf(ctx: FlowContext) -> Any:
        return await load(ctx)

    with pytest.raises(NotSerialisable, match="workflow 'ser'"):
        await flow.start("ser", input=object())
    async with h.running(flow):
        run_id = await flow.start("ser")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    assert err.value.error["type"] == "NotSerialisable"
    assert "load" in err.value.error["message"]


async def test_custom_serializer_hook(make_flow: Any, h: Any) -> None:
    from decimal import Decimal

    def enc(o: Any) -> Any:
        if isinstance(o, Decimal):
            return {"__decimal__": str(o)}
        raise TypeError(type(o).__name__)

    def dec(d: dict[str, Any]) -> Any:
        return Decimal(d["__decimal__"]) if "__decimal__" in d else d

    flow = make_flow(serializer=JsonSerializer(default=enc, object_hook=dec))

    @flow.step
    async def price(ctx: FlowContext, x: Decimal) -> Decimal:
        return x * 2

    @flow.workflow(name="dec", version=1)
    async def wf(ctx: FlowContext, x: Decimal) -> Decimal:
        return await price(ctx, x)

    async with h.running(flow):
        run_id = await flow.start("dec", Decimal("1.25"))
        assert await flow.result(run_id, timeout=20) == Decimal("2.50")


async def test_context_now_uuid_and_sleep_are_recorded(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="ctx", version=1)
    async def wf(ctx: FlowContext) -> list[str]:
        first = [ctx.now().isoformat(), str(ctx.uuid()), str(ctx.run_id), ctx.workflow]
        await ctx.sleep(0.6)  # suspends (longer than the inline threshold), then replays
        await ctx.sleep(0.01)  # inline
        return [*first, ctx.now().isoformat()]

    async with h.running(flow):
        t0 = time.monotonic()
        run_id = await flow.start("ctx")
        out = await flow.result(run_id, timeout=20)
        assert time.monotonic() - t0 >= 0.55
    assert out[2] == str(run_id) and out[3] == "ctx"
    hist = await flow.history(run_id)
    assert [s.kind for s in hist] == ["now", "uuid", "sleep", "sleep", "now"]
    assert hist[1].output == out[1]
    assert out[4] > out[0]


async def test_signals_before_and_after_waiting_in_order(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="sig", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        got = [await ctx.wait_for_signal("s") for _ in range(3)]
        got.append(await ctx.wait_for_signal("t"))
        return got

    run_id = await flow.start("sig")
    await flow.send_signal(run_id, "s", payload=1)  # before any worker / wait
    await flow.send_signal(run_id, "s", payload=2)
    async with h.running(flow):
        await h.wait_until(lambda: _status(flow, run_id, "waiting"), timeout=10)
        await flow.send_signal(run_id, "s", payload={"three": 3})
        await flow.send_signal(run_id, "t")
        assert await flow.result(run_id, timeout=20) == [1, 2, {"three": 3}, None]
    pool = await asyncpg.connect(flow._dsn)
    try:
        rows = await pool.fetch(
            "SELECT consumed_seq FROM forktex_flow.signals WHERE run_id = $1 ORDER BY id", run_id
        )
    finally:
        await pool.close()
    assert [r[0] for r in rows] == [0, 1, 2, 3]  # each consumed exactly once, in order


async def test_signal_timeout(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="sigto", version=1)
    async def wf(ctx: FlowContext) -> str:
        try:
            await ctx.wait_for_signal("never", timeout=0.5)
        except SignalTimeout:
            return "timed out"
        return "got it"

    async with h.running(flow):
        run_id = await flow.start("sigto")
        assert await flow.result(run_id, timeout=20) == "timed out"


async def test_idempotency_key_returns_same_run(make_flow: Any, h: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="idem", version=1)
    async def wf(ctx: FlowContext, x: int) -> int:
        return x

    a = await flow.start("idem", 1, idempotency_key="k1")
    b = await flow.start("idem", 2, idempotency_key="k1")
    c = await flow.start("idem", 3, idempotency_key="k2")
    many = await asyncio.gather(*(flow.start("idem", 4, idempotency_key="k3") for _ in range(10)))
    assert a == b and a != c and len(set(many)) == 1
    async with h.running(flow):
        assert await flow.result(a, timeout=20) == 1
    assert len(await flow.list_runs(workflow="idem")) == 3


async def test_unknown_workflow_lists_registered(make_flow: Any) -> None:
    flow = make_flow()

    @flow.workflow(name="cloud.deploy", version=1)
    async def wf(ctx: FlowContext) -> None:
        return None

    with pytest.raises(UnknownWorkflow, match=r"cloud\.deploy") as err:
        await flow.start("cloud.dploy")
    assert err.value.registered == ["cloud.deploy"]
    with pytest.raises(UnknownWorkflow, match="version 2"):
        await flow.start("cloud.deploy", version=2)


async def test_parallel_steps_replay_deterministically(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    calls: list[int] = []

    @flow.step
    async def slow(ctx: FlowContext, i: int) -> int:
        calls.append(i)
        await asyncio.sleep(0.05 * (5 - i))  # finish in reverse order
        return i * 10

    @flow.workflow(name="par", version=1)
    async def wf(ctx: FlowContext) -> list[int]:
        first = await asyncio.gather(*(slow(ctx, i) for i in range(5)))
        await ctx.wait_for_signal("go")
        second = await asyncio.gather(*(slow(ctx, i + 5) for i in range(3)))
        return [*first, *second]

    async with h.running(flow):
        run_id = await flow.start("par")
        await h.wait_until(lambda: _status(flow, run_id, "waiting"), timeout=10)
        await flow.send_signal(run_id, "go")
        assert await flow.result(run_id, timeout=20) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert sorted(calls) == list(range(8))  # replay ran none of them again
    hist = await flow.history(run_id)
    assert [s.output for s in hist if s.kind == "step"] == [0, 10, 20, 30, 40, 50, 60, 70]


async def test_parallel_branch_suspends_while_other_finishes_step(make_flow: Any, h: Any) -> None:
    flow = make_flow()
    calls: list[str] = []

    @flow.step
    async def work(ctx: FlowContext) -> str:
        calls.append("w")
        await asyncio.sleep(0.3)
        return "done"

    @flow.workflow(name="mixed", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        return list(await asyncio.gather(ctx.wait_for_signal("x"), work(ctx)))

    async with h.running(flow):
        run_id = await flow.start("mixed")
        await h.wait_until(lambda: _status(flow, run_id, "waiting"), timeout=10)
        await flow.send_signal(run_id, "x", payload="sig")
        assert await flow.result(run_id, timeout=20) == ["sig", "done"]
    assert calls == ["w"]
