# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Schedules in one process: declared and runtime schedules fire their ticks as runs keyed
by the tick; pause, resume, trigger, backfill, delete; bad input is refused by name."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from forktex_core.flow import (
    Flow,
    FlowClient,
    FlowContext,
    FlowHooks,
    HookDenied,
    InvalidArgument,
    InvalidSchedule,
    NotSerialisable,
    ScheduleInfo,
    ScheduleNotFound,
)


async def _keys(pg: Any, schedule: str) -> list[str]:
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key FROM forktex_flow.runs WHERE metadata->>'schedule' = $1 "
            "ORDER BY idempotency_key",
            schedule,
        )
    finally:
        await conn.close()
    return [r["idempotency_key"] for r in rows]


async def test_a_declared_schedule_runs_each_tick_once(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    seen: list[dict[str, Any]] = []

    @flow.schedule("* * * * * *", input={"n": 1})
    @flow.workflow(name="sched.every_second")
    async def every_second(ctx: FlowContext, payload: dict[str, Any]) -> None:
        seen.append(payload)

    async with h.running(flow):
        await h.wait_until(lambda: len(seen) >= 3, timeout=10)
        info = (await flow.schedules())[0]
    keys = await _keys(pg, "sched.every_second")
    assert len(keys) == len(set(keys)) >= 3
    assert all(k.startswith("schedule:sched.every_second:") and k.endswith("Z") for k in keys)
    assert seen[0] == {"n": 1}
    assert info.name == "sched.every_second" and info.declared and not info.paused
    assert info.last_tick is not None and info.next_tick > info.last_tick


async def test_runtime_schedules_pause_resume_trigger_backfill_delete(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()
    runs: list[str] = []

    @flow.workflow(name="sched.report")
    async def report(ctx: FlowContext, payload: dict[str, Any]) -> str:
        runs.append(payload["tenant"])
        return payload["tenant"]

    info = await flow.create_schedule(
        "tenant-7.report", report, "0 6 * * *", tz="Europe/Vienna", input={"tenant": "t7"}
    )
    assert (info.name, info.workflow, info.cron, info.tz) == (
        "tenant-7.report",
        "sched.report",
        "0 6 * * *",
        "Europe/Vienna",
    )
    assert info.input == {"tenant": "t7"} and not info.declared and info.last_tick is None
    # the next tick is 06:00 Vienna time
    local = info.next_tick.astimezone(ZoneInfo("Europe/Vienna"))
    assert (local.hour, local.minute, local.second) == (6, 0, 0)
    # the same definition again is a no-op; another one under the name is refused
    await flow.create_schedule(
        "tenant-7.report", report, "0 6 * * *", tz="Europe/Vienna", input={"tenant": "t7"}
    )
    with pytest.raises(InvalidSchedule, match="already exists"):
        await flow.create_schedule("tenant-7.report", report, "0 7 * * *")

    async with h.running(flow):
        # trigger: a run now, outside the ticks, also while paused
        await flow.pause_schedule("tenant-7.report")
        assert (await flow.get_schedule("tenant-7.report")).paused
        run_id = await flow.trigger_schedule("tenant-7.report")
        assert await flow.result(run_id, timeout=20) == "t7"
        # backfill: every tick in [start, end), each once however often it is asked for
        start = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)
        end = datetime(2026, 3, 31, 0, 0, tzinfo=UTC)
        first = await flow.backfill_schedule("tenant-7.report", start, end)
        again = await flow.backfill_schedule("tenant-7.report", start, end)
        assert len(first) == 4 and again == []
        for rid in first:
            assert await flow.result(rid, timeout=20) == "t7"
    keys = await _keys(pg, "tenant-7.report")
    backfilled = [k for k in keys if ":trigger:" not in k]
    # 06:00 in Vienna: CET (+01) before the spring-forward on 29 March, CEST (+02) after
    assert backfilled == [
        "schedule:tenant-7.report:2026-03-27T05:00:00Z",
        "schedule:tenant-7.report:2026-03-28T05:00:00Z",
        "schedule:tenant-7.report:2026-03-29T04:00:00Z",
        "schedule:tenant-7.report:2026-03-30T04:00:00Z",
    ]
    assert len([k for k in keys if ":trigger:" in k]) == 1
    # resume: the next tick is in the future (ticks passed while paused never run)
    await flow.resume_schedule("tenant-7.report")
    resumed = await flow.get_schedule("tenant-7.report")
    assert not resumed.paused and resumed.next_tick > datetime.now(UTC)
    await flow.delete_schedule("tenant-7.report")
    assert [s.name for s in await flow.schedules()] == []
    with pytest.raises(ScheduleNotFound, match=r"tenant-7\.report"):
        await flow.get_schedule("tenant-7.report")
    # the runs stay
    assert len(await _keys(pg, "tenant-7.report")) == 5


async def test_a_paused_schedule_fires_nothing_and_resumes_at_its_next_tick(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="sched.noop")
    async def noop(ctx: FlowContext) -> None:
        return None

    await flow.create_schedule("p", noop, "* * * * * *")
    async with h.running(flow):
        await h.wait_until(lambda: _keys(pg, "p"), timeout=10)
        await flow.pause_schedule("p")
        fired = len(await _keys(pg, "p"))
        await asyncio.sleep(2.2)
        assert len(await _keys(pg, "p")) <= fired + 1  # a round in flight at the pause
        paused_count = len(await _keys(pg, "p"))
        await asyncio.sleep(1.2)
        assert len(await _keys(pg, "p")) == paused_count
        await flow.resume_schedule("p")
        await h.wait_until(lambda: _count_more(pg, "p", paused_count), timeout=10)


async def _count_more(pg: Any, name: str, than: int) -> bool:
    return len(await _keys(pg, name)) > than


@pytest.mark.parametrize(
    ("catch_up", "max_catch_up", "expected"),
    [
        ("skip", 10, []),
        ("latest", 10, [5]),
        ("all", 3, [3, 4, 5]),
        ("all", 10, [1, 2, 3, 4, 5]),
    ],
    ids=["skip", "latest", "all-up-to-3", "all-up-to-10"],
)
async def test_downtime_of_five_ticks_under_each_catch_up_policy(
    make_flow: Callable[..., Flow],
    h: Any,
    pg: Any,
    catch_up: str,
    max_catch_up: int,
    expected: list[int],
) -> None:
    flow = make_flow()

    @flow.workflow(name="sched.tick")
    async def tick(ctx: FlowContext) -> None:
        return None

    await flow.create_schedule(
        "down", tick, "* * * * * *", catch_up=catch_up, max_catch_up=max_catch_up, grace=0.4
    )
    async with h.running(flow):
        await h.wait_until(lambda: _count_more(pg, "down", 1), timeout=10)
    # every worker is down now: the last tick handled is t0; ticks t0+1 .. t0+5 pass
    t0 = (await flow.get_schedule("down")).last_tick
    assert t0 is not None
    await asyncio.sleep(max(0.0, (t0 + timedelta(seconds=5.5) - datetime.now(UTC)).total_seconds()))
    async with h.running(flow):
        await h.wait_until(lambda: _tick_ran(pg, "down", t0 + timedelta(seconds=7)), timeout=10)
    keys = set(await _keys(pg, "down"))
    missed = [i for i in range(1, 6) if _key("down", t0 + timedelta(seconds=i)) in keys]
    assert missed == expected
    assert _key("down", t0) in keys


def _key(name: str, tick: datetime) -> str:
    return f"schedule:{name}:{tick.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def _tick_ran(pg: Any, name: str, tick: datetime) -> bool:
    return _key(name, tick) in await _keys(pg, name)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cron": "*/0 * * * *"}, "minute field '\\*/0': step must be at least 1"),
        ({"cron": "* * * *"}, "has 4 fields"),
        ({"cron": 5}, "non-empty string"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"catch_up": "never"}, "catch_up must be one of"),
        ({"max_catch_up": 0}, "max_catch_up"),
        ({"grace": -1}, "grace"),
        ({"name": ""}, "schedule name"),
        ({"workflow": ""}, "workflow"),
        ({"input": {1, 2}}, "input"),
    ],
)
async def test_runtime_create_refuses_bad_input_by_name(
    make_flow: Callable[..., Flow], kwargs: dict[str, Any], match: str
) -> None:
    flow = make_flow()
    args: dict[str, Any] = {"name": "bad", "workflow": "sched.x", "cron": "* * * * *", **kwargs}
    with pytest.raises((InvalidSchedule, NotSerialisable), match=match):
        await flow.create_schedule(args.pop("name"), args.pop("workflow"), args.pop("cron"), **args)
    assert await flow.schedules() == []


