# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``make demo``: durable workflows survive a worker killed mid-step.

1. Postgres: ``FORKTEX_DEMO_POSTGRES_URL`` if set, else an embedded PostgreSQL (no install
   needed); the demo works in a fresh database that it drops at the end.
2. Two worker processes: ``forktex-flow worker tools/demo_flows.py:flow --concurrency 3``.
3. Six "deploy" workflows: provision -> configure -> deploy -> verify, 0.3-0.5 s per step,
   every execution of a step body recorded in a table.
4. Worker A is SIGKILLed in the middle of a step. With the default settings (5 s lease) the
   leader (worker B) reaps its runs and B replays them from their checkpoints: completed
   steps return their recorded results, only the interrupted step runs again.
5. A summary table; the exit status is 1 if any invariant fails (a run not succeeded, a
   checkpointed step executed twice, a run not finished by the survivor).

    uv run --locked python tools/demo.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent
APPS = ("web", "api", "db", "cache", "search", "mail")
STEPS = ("provision", "configure", "deploy", "verify")
CONCURRENCY = 3  # per worker: the six runs spread over both workers
RUN_DEADLINE = 45.0  # seconds for every run to finish after the kill


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Execution:
    run_id: uuid.UUID
    step: str
    pid: int
    started_at: datetime
    finished_at: datetime | None


