# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Chaos: worker subprocesses SIGKILLed and restarted at random, every backend terminated once.

Three workers run 240 five-step workflows (step 2 transactional) while the test SIGKILLs a
random worker at random moments and restarts it, and once terminates every Postgres backend
of the database. At the end every run succeeded with the right output, its checkpoint log
holds exactly one completed entry per step, every transactional step's row exists exactly
once, and a plain step ran more than once only when the worker running it was killed.

The schedule comes from a fixed seed printed at the start (override: ``FLOW_CHAOS_SEED``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow

APP = Path(__file__).with_name("flow_chaos_app.py")
SEED = int(os.environ.get("FLOW_CHAOS_SEED", "20260517"))
RUNS = 240
WORKERS = 3
CONCURRENCY = 8
MAX_KILLS = 12
DEADLINE = 150.0  # seconds for the whole run; it normally takes well under a minute

pytestmark = pytest.mark.slow

TRANSIENT = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


class Workers:
    """``WORKERS`` slots, each holding the current worker subprocess for that slot."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.env = {**os.environ, "FLOW_TEST_URL": url}
        self.dir = workdir
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * WORKERS
        self.all: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()
        self.unexpected: list[tuple[int, int | None]] = []

    def spawn(self, slot: int) -> None:
        log = open(self.dir / f"worker-{len(self.all)}.log", "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forktex_core.flow._cli",
                "worker",
                f"{APP}:flow",
                "--concurrency",
                str(CONCURRENCY),
                "--log-level",
                "INFO",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[slot] = proc
        self.all.append(proc)

    def kill(self, slot: int) -> int:
        proc = self.procs[slot]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.killed.add(proc.pid)
        self.procs[slot] = None
        return proc.pid

    def check_alive(self) -> None:
        """Restart (and remember) any worker that exited without being killed by us."""
        for slot, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None:
                self.unexpected.append((proc.pid, proc.returncode))
                self.spawn(slot)

    def stop(self) -> None:
        for proc in self.all:
            if proc.poll() is None:
                proc.kill()
        for proc in self.all:
            proc.wait(10)

    def logs(self, tail: int = 4000) -> str:
        out = []
        for path in sorted(self.dir.glob("worker-*.log")):
            out.append(f"--- {path.name}\n{path.read_bytes()[-tail:].decode(errors='replace')}")
        return "\n".join(out)


def load_client(url: str) -> Flow:
    """The chaos app's Flow in this process (used to start runs only)."""
    old = os.environ.get("FLOW_TEST_URL")
    os.environ["FLOW_TEST_URL"] = url
    try:
        spec = importlib.util.spec_from_file_location(f"flow_chaos_app_{id(url)}", APP)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if old is None:
            del os.environ["FLOW_TEST_URL"]
        else:
            os.environ["FLOW_TEST_URL"] = old
    flow: Flow = module.flow
    return flow


async def fetchval(dsn: str, conn: list[asyncpg.Connection | None], sql: str) -> Any:
    """Run ``sql`` on a monitoring connection, reconnecting when it was dropped."""
    for _ in range(50):
        try:
            if conn[0] is None or conn[0].is_closed():
                conn[0] = await asyncpg.connect(dsn)
            return await conn[0].fetchval(sql)
        except TRANSIENT:
            conn[0] = None
            await asyncio.sleep(0.1)
    raise AssertionError("monitoring connection could not be re-established")


async def test_chaos_random_sigkills_and_terminated_backends(pg: Any, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(
        f"\nflow chaos: seed={SEED} (FLOW_CHAOS_SEED to reproduce), {RUNS} runs x 5 steps, "
        f"{WORKERS} workers x concurrency {CONCURRENCY}, up to {MAX_KILLS} SIGKILLs"
    )
    setup = await asyncpg.connect(pg.dsn)
    try:
        await setup.execute(
            "CREATE TABLE chaos_exec (token uuid PRIMARY KEY, run_id uuid NOT NULL, "
            "step int NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now());"
            "CREATE TABLE chaos_effects (run_id uuid NOT NULL, step int NOT NULL, "
            "pid int NOT NULL)"  # no unique constraint: duplicates must show
        )
    finally:
        await setup.close()

    client = load_client(pg.url)
    runs: dict[str, int] = {}
    for k in range(RUNS):
        runs[str(await client.start("chaos.pipeline", k))] = k
    await client.close()

    workers = Workers(pg.url, tmp_path)
    monitor: list[asyncpg.Connection | None] = [None]
    events: list[str] = []
    t0 = time.monotonic()
    try:
        for slot in range(WORKERS):
            workers.spawn(slot)
        kills = 0
        next_kill = t0 + rng.uniform(1.5, 3.0)
        restarts: dict[int, float] = {}
        terminated = False
        done = 0
        while done < RUNS:
            now = time.monotonic()
            assert now - t0 < DEADLINE, (
                f"only {done}/{RUNS} runs finished in {DEADLINE} s (seed {SEED}); "
                f"events: {events}\n{workers.logs()}"
            )
            if kills < MAX_KILLS and now >= next_kill:
                alive = [s for s, p in enumerate(workers.procs) if p is not None]
                if alive:
                    slot = rng.choice(alive)
                    pid = workers.kill(slot)
                    kills += 1
                    restarts[slot] = now + rng.uniform(0.0, 1.5)
                    events.append(f"{now - t0:.1f}s SIGKILL {pid} ({done} done)")
                next_kill = now + rng.uniform(0.8, 3.0)
            for slot, at in list(restarts.items()):
                if now >= at:
                    workers.spawn(slot)
                    del restarts[slot]
            if not terminated and done >= RUNS // 3:
                cut = await fetchval(
                    pg.dsn,
                    monitor,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                terminated = True
                events.append(f"{now - t0:.1f}s terminated {cut} backends ({done} done)")
            workers.check_alive()
            done = await fetchval(
                pg.dsn,
                monitor,
                "SELECT count(*) FROM forktex_flow.runs "
                "WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead')",
            )
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - t0
        print(f"flow chaos: all {RUNS} runs finished in {elapsed:.1f} s; events: {events}")
        assert terminated and kills >= 3, events
        assert not workers.unexpected, (
            f"workers exited on their own: {workers.unexpected}\n{workers.logs()}"
        )
    finally:
        workers.stop()
        if monitor[0] is not None:
            await monitor[0].close()

    await check_invariants(pg.dsn, runs, workers.killed, events)


async def check_invariants(
    dsn: str, runs: dict[str, int], killed: set[int], events: list[str]
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text, status, output::text AS output, error::text AS error, "
            "recovery_attempts "
            "FROM forktex_flow.runs"
        )
        steps = await conn.fetch(
            "SELECT run_id::text, seq, name, kind, status FROM forktex_flow.steps "
            "ORDER BY run_id, seq"
        )
        effects = await conn.fetch(
            "SELECT run_id::text, step, count(*) AS n FROM chaos_effects GROUP BY 1, 2"
        )
        execs = await conn.fetch("SELECT run_id::text, step, pid FROM chaos_exec")
    finally:
        await conn.close()

    # every run completed (exactly once: the fenced completion) with the right output
    assert len(rows) == len(runs)
    bad = [(r["id"], r["status"], r["error"]) for r in rows if r["status"] != "succeeded"]
    assert not bad, f"runs not succeeded (seed {SEED}): {bad[:5]}; events {events}"
    import json

    for r in rows:
        k = runs[r["id"]]
        assert json.loads(r["output"]) == [k * 10 + i for i in range(5)], r
    recovered = sum(1 for r in rows if r["recovery_attempts"] > 0)

    # the checkpoint log: exactly one completed entry per step, in order
    log: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    for s in steps:
        log[s["run_id"]].append((s["seq"], s["name"], s["kind"], s["status"]))
    for rid in runs:
        entries = log[rid]
        assert [e[0] for e in entries] == list(range(5)), (rid, entries)
        assert all(e[3] == "completed" for e in entries), (rid, entries)
        assert [e[2] for e in entries] == ["step", "step", "transaction", "step", "step"]

    # transactional step: its row exists exactly once
    counts = {(e["run_id"], e["step"]): e["n"] for e in effects}
    assert set(counts) == {(rid, 2) for rid in runs}
    dup = {key: n for key, n in counts.items() if n != 1}
    assert not dup, f"transactional step effects duplicated (seed {SEED}): {dup}"

    # plain steps ran at least once; more only when a worker running them was killed
    by_step: dict[tuple[str, int], list[int]] = defaultdict(list)
    for e in execs:
        by_step[(e["run_id"], e["step"])].append(e["pid"])
    reruns = 0
    for rid in runs:
        for i in (0, 1, 3, 4):
            pids = by_step[(rid, i)]
            assert pids, f"step {i} of run {rid} never ran"
            if len(pids) == 1:
                continue
            reruns += len(pids) - 1
            per_pid = Counter(pids)
            assert max(per_pid.values()) == 1, (
                f"one worker ran step {i} of run {rid} twice: {pids} (seed {SEED})"
            )
            survivors = [p for p in pids if p not in killed]
            assert len(survivors) <= 1, (
                f"step {i} of run {rid} ran {len(pids)} times by workers that were not "
                f"killed: {pids}, killed {sorted(killed)} (seed {SEED})"
            )
    print(
        f"flow chaos: {recovered} runs recovered from killed workers, {reruns} in-flight "
        f"plain steps re-ran, 0 duplicated transactional effects"
    )


async def test_transactional_step_survives_terminated_backend(pg: Any) -> None:
    """The step's own connection is cut mid-transaction: it runs again, its row exists once."""
    from sqlalchemy import text

    from forktex_core.flow import FlowContext

    setup = await asyncpg.connect(pg.dsn)
    await setup.execute("CREATE TABLE tx_rows (run_id uuid NOT NULL)")
    flow = Flow(database_url=pg.url, lease=3.0, heartbeat=0.3, reaper_interval=0.2)
    entered = asyncio.Event()

    @flow.transaction
    async def write(ctx: FlowContext, session: Any) -> str:
        await session.execute(text("INSERT INTO tx_rows VALUES (:r)"), {"r": ctx.run_id})
        entered.set()
        await session.execute(text("SELECT pg_sleep(0.5)"))
        return "written"

    @flow.workflow(name="chaos.tx_cut", version=1)
    async def wf(ctx: FlowContext, _: Any) -> str:
        return str(await write(ctx))

    worker = asyncio.create_task(flow.run_worker(concurrency=2))
    try:
        await flow.wait_worker_started()
        run_id = await flow.start("chaos.tx_cut")
        await asyncio.wait_for(entered.wait(), 30)
        for _ in range(100):  # wait until the sleep is on the server, then cut that backend
            cut = await setup.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(0.5)%' "
                "AND state = 'active' AND pid <> pg_backend_pid()"
            )
            if cut:
                break
            await asyncio.sleep(0.01)
        assert cut == 1
        assert await flow.result(run_id, timeout=30) == "written"
        rows = await setup.fetchval("SELECT count(*) FROM tx_rows WHERE run_id = $1", run_id)
        assert rows == 1
        steps = await flow.history(run_id)
        assert [(s.kind, s.status, s.attempt) for s in steps] == [("transaction", "completed", 1)]
    finally:
        flow.stop()
        await asyncio.wait_for(worker, 20)
        await flow.close()
        await setup.close()
