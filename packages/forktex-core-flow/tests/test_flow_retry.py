# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``flow.retry`` re-runs only the failure that ended the run; handled failures replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from forktex_core.flow import Flow, FlowContext, RunFailed, SignalTimeout, StepFailed


async def test_retry_reruns_only_the_failure_that_ended_the_run(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    calls: list[str] = []
    broken = {"charge": True, "final": True}

    @flow.step
    async def charge(ctx: FlowContext) -> str:
        calls.append("charge")
        if broken["charge"]:
            raise RuntimeError("card declined")
        return "charged"

    @flow.step
    async def fallback(ctx: FlowContext) -> str:
        calls.append("fallback")
        return "invoiced"

    @flow.step
    async def final(ctx: FlowContext) -> str:
        calls.append("final")
        if broken["final"]:
            raise RuntimeError("mail server down")
        return "mailed"

    @flow.workflow(name="retry.handled", version=1)
    async def wf(ctx: FlowContext) -> list[str]:
        try:
            paid = await charge(ctx)
        except StepFailed:
            paid = await fallback(ctx)
        return [paid, await final(ctx)]

    async with h.running(flow):
        run_id = await flow.start("retry.handled")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
        assert err.value.error["seqs"] == [2]
        broken.update(charge=False, final=False)  # charge would succeed now: it must not run
        await flow.retry(run_id)
        assert await flow.result(run_id, timeout=20) == ["invoiced", "mailed"]
    assert calls == ["charge", "fallback", "final", "final"]
    statuses = [(s.seq, s.status) for s in await flow.history(run_id)]
    assert statuses == [(0, "failed"), (1, "completed"), (2, "completed")]


async def test_retry_waits_again_only_for_the_signal_that_timed_out_the_run(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    timeout = {"s": 0.2}

    @flow.workflow(name="retry.signals", version=1)
    async def wf(ctx: FlowContext) -> list[Any]:
        try:
            first = await ctx.wait_for_signal("a", timeout=timeout["s"])
        except SignalTimeout:
            first = "timed out"
        return [first, await ctx.wait_for_signal("b", timeout=timeout["s"])]

    async with h.running(flow):
        run_id = await flow.start("retry.signals")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
        assert err.value.error["type"] == "SignalTimeout"
        timeout["s"] = 30.0
        await flow.retry(run_id)
        await flow.send_signal(run_id, "a", "A")  # must not be consumed: "a" was handled
        await flow.send_signal(run_id, "b", "B")
        assert await flow.result(run_id, timeout=20) == ["timed out", "B"]