async def test_controls_of_an_unknown_schedule_and_bad_ranges(
    make_flow: Callable[..., Flow],
) -> None:
    flow = make_flow()
    for call in (
        flow.pause_schedule,
        flow.resume_schedule,
        flow.trigger_schedule,
        flow.delete_schedule,
        flow.get_schedule,
    ):
        with pytest.raises(ScheduleNotFound, match="'ghost'"):
            await call("ghost")
    await flow.create_schedule("r", "sched.x", "@hourly")
    now = datetime.now(UTC)
    with pytest.raises(InvalidSchedule, match="timezone-aware"):
        await flow.backfill_schedule("r", datetime(2026, 1, 1), now)
    with pytest.raises(InvalidSchedule, match="start must be before end"):
        await flow.backfill_schedule("r", now, now - timedelta(hours=1))
    with pytest.raises(InvalidSchedule, match="more than 10000 ticks"):
        await flow.backfill_schedule("r", now - timedelta(days=500), now)
    with pytest.raises(ScheduleNotFound):
        await flow.backfill_schedule("ghost", now - timedelta(hours=1), now)


def test_declaring_schedules_refuses_bad_input(make_flow: Callable[..., Flow]) -> None:
    flow = make_flow()
    with pytest.raises(InvalidSchedule, match="hour field '25'"):
        flow.schedule("0 25 * * *")
    with pytest.raises(InvalidSchedule, match=r"stacked above @flow\.workflow"):

        @flow.schedule("@daily")
        async def plain(ctx: FlowContext) -> None:
            return None

    @flow.workflow(name="sched.twice")
    async def twice(ctx: FlowContext) -> None:
        return None

    flow.schedule("@daily", workflow="sched.twice")
    with pytest.raises(InvalidSchedule, match="give each schedule of a workflow its own name"):
        flow.schedule("@hourly", workflow=twice)
    flow.schedule("@hourly", workflow=twice, name="sched.twice.hourly")


