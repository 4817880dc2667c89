# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Real worker subprocesses: SIGKILL recovery, leader failover, durable timers, poison runs."""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, RunFailed, RunStatus
from forktex_core.flow._db import TRANSIENT

from .conftest import wait_until
from .worker_procs import WorkerProcs, load_app

APP = Path(__file__).with_name("flow_app.py")

pytestmark = pytest.mark.slow


class Cluster(WorkerProcs):
    """Worker subprocesses running ``flow_app.py`` against one database."""

    def __init__(self, url: str, workdir: Path, env: dict[str, str]) -> None:
        super().__init__(APP, url, workdir, **env)

    def spawn(self, concurrency: int = 16) -> subprocess.Popen[bytes]:
        return self.start("--concurrency", str(concurrency), "--log-level", "INFO")


@pytest.fixture
def cluster_factory(pg: Any, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(**env: str) -> Cluster:
        c = Cluster(pg.url, tmp_path, env)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


@pytest.fixture
async def client(pg: Any, tmp_path: Path) -> AsyncIterator[Flow]:
    """A Flow that only starts runs and reads state (the workflows come from flow_app)."""
    module = load_app(APP, pg.url, tmp_path)
    flow: Flow = module.flow
    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute(
        "CREATE TABLE exec_log (run_id uuid, seq int, pid int);"
        "CREATE TABLE tx_effects (run_id uuid, tag text)"
    )
    await conn.close()
    yield flow
    await flow.close()


until = functools.partial(wait_until, timeout=30.0)


async def test_sigkill_mid_step_two_workers(client: Flow, cluster_factory: Any, pg: Any) -> None:
    cluster = cluster_factory()
    a = cluster.spawn()
    b = cluster.spawn()
    runs = [await client.start("crash.pipeline", {"steps": 5, "hold_at": 2}) for _ in range(8)]
    await until(lambda: len(cluster.holding()) == 8)
    held = cluster.holding()
    assert set(held.values()) <= {a.pid, b.pid}
    killed = a if list(held.values()).count(a.pid) else b
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    t0 = time.monotonic()
    cluster.release()
    results = [await client.result(r, timeout=30) for r in runs]
    recovery = time.monotonic() - t0
    assert results == [[0, 1, 2, 3, 4]] * 8
    assert recovery < 15
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch("SELECT run_id, seq, count(*) AS n FROM exec_log GROUP BY 1, 2")
    finally:
        await conn.close()
    counts = {(str(r["run_id"]), r["seq"]): r["n"] for r in rows}
    for rid in map(str, runs):
        for seq in (0, 1, 3, 4):  # completed steps never run twice
            assert counts[(rid, seq)] == 1, (rid, seq)
        # the step in flight when its worker died runs again (at-least-once), once more only
        assert counts[(rid, 2)] == (2 if held[rid] == killed.pid else 1)
    for rid in runs:
        info = await client.get_run(rid)
        assert info.recovery_attempts == (1 if held[str(rid)] == killed.pid else 0)


async def test_transactional_step_exactly_once_across_sigkill(
    client: Flow, cluster_factory: Any, pg: Any
) -> None:
    cluster = cluster_factory()
    a = cluster.spawn()
    run_id = await client.start("crash.tx")
    await until(lambda: len(cluster.holding()) == 1)  # after effect "a" committed
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    cluster.release()
    cluster.spawn()
    assert await client.result(run_id, timeout=30) == [1, "released", 1]
    conn = await asyncpg.connect(pg.dsn)
    try:
        tags = await conn.fetch("SELECT tag FROM tx_effects WHERE run_id = $1 ORDER BY tag", run_id)
    finally:
        await conn.close()
    assert [t["tag"] for t in tags] == ["a", "b"]


async def test_durable_sleep_across_worker_restart(client: Flow, cluster_factory: Any) -> None:
    cluster = cluster_factory()
    a = cluster.spawn()
    run_id = await client.start("crash.sleep", 3.0)
    await until(lambda: _is(client, run_id, RunStatus.WAITING))
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    await asyncio.sleep(1.0)
    cluster.spawn()
    elapsed = await client.result(run_id, timeout=30)
    assert elapsed >= 3.0
    history = await client.history(run_id)
    sleeps = [s for s in history if s.kind == "sleep"]
    started = next(s for s in history if s.kind == "now")
    # one wake-up time, recorded 3 s after the start: the new worker did not restart the timer
    # (however long it took to start)
    assert len(sleeps) == 1
    assert sleeps[0].output - started.output == pytest.approx(3.0, abs=0.5)


async def _is(flow: Flow, run_id: Any, status: RunStatus) -> bool:
    return (await flow.get_run(run_id)).status is status


async def _leader(flow: Flow, not_: str | None = None) -> str | None:
    leader = await flow.leader()
    return leader if leader and leader != not_ else None


async def test_leader_failover(client: Flow, cluster_factory: Any) -> None:
    cluster = cluster_factory()
    procs = [cluster.spawn(), cluster.spawn()]
    await until(lambda: _leader(client), timeout=20)
    first = await client.leader()
    assert first is not None
    pid = int(first.split(":")[1])
    victim = next(p for p in procs if p.pid == pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    t0 = time.monotonic()
    await until(lambda: _leader(client, not_=first), timeout=20)
    assert time.monotonic() - t0 < 10
    second = await client.leader()
    assert second is not None and int(second.split(":")[1]) != pid


async def test_poison_run_parked_as_dead(cluster_factory: Any, client: Flow, pg: Any) -> None:
    cluster = cluster_factory(FLOW_TEST_MAX_RECOVERY="1", FLOW_TEST_LEASE="1.0")
    run_id = await client.start("crash.poison")
    cluster.spawn()
    deadline = time.monotonic() + 60
    while not await _is(client, run_id, RunStatus.DEAD):
        assert time.monotonic() < deadline
        if all(p.poll() is not None for p in cluster.procs):
            cluster.spawn()  # a supervisor restarting crashed workers
        await asyncio.sleep(0.1)
    with pytest.raises(RunFailed) as err:
        await client.result(run_id, timeout=5)
    assert err.value.status == "dead" and err.value.error["type"] == "PoisonRun"
    assert (await client.get_run(run_id)).recovery_attempts == 2


async def test_run_that_makes_its_worker_exit_is_parked_as_dead(
    cluster_factory: Any, client: Flow
) -> None:
    """A graceful exit caused by the run itself is a recovery attempt, like a crash."""
    cluster = cluster_factory(FLOW_TEST_MAX_RECOVERY="1")
    run_id = await client.start("crash.exit")
    cluster.spawn()
    deadline = time.monotonic() + 60
    while not await _is(client, run_id, RunStatus.DEAD):
        assert time.monotonic() < deadline
        if all(p.poll() is not None for p in cluster.procs):
            assert len(cluster.procs) < 4, "the run kept its worker exiting without parking"
            cluster.spawn()
        await asyncio.sleep(0.1)
    assert [p.wait(10) for p in cluster.procs] == [3, 3]
    info = await client.get_run(run_id)
    assert info.recovery_attempts == 2 and info.error["type"] == "PoisonRun"


async def test_worker_survives_terminated_backends(
    client: Flow, cluster_factory: Any, pg: Any
) -> None:
    cluster = cluster_factory()
    cluster.spawn()
    first = await client.start("crash.wait")
    await until(lambda: _is(client, first, RunStatus.WAITING))
    conn = await asyncpg.connect(pg.dsn)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    assert killed >= 3  # worker pool, LISTEN and leader connections (and ours)
    # the client's own pool was cut too: the next calls reconnect
    await until(lambda: _send(client, first), timeout=20)
    assert await client.result(first, timeout=30) == "after"
    second = await client.start("crash.pipeline", {"steps": 3, "hold_at": -1})
    assert await client.result(second, timeout=30) == [0, 1, 2]
    assert cluster.procs[0].poll() is None


async def _send(flow: Flow, run_id: Any) -> bool:
    try:
        await flow.send_signal(run_id, "go", payload="after")
        return True
    except TRANSIENT:  # the library's own list of "the connection went away" errors
        return False