@dataclass
class Demo:
    dsn: str
    workdir: Path
    t0: float = field(default_factory=time.monotonic)
    names: dict[uuid.UUID, str] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    victims: set[uuid.UUID] = field(default_factory=set)  # runs A held mid-step when killed
    killed_at: datetime | None = None  # database clock

    def stamp(self) -> str:
        return f"{time.monotonic() - self.t0:6.2f}s"

    def label(self, pid: int) -> str:
        for name, proc in self.workers.items():
            if proc.pid == pid:
                return name
        return f"pid {pid}"

    def spawn(self, name: str, env: dict[str, str]) -> None:
        log = (self.workdir / f"worker-{name}.log").open("wb")
        self.workers[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forktex_core.flow._cli",
                "worker",
                f"{ROOT / 'demo_flows.py'}:flow",
                "--concurrency",
                str(CONCURRENCY),
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT.parent,
        )
        log.close()

    def stop_workers(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def worker_logs(self) -> str:
        return "\n".join(
            f"--- worker {p.stem.removeprefix('worker-')} log (tail)\n"
            + p.read_bytes()[-3000:].decode(errors="replace")
            for p in sorted(self.workdir.glob("worker-*.log"))
        )


async def executions(conn: asyncpg.Connection) -> list[Execution]:
    rows = await conn.fetch(
        "SELECT run_id, step, pid, started_at, finished_at FROM demo_exec ORDER BY id"
    )
    return [Execution(**dict(r)) for r in rows]


async def wait_for(what: str, cond: Any, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run_demo(url: str, dsn: str, workdir: Path) -> int:
    os.environ["FORKTEX_DEMO_DB_URL"] = url  # read by demo_flows (tool code, not library)
    sys.path.insert(0, str(ROOT))
    import demo_flows

    demo = Demo(dsn, workdir)
    client = demo_flows.flow
    await client.connect()  # creates the forktex_flow schema
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE demo_exec (id bigserial PRIMARY KEY, run_id uuid NOT NULL, "
        "step text NOT NULL, pid int NOT NULL, "
        "started_at timestamptz NOT NULL DEFAULT clock_timestamp(), finished_at timestamptz)"
    )
    env = {**os.environ, "FORKTEX_DEMO_DB_URL": url}
    try:
        say("Starting two workers: forktex-flow worker tools/demo_flows.py:flow --concurrency 3")
        demo.spawn("A", env)
        demo.spawn("B", env)

        async def registered() -> bool:
            return int(await conn.fetchval("SELECT count(*) FROM forktex_flow.workers")) == 2

        await wait_for("both workers to start", registered, 60)
        for name, proc in demo.workers.items():
            say(f"  worker {name}: pid {proc.pid}, ready")
        say()
        say(
            f"Submitting {len(APPS)} deploy workflows "
            "(provision -> configure -> deploy -> verify, 0.3-0.5 s per step)"
        )
        demo.t0 = time.monotonic()
        for app in APPS:
            run_id = await client.start(
                "demo.deploy", {"name": app, "version": "v2"}, idempotency_key=f"demo-{app}"
            )
            demo.names[run_id] = app
        say()
        say("  time    run      step        event")
        status = await watch(demo, conn)
    finally:
        demo.stop_workers()
        await client.close()
    if status != 0:
        await conn.close()
        return status
    try:
        return await summarise(demo, conn)
    finally:
        await conn.close()


async def watch(demo: Demo, conn: asyncpg.Connection) -> int:
    """Print progress live, kill worker A mid-step, wait for every run to finish."""
    seen_started: set[tuple[uuid.UUID, str, int]] = set()
    seen_finished: set[tuple[uuid.UUID, str, int]] = set()
    finished_runs: set[uuid.UUID] = set()
    victim = demo.workers["A"]
    killed_at: datetime | None = None
    resumed: set[uuid.UUID] = set()
    deadline: float | None = None
    width = max(len(n) for n in demo.names.values())
    while len(finished_runs) < len(demo.names):
        for e in await executions(conn):
            key = (e.run_id, e.step, e.pid)
            name = demo.names.get(e.run_id, "?").ljust(width + 2)
            who = demo.label(e.pid)
            if key not in seen_started:
                seen_started.add(key)
                if killed_at is not None and e.run_id in demo.victims:
                    if e.run_id not in resumed:
                        resumed.add(e.run_id)
                        delay = (e.started_at - killed_at).total_seconds()
                        before = STEPS[: STEPS.index(e.step)]
                        replayed = (
                            f"; {', '.join(before)} replayed from checkpoints, not re-run"
                            if before
                            else ""
                        )
                        say(
                            f"  {demo.stamp()}  {name} {e.step:<10}  resumed on worker {who} "
                            f"{delay:.1f} s after the kill{replayed}"
                        )
            if e.finished_at is not None and key not in seen_finished:
                seen_finished.add(key)
                took = (e.finished_at - e.started_at).total_seconds()
                say(f"  {demo.stamp()}  {name} {e.step:<10}  done on worker {who} ({took:.2f} s)")
        rows = await conn.fetch(
            "SELECT id, status FROM forktex_flow.runs "
            "WHERE status IN ('succeeded', 'failed', 'cancelled', 'dead')"
        )
        for r in rows:
            if r["id"] not in finished_runs:
                finished_runs.add(r["id"])
                name = demo.names.get(r["id"], "?").ljust(width + 2)
                say(f"  {demo.stamp()}  {name} {'':<10}  run {r['status']}")
        if killed_at is None:
            killed_at = await maybe_kill(demo, conn, victim)
            if killed_at is not None:
                deadline = time.monotonic() + RUN_DEADLINE
        elif deadline is not None and time.monotonic() > deadline:
            say(f"FAILED: runs did not finish within {RUN_DEADLINE:.0f} s of the kill")
            say(demo.worker_logs())
            return 1
        if killed_at is None and time.monotonic() - demo.t0 > 30:
            say("FAILED: worker A never got to run a step")
            say(demo.worker_logs())
            return 1
        await asyncio.sleep(0.05)
    demo.killed_at = killed_at
    return 0


async def maybe_kill(
    demo: Demo, conn: asyncpg.Connection, victim: subprocess.Popen[bytes]
) -> datetime | None:
    """SIGKILL worker A once it has finished a step and is in the middle of another."""
    rows = await executions(conn)
    mine = [e for e in rows if e.pid == victim.pid]
    in_flight = [e for e in mine if e.finished_at is None]
    done_per_run: dict[uuid.UUID, int] = defaultdict(int)
    for e in mine:
        if e.finished_at is not None:
            done_per_run[e.run_id] += 1
    # wait until one of A's runs has finished two steps and is in the middle of its third
    if not any(done_per_run[e.run_id] >= 2 for e in in_flight):
        return None
    victim.send_signal(signal.SIGKILL)
    killed_at: datetime = await conn.fetchval("SELECT clock_timestamp()")
    victim.wait(10)
    held = [e.run_id for e in in_flight]
    demo.victims = set(held)
    steps = ", ".join(f"{e.step} of {demo.names.get(e.run_id, '?')}" for e in in_flight)
    say(f"  {demo.stamp()}  !! SIGKILL worker A (pid {victim.pid}) in the middle of: {steps}")
    say(
        f"  {'':7}  .. their 5 s leases expire, then the leader (worker B, taking the role "
        "over if A held it) reaps them and B replays them"
    )
    return killed_at


async def summarise(demo: Demo, conn: asyncpg.Connection) -> int:
    killed_at = demo.killed_at
    assert killed_at is not None
    victims = demo.victims
    survivor = demo.workers["B"].pid
    victim = demo.workers["A"].pid
    runs = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT id, status, output::text AS output, recovery_attempts, finished_at "
            "FROM forktex_flow.runs"
        )
    }
    log: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for s in await conn.fetch(
        "SELECT run_id, seq, name, status, finished_at FROM forktex_flow.steps ORDER BY seq"
    ):
        log[s["run_id"]].append(s)
    execs: dict[tuple[uuid.UUID, str], list[Execution]] = defaultdict(list)
    for e in await executions(conn):
        execs[(e.run_id, e.step)].append(e)

    failures: list[str] = []
    say()
    header = (
        f"{'run':<8} {'status':<10} {'steps':<6} {'executions per step':<34} "
        f"{'finished by':<12} recovery"
    )
    say(header)
    say("-" * len(header))
    total_reruns = 0
    for run_id, app in demo.names.items():
        run = runs[run_id]
        entries = log[run_id]
        done = [s for s in entries if s["status"] == "completed"]
        expected = {
            "server": f"vps-{app}",
            "release": f"vps-{app}/releases/v2",
            "healthy": True,
        }
        if run["status"] != "succeeded":
            failures.append(f"run {app} ended {run['status']}")
        elif json.loads(run["output"]) != expected:
            failures.append(f"run {app} returned {run['output']}, expected {expected}")
        if [s["name"] for s in done] != list(STEPS) or len(entries) != len(STEPS):
            failures.append(f"run {app}: checkpoint log is {[s['name'] for s in entries]}")
        cells = []
        for s in entries:
            ex = execs[(run_id, s["name"])]
            mark = ""
            if len(ex) != 1:
                total_reruns += len(ex) - 1
                mark = "*"
                ok = (
                    len(ex) == 2
                    and ex[0].pid == victim
                    and ex[0].started_at < killed_at
                    and ex[1].pid == survivor
                    and s["finished_at"] > killed_at  # not checkpointed before the kill
                )
                if not ok:
                    failures.append(
                        f"run {app}: step {s['name']} executed {len(ex)} times "
                        f"({[demo.label(e.pid) for e in ex]})"
                    )
            cells.append(f"{s['name'][:4]} {len(ex)}{mark}")
        verify = [e for e in execs[(run_id, "verify")] if e.finished_at is not None]
        by = demo.label(verify[-1].pid) if verify else "-"
        if run["finished_at"] is not None and run["finished_at"] > killed_at:
            if not verify or verify[-1].pid != survivor:
                failures.append(f"run {app} finished after the kill but not by worker B")
        recovery = "-"
        if run_id in victims:
            resumed = [e.started_at for key, ex in execs.items() if key[0] == run_id for e in ex]
            after = [t for t in resumed if t > killed_at]
            if after:
                recovery = f"{(min(after) - killed_at).total_seconds():.1f} s"
        say(
            f"{app:<8} {run['status']:<10} {len(done)}/{len(STEPS):<4} "
            f"{', '.join(cells):<34} {'worker ' + by:<12} {recovery}"
        )
    say()
    if not victims:
        failures.append("worker A was not killed in the middle of a step")
    elapsed = time.monotonic() - demo.t0
    succeeded = sum(1 for r in runs.values() if r["status"] == "succeeded")
    say(
        f"{succeeded}/{len(demo.names)} runs succeeded in {elapsed:.1f} s; worker A was "
        f"SIGKILLed mid-step with {len(victims)} run(s) in flight; worker B finished them."
    )
    say(
        f"Checkpointed steps executed more than once: 0. Steps interrupted by the kill and "
        f"run again: {total_reruns} (marked *)."
    )
    if failures:
        say()
        say("INVARIANTS FAILED:")
        for f in failures:
            say(f"  - {f}")
        say(demo.worker_logs())
        return 1
    say("All invariants hold: every run completed exactly once, no completed step re-ran.")
    return 0


def main() -> int:
    """Run the demo; returns the exit status."""
    from forktex_core.testing import create_database, drop_database, resolve_postgres

    say("forktex-core demo: durable workflows survive a killed worker")
    url = os.environ.get("FORKTEX_DEMO_POSTGRES_URL")
    with tempfile.TemporaryDirectory(prefix="forktex-demo-") as tmp:
        workdir = Path(tmp)
        if not url:
            say("Starting an embedded PostgreSQL (set FORKTEX_DEMO_POSTGRES_URL to use yours)")
            if os.geteuid() == 0:  # PostgreSQL refuses to run as root
                say(
                    "  running as root: the server runs as the system user forktex_pg, "
                    "which is created if it does not exist"
                )
        server, stop = resolve_postgres(url, workdir, docker=False)
        try:
            db = create_database(server)
            where = "FORKTEX_DEMO_POSTGRES_URL" if server.source == "env" else server.source
            say(f"Postgres ({where}) at {server.host}:{server.port}, database {db.database}")
            try:
                return asyncio.run(run_demo(db.url, db.dsn, workdir))
            finally:
                drop_database(server, db.database)
        finally:
            stop()


if __name__ == "__main__":
    sys.exit(main())