async def test_a_schedule_this_host_cannot_read_does_not_stop_the_others(
    make_flow: Callable[..., Flow], h: Any, pg: Any, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow()

    @flow.workflow(name="sched.ok")
    async def ok(ctx: FlowContext) -> None:
        return None

    await flow.create_schedule("healthy", ok, "* * * * * *")
    await flow.create_schedule("unreadable", ok, "* * * * * *")
    conn = await asyncpg.connect(pg.dsn)
    try:  # a zone this host's tz database lacks (stored by another host)
        await conn.execute(
            "UPDATE forktex_flow.schedules SET tz = 'Mars/Olympus' WHERE name = 'unreadable'"
        )
    finally:
        await conn.close()
    async with h.running(flow):
        await h.wait_until(lambda: _count_more(pg, "healthy", 2), timeout=10)
        assert flow.is_leader
    assert await _keys(pg, "unreadable") == []
    assert "schedule 'unreadable' cannot fire" in caplog.text
    assert "Mars/Olympus" in caplog.text


async def test_a_client_without_workflow_code_creates_and_controls_schedules(
    make_flow: Callable[..., Flow], h: Any, pg: Any
) -> None:
    client = FlowClient(database_url=pg.url)
    try:
        info = await client.create_schedule(
            "client.made", "sched.served", "* * * * * *", input={"by": "api"}, catch_up="all"
        )
        assert (info.workflow, info.catch_up, info.max_catch_up) == ("sched.served", "all", 10)
        flow = make_flow()
        got: list[dict[str, str]] = []

        @flow.workflow(name="sched.served")
        async def served(ctx: FlowContext, payload: dict[str, str]) -> None:
            got.append(payload)

        async with h.running(flow):
            await h.wait_until(lambda: len(got) >= 2, timeout=10)
            await client.pause_schedule("client.made")
            assert [s.paused for s in await client.schedules()] == [True]
            run_id = await client.trigger_schedule("client.made")
            assert (await client.result(run_id, timeout=20)) is None
        assert got[0] == {"by": "api"}
        await client.delete_schedule("client.made")
        assert await client.schedules() == []
    finally:
        await client.close()


tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="")


