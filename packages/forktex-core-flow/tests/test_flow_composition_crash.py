# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Run events, forks, wait_first and child workflows under SIGKILL of real worker
processes."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from forktex_core.flow import Flow, RunStatus
from forktex_core.flow._cli import main

from .conftest import wait_until
from .worker_procs import WorkerProcs, load_app

APP = Path(__file__).with_name("flow_composition_app.py")

pytestmark = pytest.mark.slow


class Workers(WorkerProcs):
    """Worker subprocesses serving ``flow_composition_app.py``."""

    def __init__(self, url: str, workdir: Path) -> None:
        super().__init__(APP, url, workdir)

    def spawn(self) -> subprocess.Popen[bytes]:
        return self.start()


@pytest.fixture
def workers(pg: Any, tmp_path: Path) -> Iterator[Workers]:
    made = Workers(pg.url, tmp_path)
    yield made
    made.stop()


@pytest.fixture
async def client(pg: Any, tmp_path: Path) -> AsyncIterator[Flow]:
    """A Flow that starts, reads and forks runs (the workflows come from the app)."""
    module = load_app(APP, pg.url, tmp_path)
    flow: Flow = module.flow
    await flow.connect()
    conn = await asyncpg.connect(pg.dsn)
    await conn.execute("CREATE TABLE exec_log (run_id uuid, name text, pid int)")
    await conn.close()
    yield flow
    await flow.close()


until = functools.partial(wait_until, timeout=30.0)


async def _waiting(flow: Flow, run_id: Any) -> bool:
    return (await flow.get_run(run_id)).status is RunStatus.WAITING


async def _executions(pg: Any, run_id: Any) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(pg.dsn)
    try:
        rows = await conn.fetch("SELECT name, pid FROM exec_log WHERE run_id = $1", run_id)
    finally:
        await conn.close()
    return sorted((r["name"], r["pid"]) for r in rows)


async def test_event_survives_sigkill_before_the_next_step(
    client: Flow, workers: Workers, pg: Any
) -> None:
    a = workers.spawn()
    run_id = await client.start("comp.events")
    assert await client.get_event(run_id, "progress", timeout=60) == 1
    await until(lambda: str(run_id) in workers.holding())
    recorded = [s for s in await client.history(run_id) if s.kind == "event"]
    workers.kill(a)  # between set_event's checkpoint and the next step's
    # still readable while nobody runs the workflow
    assert await client.get_event(run_id, "progress", timeout=0) == 1
    b = workers.spawn()
    await until(lambda: str(run_id) in workers.holding())
    (workers.dir / "release").touch()
    assert await client.result(run_id, timeout=60) == ["prepared", "released"]
    assert await client.get_event(run_id, "progress", timeout=0) == 2
    history = await client.history(run_id)
    events = [(s.seq, s.name, s.output) for s in history if s.kind == "event"]
    assert events == [(1, "event:progress", 1), (3, "event:progress", 2)]
    # the replay by worker b did not write the first event again
    again = next(s for s in history if s.seq == 1)
    assert (again.started_at, again.finished_at) == (
        recorded[0].started_at,
        recorded[0].finished_at,
    )
    assert await _executions(pg, run_id) == sorted(
        [("prepare", a.pid), ("block", a.pid), ("block", b.pid)]
    )


