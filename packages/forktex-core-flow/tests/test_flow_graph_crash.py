# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A SIGKILLed worker mid-graph: the run resumes on another worker in the right state."""

from __future__ import annotations

import functools
import signal
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forktex_core.flow import Flow, RunStatus

from .conftest import wait_until
from .worker_procs import WorkerProcs, load_app

APP = Path(__file__).with_name("flow_graph_app.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def spawn(pg: Any, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    procs = WorkerProcs(APP, pg.url, tmp_path)
    yield procs.start
    procs.stop()


@pytest.fixture
async def client(pg: Any, tmp_path: Path) -> AsyncIterator[Flow]:
    module = load_app(APP, pg.url, tmp_path)
    flow: Flow = module.flow
    await flow.connect()
    yield flow
    await flow.close()


until = functools.partial(wait_until, timeout=40.0)


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