class TenantSchedules(FlowHooks):
    """A tenant controls only the schedules named after it; every question is recorded."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, bool]] = []

    async def authorize_schedule(self, schedule: ScheduleInfo, action: str) -> None:
        self.asked.append((schedule.name, action, schedule.paused))
        if not schedule.name.startswith(f"{tenant.get()}."):
            raise HookDenied(f"{schedule.name} belongs to another tenant; {action} refused")


async def test_authorize_schedule_refuses_each_control_and_nothing_changes(
    make_flow: Callable[..., Flow], pg: Any
) -> None:
    hooks = TenantSchedules()
    flow = make_flow(hooks=[hooks])
    for name in ("t1.report", "t2.report"):
        await flow.create_schedule(name, "sched.report", "0 6 * * *", input={"for": name})
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=2)

    tenant.set("t2")
    await flow.pause_schedule("t2.report")  # its own: allowed
    tenant.set("t1")
    denied = (
        (flow.pause_schedule, ()),
        (flow.resume_schedule, ()),
        (flow.trigger_schedule, ()),
        (flow.backfill_schedule, (start, end)),
        (flow.delete_schedule, ()),
    )
    hooks.asked.clear()
    for call, extra in denied:
        with pytest.raises(HookDenied, match=r"t2\.report belongs to another tenant"):
            await call("t2.report", *extra)  # type: ignore[operator]
    assert [a for _, a, _ in hooks.asked] == ["pause", "resume", "trigger", "backfill", "delete"]
    assert all(name == "t2.report" and paused for name, _, paused in hooks.asked)
    other = await flow.get_schedule("t2.report")
    assert other.paused and other.last_tick is None
    assert await _keys(pg, "t2.report") == []  # no trigger, no backfill

    hooks.asked.clear()
    await flow.pause_schedule("t1.report")
    assert (await flow.get_schedule("t1.report")).paused
    await flow.resume_schedule("t1.report")
    assert not (await flow.get_schedule("t1.report")).paused
    run_id = await flow.trigger_schedule("t1.report")
    assert len(await flow.backfill_schedule("t1.report", start, end)) == 2
    await flow.delete_schedule("t1.report")
    assert hooks.asked == [
        ("t1.report", "pause", False),
        ("t1.report", "resume", True),
        ("t1.report", "trigger", False),
        ("t1.report", "backfill", False),
        ("t1.report", "delete", False),
    ]
    assert (await flow.get_run(run_id)).metadata["schedule"] == "t1.report"
    assert len(await _keys(pg, "t1.report")) == 3
    assert [s.name for s in await flow.schedules()] == ["t2.report"]

    # an unknown name is not found before any hook is asked; a bad name is refused by name
    hooks.asked.clear()
    for call, extra in denied:
        with pytest.raises(ScheduleNotFound, match="'ghost'"):
            await call("ghost", *extra)  # type: ignore[operator]
        with pytest.raises(InvalidArgument, match="schedule name"):
            await call(7, *extra)  # type: ignore[operator]
    assert hooks.asked == []
