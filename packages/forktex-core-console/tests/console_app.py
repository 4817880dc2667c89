# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The workflows of the console tests, and (when ``CONSOLE_TEST_URL`` is set, in the worker
and console subprocesses of the browser tests) a Flow serving them.

Started as ``python -m forktex_core.flow._cli worker tests/console_app.py:flow`` and
``... console tests/console_app.py:flow``; test code, not library code, reads the variable.
"""

from __future__ import annotations

import os
from typing import Any

from forktex_core.flow import (
    Flow,
    FlowContext,
    FlowHooks,
    Graph,
    HookDenied,
    RunInfo,
    ScheduleInfo,
)


class OpsRules(FlowHooks):
    """The authorisers the browser tests meet: reviews are never cancelled, totals are
    forked onto the fixed version only, audit schedules are never triggered by hand."""

    async def authorize_cancel(self, run: RunInfo) -> None:
        if run.workflow == "orders.review":
            raise HookDenied("orders under review cannot be cancelled; reject them instead")

    async def authorize_fork(self, run: RunInfo, from_step: int, version: int | None) -> None:
        if run.workflow == "orders.total" and version != 2:
            raise HookDenied("fork orders.total onto the fixed version 2")

    async def authorize_schedule(self, schedule: ScheduleInfo, action: str) -> None:
        if schedule.name.startswith("audit.") and action == "trigger":
            raise HookDenied("audit schedules run on their ticks only")


def define(flow: Flow) -> None:
    """The workflows of the console tests (also used by the browser tests' worker)."""

    @flow.step
    async def check(ctx: FlowContext, order: dict[str, Any]) -> dict[str, Any]:
        return {"checked": order.get("n"), "api_token": "tok-step-secret"}

    review = Graph(name="orders.review", version=1, initial="received")

    @review.state("received")
    async def received(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        await check(ctx, payload)
        return payload

    @review.state("review", manual=True)
    async def in_review(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @review.state("approved", terminal=True)
    async def approved(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @review.state("rejected", terminal=True)
    async def rejected(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    review.transition("received", "review")
    review.transition("review", "approved", when={"field": "ok", "op": "==", "value": True})
    review.transition("review", "rejected")
    flow.register_graph(review)

    @flow.step
    async def parse(ctx: FlowContext, amount: str) -> int:
        return int(amount)  # the bug: "42 EUR" is not a number

    @flow.step
    async def parse_amount(ctx: FlowContext, amount: str) -> int:
        return int(amount.split()[0])

    @flow.workflow(name="orders.total", version=1)
    async def total_v1(ctx: FlowContext, order: dict[str, Any]) -> int:
        await check(ctx, order)
        return await parse(ctx, order["amount"])

    @flow.workflow(name="orders.total", version=2)
    async def total_v2(ctx: FlowContext, order: dict[str, Any]) -> int:
        await check(ctx, order)
        return await parse_amount(ctx, order["amount"])

    @flow.workflow(name="jobs.fail", version=1)
    async def fail(ctx: FlowContext, n: int) -> None:
        raise ValueError(f"boom {n}")

    @flow.workflow(name="jobs.wait", version=1)
    async def wait(ctx: FlowContext, n: int) -> Any:
        return await ctx.wait_for_signal("go")


MAIL_QUEUE = "orders.mail"


if "CONSOLE_TEST_URL" in os.environ:
    flow = Flow(
        database_url=os.environ["CONSOLE_TEST_URL"],
        lease=1.5,
        heartbeat=0.3,
        reaper_interval=0.2,
        poll_interval=0.3,
        shutdown_grace=0.5,
        hooks=[OpsRules()],
    )
    define(flow)
    flow.queue(MAIL_QUEUE, concurrency=1)  # the browser tests' flow-control queue


def allow_ada(request: Any) -> str | None:
    """The browser tests' login: a ``user=ada`` cookie."""
    return "ada" if request.cookies.get("user") == "ada" else None
