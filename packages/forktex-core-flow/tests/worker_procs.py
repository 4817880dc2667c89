# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Real worker processes of a test, and the test app loaded in the test's own process.

Every crash, failover and chaos test runs ``forktex-flow worker APP:flow`` subprocesses
against its database; the apps (``flow_*app.py``) read their database from
``FLOW_TEST_URL`` and their scratch directory from ``FLOW_TEST_DIR``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType


class WorkerProcs:
    """Worker subprocesses serving one app against one database; :meth:`stop` kills them.

    Each logs to ``worker-N.log`` in ``workdir``; ``env`` adds to the app's environment.

    Example::

        procs = WorkerProcs(APP, pg.url, tmp_path)
        proc = procs.start("--concurrency", "4")
        procs.kill(proc)  # SIGKILL, as a crash would
        procs.stop()
    """

    def __init__(self, app: Path, url: str, workdir: Path, **env: str) -> None:
        self.app = app
        self.dir = workdir
        self.env = {**os.environ, "FLOW_TEST_URL": url, "FLOW_TEST_DIR": str(workdir), **env}
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """One more worker process, with extra CLI ``args`` and environment ``env``."""
        cmd = [sys.executable, "-m", "forktex_core.flow._cli", "worker", f"{self.app}:flow"]
        with open(self.dir / f"worker-{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                [*cmd, *args], env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    def holding(self) -> dict[str, int]:
        """run id -> pid of the worker holding it at the app's hold point."""
        out = {}
        for f in self.dir.glob("holding-*"):
            rid, pid = f.name.removeprefix("holding-").rsplit("-", 1)
            out[rid] = int(pid)
        return out

    def release(self) -> None:
        """Let the runs held at the app's hold point go on."""
        (self.dir / "release").touch()

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``proc`` and forget what it was holding."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for f in self.dir.glob("holding-*"):
            f.unlink()

    def stop(self) -> None:
        """Kill every worker still running and reap them all."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait(10)

    def logs(self, tail: int = 4000) -> str:
        """The end of every worker's log (for an assertion message)."""
        out = []
        for path in sorted(self.dir.glob("worker-*.log")):
            out.append(f"--- {path.name}\n{path.read_bytes()[-tail:].decode(errors='replace')}")
        return "\n".join(out)


def load_app(app: Path, url: str, workdir: Path | None = None) -> ModuleType:
    """Import ``app`` in this process under a name of its own, with ``FLOW_TEST_URL`` (and
    ``FLOW_TEST_DIR``) set while it loads; the environment is restored afterwards.

    Example::

        flow = load_app(APP, pg.url, tmp_path).flow
    """
    spec = importlib.util.spec_from_file_location(f"{app.stem}_{id(url)}_{os.getpid()}", app)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    old = dict(os.environ)
    os.environ["FLOW_TEST_URL"] = url
    if workdir is not None:
        os.environ["FLOW_TEST_DIR"] = str(workdir)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return module