async def test_fork_survives_sigkill_and_runs_from_the_cli(
    client: Flow, workers: Workers, pg: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a = workers.spawn()
    (workers.dir / "release").touch()
    original = await client.start("comp.fork")
    assert await client.result(original, timeout=60) == ["prepared", "released"]
    (workers.dir / "release").unlink()
    fork = await client.fork(original, from_step=1)
    await until(lambda: str(fork) in workers.holding())
    workers.kill(a)  # the fork's worker dies in its first executed step
    b = workers.spawn()
    await until(lambda: str(fork) in workers.holding())
    (workers.dir / "release").touch()
    assert await client.result(fork, timeout=60) == ["prepared", "released"]
    # the copied position never ran in the fork; the step in flight ran again once
    assert await _executions(pg, fork) == sorted([("block", a.pid), ("block", b.pid)])

    url = ["--database-url", pg.url]
    code = await asyncio.to_thread(main, ["runs", "fork", str(fork), "--from-step", "2", *url])
    out = capsys.readouterr().out
    assert code == 0 and f"forked from run {fork} at step 2" in out
    again = uuid.UUID(out.split()[1])
    assert await client.result(again, timeout=60) == ["prepared", "released"]
    assert await _executions(pg, again) == []
    for argv, fragment in (
        (["--from-step", "3"], "from_step must be between 0 and 2"),
        (["--from-step", "-1"], "from_step must be an integer >= 0"),
        (["--from-step", "0", "--version", "2"], "unknown workflow 'comp.fork'"),
    ):
        code = await asyncio.to_thread(main, ["runs", "fork", str(fork), *argv, *url])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("forktex-flow: error: ") and fragment in err, err
    assert len(await client.list_runs(workflow="comp.fork")) == 3


async def test_wait_first_winner_survives_sigkill(client: Flow, workers: Workers) -> None:
    a = workers.spawn()
    run_id = await client.start("comp.first")
    await until(lambda: _waiting(client, run_id))
    await client.send_signal(run_id, "b", "B")
    await until(lambda: str(run_id) in workers.holding())
    workers.kill(a)
    # "a" comes first in the argument order and is ready now: re-racing would pick it
    await client.send_signal(run_id, "a", "A")
    workers.spawn()
    await until(lambda: str(run_id) in workers.holding())
    (workers.dir / "release").touch()
    assert await client.result(run_id, timeout=60) == [1, "B", "released"]
    signals = {s.name: s.consumed_at is not None for s in await client.signals(run_id)}
    assert signals == {"a": False, "b": True}


async def test_continue_as_new_after_sigkill_archives_one_generation(
    client: Flow, workers: Workers, pg: Any
) -> None:
    a = workers.spawn()
    run_id = await client.start("comp.entity", {"n": 0})
    await client.send_signal(run_id, "tick", 1)
    await client.send_signal(run_id, "tick", 2)
    await until(lambda: str(run_id) in workers.holding())
    workers.kill(a)
    b = workers.spawn()
    await until(lambda: str(run_id) in workers.holding())
    (workers.dir / "release").touch()
    assert await client.result(run_id, timeout=60) == 2
    archives = await client.list_runs(metadata={"continued_into": str(run_id)})
    assert len(archives) == 1  # continued once, though generation 0 ran twice
    assert [s.kind for s in await client.history(archives[0].id)] == ["signal", "step"]
    assert [s.kind for s in await client.history(run_id)] == ["signal"]
    assert [s.payload for s in await client.signals(run_id)] == [2]
    assert await _executions(pg, run_id) == sorted([("block", a.pid), ("block", b.pid)])
    assert (await client.get_run(run_id)).metadata["generation"] == 1


async def test_sigkill_between_child_insert_and_parent_checkpoint_starts_one_child(
    client: Flow, workers: Workers, pg: Any
) -> None:
    (workers.dir / "kill-after-child").touch()
    a = workers.spawn()
    run_id = await client.start("comp.parent")
    await until(lambda: a.poll() is not None)  # killed itself after the child's insert
    [child] = await client.list_runs(workflow="comp.child")
    assert child.parent_id == run_id
    assert await client.history(run_id) == []  # the parent's checkpoint never landed
    b = workers.spawn()
    await until(lambda: str(child.id) in workers.holding())
    (workers.dir / "release").touch()
    result = await client.result(run_id, timeout=60)
    assert result == [str(child.id), {"n": 7, "held": "released"}]
    assert [r.id for r in await client.list_runs(workflow="comp.child")] == [child.id]
    [start, _] = await client.history(run_id)
    assert start.kind == "child" and start.output["id"] == str(child.id)
    assert await _executions(pg, child.id) == [("block", b.pid)]


async def test_sigkill_while_the_parent_is_suspended_on_its_child(
    client: Flow, workers: Workers, pg: Any
) -> None:
    a = workers.spawn()
    run_id = await client.start("comp.parent")
    await until(lambda: _waiting(client, run_id))
    [child] = await client.list_runs(workflow="comp.child")
    await until(lambda: str(child.id) in workers.holding())
    workers.kill(a)  # the parent waits (no worker), the child dies mid-step
    b = workers.spawn()
    await until(lambda: str(child.id) in workers.holding())
    (workers.dir / "release").touch()
    result = await client.result(run_id, timeout=60)
    assert result == [str(child.id), {"n": 7, "held": "released"}]
    assert len(await client.list_runs(workflow="comp.child")) == 1
    assert await _executions(pg, child.id) == sorted([("block", a.pid), ("block", b.pid)])


async def test_a_child_that_ends_dead_surfaces_in_its_parent(
    client: Flow, workers: Workers
) -> None:
    workers.env["FLOW_TEST_MAX_RECOVERY"] = "1"
    proc = workers.spawn()
    run_id = await client.start("comp.survivor")
    await until(lambda: _waiting(client, run_id))
    [child] = await client.list_runs(workflow="comp.doomed")
    await until(lambda: _waiting(client, child.id))
    await client.send_signal(child.id, "go")
    kills = 0
    while (await client.get_run(child.id)).status is not RunStatus.DEAD:
        if proc.poll() is not None:  # the child's step killed it: the next worker goes on
            kills += 1
            proc = workers.spawn()
        await asyncio.sleep(0.05)
    assert await client.result(run_id, timeout=60) == ["dead", "PoisonRun", str(child.id)]
    assert kills == 2
