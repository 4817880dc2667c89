# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Chaos: killed workers, terminated backends, lost replies, skewed clocks, cancel and retry.

Three worker subprocesses run 240 workflows (five steps, step 2 transactional, a durable
sleep after step 1) while the test, at random moments:

* SIGKILLs a worker and restarts it, and once terminates every Postgres backend;
* loses the reply of committed statements: the workers talk to Postgres through a proxy
  that closes the connection instead of forwarding some replies (the work is committed,
  the worker never hears of it);
* runs the workers with wall clocks 2 s ahead, 2 s behind and right;
* cancels runs, and retries some of the cancelled ones.

At the end every run is in the state its history explains: succeeded with the right output
and exactly one completed checkpoint per step, or cancelled with a prefix of the pipeline;
no run is left running (or leased, or held by an execution); every transactional effect
exists exactly once for each committed transactional checkpoint; every sleep woke up when
it should on the database's clock whatever the worker's clock said; and a plain step ran
more than once only when a worker was killed, the run lost its lease, or it was cancelled
and retried.

The schedule comes from a fixed seed printed at the start (override: ``FLOW_CHAOS_SEED``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, FlowUnavailable, RunFinished, RunNotRetryable

from .flow_lost_replies import LostReplies
from .worker_procs import WorkerProcs, load_app

HERE = Path(__file__).parent

APP = HERE / "flow_chaos_app.py"
SEED = int(os.environ.get("FLOW_CHAOS_SEED", "20260517"))
RUNS = 240
WORKERS = 3
SKEWS = (2.0, -2.0, 0.0)  # each slot's wall-clock error, seconds
CONCURRENCY = 8
MAX_KILLS = 12
MAX_CANCELS = 30
LOST_REPLIES = 40
DEADLINE = 240.0  # seconds for the whole run; it normally takes about a minute
KINDS = ["step", "step", "sleep", "transaction", "step", "step"]
STEP_AT = {0: 0, 1: 1, 3: 2, 4: 3, 5: 4}  # log position -> pipeline step

pytestmark = pytest.mark.slow

TRANSIENT = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


class Workers:
    """``WORKERS`` slots, each holding the current worker subprocess for that slot."""

    def __init__(self, url: str, direct: str, workdir: Path) -> None:
        self.processes = WorkerProcs(APP, url, workdir, FLOW_TEST_DIRECT_DSN=direct)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * WORKERS
        self.killed: set[int] = set()
        self.unexpected: list[tuple[int, int | None]] = []

    def spawn(self, slot: int) -> None:
        self.procs[slot] = self.processes.start(
            "--concurrency",
            str(CONCURRENCY),
            "--log-level",
            "INFO",
            FLOW_TEST_CLOCK_SKEW=str(SKEWS[slot]),
        )

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
        self.processes.stop()

    def logs(self, tail: int = 4000) -> str:
        return self.processes.logs(tail)


async def fetch(dsn: str, conn: list[asyncpg.Connection | None], sql: str) -> list[Any]:
    """Run ``sql`` on a monitoring connection, reconnecting when it was dropped."""
    for _ in range(50):
        try:
            if conn[0] is None or conn[0].is_closed():
                conn[0] = await asyncpg.connect(dsn)
            rows: list[Any] = await conn[0].fetch(sql)
            return rows
        except TRANSIENT:
            conn[0] = None
            await asyncio.sleep(0.1)
    raise AssertionError("monitoring connection could not be re-established")


class Control:
    """Cancels and retries at random moments; knows each run's expected final status."""

    def __init__(self, client: Flow, runs: list[str], rng: random.Random) -> None:
        self.client = client
        self.runs = runs
        self.rng = rng
        self.expected = dict.fromkeys(runs, "succeeded")
        self.cancelled: set[str] = set()  # cancelled at least once
        self.retry_at: dict[str, float] = {}
        self.cancels = self.retries = 0

    async def act(self, now: float, events: list[str], t0: float, *, cancel: bool) -> None:
        """Maybe cancel a run (while ``cancel``); always retry the runs whose retry is due,
        so that the loop waiting for ``retry_at`` to drain never waits in vain."""
        if cancel and self.cancels < MAX_CANCELS and self.rng.random() < 0.25:
            rid = self.rng.choice(self.runs)
            if await self._cancel(rid, events, now - t0):
                self.cancels += 1
                self.cancelled.add(rid)
                self.expected[rid] = "cancelled"
                if self.rng.random() < 0.6:
                    self.retry_at[rid] = now + self.rng.uniform(0.2, 3.0)
        for rid, at in list(self.retry_at.items()):
            if now >= at:
                del self.retry_at[rid]
                try:
                    await self.client.retry(rid)
                except RunNotRetryable:  # pragma: no cover - only cancelled runs are retried
                    events.append(f"{now - t0:.1f}s retry of {rid} refused")
                    continue
                except FlowUnavailable:
                    # the loop cut the client's connection: the retry may or may not have
                    # been applied; the run says which, and an unapplied one is retried again
                    events.append(f"{now - t0:.1f}s retry of {rid} cut")
                    if await self._status(rid) == "cancelled":
                        self.retry_at[rid] = now + 0.2
                        continue
                self.retries += 1
                self.expected[rid] = "succeeded"

    async def _status(self, rid: str) -> str:
        """The run's status, asked until the client gets an answer."""
        for _ in range(100):
            try:
                return (await self.client.get_run(rid)).status
            except FlowUnavailable:
                await asyncio.sleep(0.1)
        raise AssertionError(f"the client never reached the database to read run {rid}")

    async def _cancel(self, rid: str, events: list[str], at: float) -> bool:
        """Cancel ``rid``; whether it is cancelled by this call. A cut connection leaves the
        outcome unknown, so the call is repeated: a run found cancelled then was cancelled by
        the first attempt (nothing else here cancels)."""
        cut = False
        for _ in range(100):
            try:
                await self.client.cancel(rid)
                return True
            except RunFinished as exc:
                return cut and exc.status == "cancelled"
            except FlowUnavailable:
                cut = True
                events.append(f"{at:.1f}s cancel of {rid} cut")
                await asyncio.sleep(0.1)
        raise AssertionError(f"the client never reached the database to cancel run {rid}")


async def test_chaos_kills_cuts_lost_replies_skewed_clocks_cancel_and_retry(
    pg: Any, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    print(
        f"\nflow chaos: seed={SEED} (FLOW_CHAOS_SEED to reproduce), {RUNS} runs, {WORKERS} "
        f"workers x concurrency {CONCURRENCY} with clock skews {SKEWS}, up to {MAX_KILLS} "
        f"SIGKILLs, {LOST_REPLIES} lost replies, {MAX_CANCELS} cancels"
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

    lost = LostReplies(
        pg.host, pg.port, random.Random(SEED + 1), probability=0.01, limit=LOST_REPLIES
    )
    proxied = dataclasses.replace(pg, host="127.0.0.1", port=await lost.start()).url

    app = load_app(APP, pg.url)
    client: Flow = app.flow
    runs: dict[str, int] = {}
    for k in range(RUNS):
        runs[str(await client.start("chaos.pipeline", k))] = k
    control = Control(client, list(runs), rng)

    workers = Workers(proxied, pg.dsn, tmp_path)
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
        while done < RUNS or control.retry_at:
            now = time.monotonic()
            if now - t0 > DEADLINE:
                stuck = await fetch(
                    pg.dsn,
                    monitor,
                    "SELECT id, status, worker, execution, lease_until, now() AS at "
                    "FROM forktex_flow.runs WHERE status NOT IN "
                    "('succeeded', 'failed', 'cancelled', 'dead') LIMIT 10",
                )
                raise AssertionError(
                    f"only {done}/{RUNS} runs finished in {DEADLINE} s (seed {SEED}); "
                    f"unfinished: {stuck}; events: {events}\n{workers.logs()}"
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
                cut = await fetch(
                    pg.dsn,
                    monitor,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                terminated = True
                events.append(f"{now - t0:.1f}s terminated {cut[0][0]} backends ({done} done)")
            late = done >= RUNS * 3 // 4
            if late:
                lost.enabled = False
            await control.act(now, events, t0, cancel=not late)
            workers.check_alive()
            rows = await fetch(
                pg.dsn,
                monitor,
                "SELECT count(*) FROM forktex_flow.runs "
                "WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead')",
            )
            done = rows[0][0]
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - t0
        print(
            f"flow chaos: all {RUNS} runs finished in {elapsed:.1f} s; {lost.lost} replies "
            f"lost, {control.cancels} cancels, {control.retries} retries; events: {events}"
        )
        assert terminated and kills >= 3 and lost.lost >= 10, (lost.lost, events)
        assert control.cancels >= 5 and control.retries >= 2, (control.cancels, control.retries)
        assert not workers.unexpected, (
            f"workers exited on their own: {workers.unexpected}\n{workers.logs()}"
        )
    finally:
        workers.stop()
        await lost.close()
        await client.close()
        if monitor[0] is not None:
            await monitor[0].close()

    await check_invariants(pg.dsn, runs, control, workers.killed, events, app.sleep_seconds)


async def check_invariants(
    dsn: str,
    runs: dict[str, int],
    control: Control,
    killed: set[int],
    events: list[str],
    sleep_seconds: Any,
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text, status, output::text AS output, error::text AS error, "
            "recovery_attempts, worker, execution, lease_until FROM forktex_flow.runs"
        )
        steps = await conn.fetch(
            "SELECT run_id::text, seq, kind, status, output::text AS output, "
            "extract(epoch FROM started_at)::float8 AS started, "
            "extract(epoch FROM finished_at)::float8 AS finished "
            "FROM forktex_flow.steps ORDER BY run_id, seq"
        )
        effects = await conn.fetch(
            "SELECT run_id::text, step, count(*) AS n FROM chaos_effects GROUP BY 1, 2"
        )
        execs = await conn.fetch("SELECT run_id::text, step, pid FROM chaos_exec")
    finally:
        await conn.close()

    log: dict[str, list[Any]] = defaultdict(list)
    for s in steps:
        log[s["run_id"]].append(s)

    # every run is in the terminal state the test expects, held by no execution any more
    assert len(rows) == len(runs)
    for r in rows:
        rid, entries = r["id"], log[r["id"]]
        assert r["status"] == control.expected[rid], (dict(r), entries, SEED, events)
        assert r["worker"] is None and r["execution"] is None and r["lease_until"] is None, r
        # ... and its history explains it: a prefix of the pipeline, in order, all completed
        assert [e["seq"] for e in entries] == list(range(len(entries))), (rid, entries)
        assert [e["kind"] for e in entries] == KINDS[: len(entries)], (rid, entries)
        assert all(e["status"] == "completed" for e in entries), (rid, entries)
        if r["status"] == "succeeded":
            k = runs[rid]
            assert json.loads(r["output"]) == [k * 10 + i for i in range(5)], r
            assert len(entries) == len(KINDS), (rid, entries)
        else:
            assert json.loads(r["error"])["type"] == "Cancelled", r
    recovered = sum(1 for r in rows if r["recovery_attempts"] > 0)

    # one clock: every sleep woke when it should on the database's clock, whatever the
    # wall clock of the worker that recorded it (2 s ahead, 2 s behind, right)
    for rid, entries in log.items():
        if len(entries) > 2:
            sleep = entries[2]
            wake = float(sleep["output"])
            assert wake - sleep["finished"] == pytest.approx(sleep_seconds(runs[rid]), abs=0.5), (
                rid,
                dict(sleep),
            )
        if len(entries) > 3:
            assert entries[3]["started"] >= wake - 0.25, (rid, entries[2:4])

    # transactional step: its row exists exactly once when its checkpoint does, else never
    counts = {(e["run_id"], e["step"]): e["n"] for e in effects}
    committed = {(rid, 2) for rid, entries in log.items() if len(entries) > 3}
    assert set(counts) == committed, set(counts) ^ committed
    dup = {key: n for key, n in counts.items() if n != 1}
    assert not dup, f"transactional step effects duplicated (seed {SEED}): {dup}"

    # plain steps ran at least once when checkpointed; more only when a worker running them
    # was killed, the run lost its lease, or it was cancelled and retried
    by_step: dict[tuple[str, int], list[int]] = defaultdict(list)
    for e in execs:
        by_step[(e["run_id"], e["step"])].append(e["pid"])
    attempts = {r["id"]: r["recovery_attempts"] for r in rows}
    reruns = 0
    for rid, entries in log.items():
        for e in entries:
            step = STEP_AT.get(e["seq"])
            if step is None or e["kind"] != "step":
                continue
            pids = by_step[(rid, step)]
            assert pids, f"step {step} of run {rid} never ran"
            if len(pids) == 1:
                continue
            reruns += len(pids) - 1
            if rid in control.cancelled or attempts[rid] > 0:
                continue
            assert max(Counter(pids).values()) == 1, (
                f"one worker ran step {step} of run {rid} twice: {pids} (seed {SEED})"
            )
            survivors = [p for p in pids if p not in killed]
            assert len(survivors) <= 1, (
                f"step {step} of run {rid} ran {len(pids)} times by workers that were not "
                f"killed: {pids}, killed {sorted(killed)} (seed {SEED})"
            )
    print(
        f"flow chaos: {recovered} runs recovered from lost executions, {reruns} in-flight "
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
