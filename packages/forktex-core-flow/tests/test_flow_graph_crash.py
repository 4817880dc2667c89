# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A SIGKILLed worker mid-graph: the run resumes on another worker in the right state."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forktex_core.flow import Flow, RunStatus

APP = Path(__file__).with_name("flow_graph_app.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def spawn(pg: Any, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "FLOW_TEST_URL": pg.url, "FLOW_TEST_DIR": str(tmp_path)}

    def start() -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"worker-{len(procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "forktex_core.flow._cli", "worker", f"{APP}:flow"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(10)


@pytest.fixture
async def client(pg: Any, tmp_path: Path) -> AsyncIterator[Flow]:
    old = dict(os.environ)
    os.environ.update(FLOW_TEST_URL=pg.url, FLOW_TEST_DIR=str(tmp_path))
    try:
        spec = importlib.util.spec_from_file_location(f"flow_graph_app_{id(pg)}", APP)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(old)
    flow: Flow = module.flow
    await flow.connect()
    yield flow
    await flow.close()


async def until(cond: Callable[[], Any], timeout: float = 40.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _eq(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_sigkill_mid_graph_resumes_in_the_right_state(
    client: Flow, spawn: Any, tmp_path: Path
) -> None:
    a = spawn()
    run_id = await client.start("crash.graph", input={"n": 1})
    await until(lambda: list(tmp_path.glob(f"holding-{run_id}-*")))
    (held,) = tmp_path.glob(f"holding-{run_id}-*")  # noqa: ASYNC240
    assert held.name.endswith(f"-{a.pid}")

    async def states() -> list[str]:
        return [s.name for s in await client.history(run_id) if s.kind == "state"]

    # a busy state's marker is written early, so pictures show it as current
    await until(lambda: _eq(states(), ["intake", "process"]))
    a.send_signal(signal.SIGKILL)
    a.wait(10)
    (tmp_path / "release").touch()
    b = spawn()
    # the survivor re-runs only the unfinished step of 'process', then waits in 'approve'

    async def waiting() -> bool:
        return (await client.get_run(run_id)).status is RunStatus.WAITING

    await until(waiting)
    await client.send_signal(run_id, "advance", payload={"ok": True})
    out = await client.result(run_id, timeout=40)
    assert out == {"n": 1, "intake": "intake", "process": "hold", "ok": True, "done": "done"}
    lines = (tmp_path / f"exec-{run_id}").read_text().split("\n")
    executed = [line.split() for line in lines if line]
    assert executed == [
        ["intake", str(a.pid)],
        ["hold", str(a.pid)],
        ["hold", str(b.pid)],
        ["done", str(b.pid)],
    ]
    assert await states() == ["intake", "process", "approve", "done"]
    assert (await client.get_run(run_id)).recovery_attempts == 1
