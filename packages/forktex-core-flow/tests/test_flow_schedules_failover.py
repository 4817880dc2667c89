# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Exactly one run per tick with two worker processes while the leader is SIGKILLed:
20 consecutive ticks of a 1-second schedule give exactly 20 runs, each succeeded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow

APP = Path(__file__).with_name("flow_schedule_app.py")
NAME = "tick.every_second"

pytestmark = pytest.mark.slow


def spawn(url: str, workdir: Path, n: int) -> subprocess.Popen[bytes]:
    log = open(workdir / f"worker-{n}.log", "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "forktex_core.flow._cli", "worker", f"{APP}:flow"],
        env={**os.environ, "FLOW_TEST_URL": url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def workers(pg: Any, tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> subprocess.Popen[bytes]:
        proc = spawn(pg.url, tmp_path, n)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(10)


def key(tick: datetime) -> str:
    return f"schedule:{NAME}:{tick.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def test_twenty_ticks_twenty_runs_across_a_leader_sigkill(
    pg: Any, workers: Any, h: Any
) -> None:
    conn = await asyncpg.connect(pg.dsn)
    client = Flow(database_url=pg.url)
    await client.connect()
    try:
        procs = {n: workers(n) for n in (1, 2)}
        await h.wait_until(lambda: conn.fetchval("SELECT count(*) = 2 FROM forktex_flow.workers"))
        await h.wait_until(lambda: client.leader())
        # the window: 20 ticks starting two seconds from now (both workers are up)
        now = await conn.fetchval("SELECT now()")
        first = now.replace(microsecond=0).astimezone(UTC) + timedelta(seconds=2)
        ticks = [first + timedelta(seconds=i) for i in range(20)]
        # SIGKILL the leader's process in the middle of the window
        db_now = await conn.fetchval("SELECT now()")
        await asyncio.sleep(max(0.0, (ticks[8] - db_now).total_seconds() + 0.005))  # as it fires
        leader = await client.leader()
        pid = await conn.fetchval("SELECT pid FROM forktex_flow.workers WHERE id = $1", leader)
        victim = next(n for n, p in procs.items() if p.pid == pid)
        os.kill(pid, signal.SIGKILL)
        procs[victim].wait(10)

        # the survivor takes over; a replacement worker joins
        async def took_over() -> bool:
            return await client.leader() not in (None, leader)

        await h.wait_until(took_over, timeout=20)
        procs[3] = workers(3)
        await h.wait_until(
            lambda: conn.fetchval(
                "SELECT count(*) = 20 FROM forktex_flow.runs WHERE idempotency_key = ANY($1) "
                "AND status = 'succeeded'",
                [key(t) for t in ticks],
            ),
            timeout=60,
        )
        new_leader = await client.leader()
        assert new_leader is not None and new_leader != leader
        rows = await conn.fetch(
            "SELECT idempotency_key, metadata->>'scheduled_at' AS at, status, input::text "
            "FROM forktex_flow.runs WHERE metadata->>'schedule' = $1",
            NAME,
        )
        in_window = [r for r in rows if r["idempotency_key"] in {key(t) for t in ticks}]
        # exactly one run per tick, each tick of the window ran
        assert sorted(r["idempotency_key"] for r in in_window) == [key(t) for t in ticks]
        assert all(r["status"] == "succeeded" for r in in_window)
        # and no run anywhere outside the tick keys or twice for one tick
        assert len({r["idempotency_key"] for r in rows}) == len(rows)
        assert all(r["idempotency_key"] == key(datetime.fromisoformat(r["at"])) for r in rows)
    finally:
        await client.close()
        await conn.close()
