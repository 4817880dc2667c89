# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow queues`` and ``forktex-flow schedules``: flow control and cron schedules."""

from __future__ import annotations

import argparse
import asyncio
from zoneinfo import ZoneInfo

from ._cli_common import connect, open_flow, short, table, when
from ._queues import QueueInfo


def _limits(info: QueueInfo) -> str:
    q = info.queue
    parts = [
        f"{label}={value}"
        for label, value in (
            ("concurrency", q.concurrency),
            ("worker", q.worker_concurrency),
            ("partition", q.partition_concurrency),
        )
        if value is not None
    ]
    if q.limit is not None:
        parts.append(f"rate={q.limit}/{q.period:g}s")
    if q.priorities:
        parts.append("priorities")
    return " ".join(parts) or "unlimited"


async def _queues(args: argparse.Namespace) -> int:
    flow = open_flow(args)
    try:
        await connect(flow)
        infos = await flow.queues(args.name)
        rows = [
            (
                i.name,
                _limits(i),
                i.depth,
                i.delayed,
                i.active,
                i.running,
                "" if i.window_starts is None else f"{i.window_starts}/{i.queue.limit}",
                short(i.partitions, 40) if i.partitions else "",
            )
            for i in infos
        ]
        headers = (
            "QUEUE",
            "LIMITS",
            "DEPTH",
            "DELAYED",
            "ACTIVE",
            "RUNNING",
            "WINDOW",
            "PARTITIONS",
        )
        print(table(headers, rows))
        print(f"\n{len(infos)} queue(s)")
        return 0
    finally:
        await flow.close()


def cmd_queues(args: argparse.Namespace) -> int:
    return asyncio.run(_queues(args))


async def _schedules(args: argparse.Namespace) -> int:
    flow = open_flow(args)
    try:
        await connect(flow)
        if args.schedules_command == "list":
            schedules = await flow.schedules()
            rows = [
                (
                    s.name,
                    s.workflow if s.version is None else f"{s.workflow}:{s.version}",
                    s.cron,
                    s.tz,
                    s.catch_up if s.catch_up != "all" else f"all<={s.max_catch_up}",
                    when(s.next_tick.astimezone(ZoneInfo(s.tz))),
                    "" if s.last_tick is None else when(s.last_tick.astimezone(ZoneInfo(s.tz))),
                    "paused" if s.paused else "active",
                    "code" if s.declared else "runtime",
                )
                for s in schedules
            ]
            headers = (
                "NAME",
                "WORKFLOW",
                "CRON",
                "TZ",
                "CATCH-UP",
                "NEXT TICK",
                "LAST TICK",
                "STATE",
                "FROM",
            )
            print(table(headers, rows))
            print(f"\n{len(schedules)} schedule(s)")
            return 0
        if args.schedules_command == "pause":
            await flow.pause_schedule(args.name)
            print(f"schedule {args.name} paused")
        elif args.schedules_command == "resume":
            await flow.resume_schedule(args.name)
            info = await flow.get_schedule(args.name)
            print(f"schedule {args.name} resumed; next tick {info.next_tick.isoformat()}")
        else:
            run_id = await flow.trigger_schedule(args.name)
            print(f"run {run_id} started by schedule {args.name}")
        return 0
    finally:
        await flow.close()


def cmd_schedules(args: argparse.Namespace) -> int:
    return asyncio.run(_schedules(args))
