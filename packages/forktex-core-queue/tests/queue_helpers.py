# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Test helpers: worker subprocesses, in-process workers, Redis-polling waits (no fixed sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

TESTS = Path(__file__).resolve().parent


class Recorded:
    """Reads the lists the test tasks RPUSH to (``<queue>:t:<key>``)."""

    def __init__(self, client: redis.asyncio.Redis, queue: str) -> None:
        self.client = client
        self.queue = queue

    async def get(self, key: str) -> list[Any]:
        items = await self.client.lrange(f"{self.queue}:t:{key}", 0, -1)  # type: ignore[misc]
        return [json.loads(i) for i in items]

    async def wait_len(self, key: str, n: int, within: float = 30.0) -> list[Any]:
        await wait_for(lambda: self._len_at_least(key, n), within, f"{n} records of {key!r}")
        return await self.get(key)

    async def _len_at_least(self, key: str, n: int) -> bool:
        return len(await self.get(key)) >= n


async def wait_for(
    check: Callable[[], Awaitable[bool]], within: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``check`` until it is true; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(interval)


class Workers:
    """Worker subprocesses started with the real CLI; all stopped at the end of the test."""

    def __init__(self, url: str, name: str, tmp: Path) -> None:
        self.url = url
        self.name = name
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str, cron: bool = False) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
            QUEUE_TEST_URL=self.url,
            QUEUE_TEST_NAME=self.name,
            QUEUE_TEST_CRON="1" if cron else "0",
        )
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "forktex_core.queue", "worker", "queue_app:make_queue",
             "--poll-interval", "0.05", "--heartbeat", "0.5", "--log-level", "INFO", *extra],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def log(self, i: int) -> str:
        return (self.tmp / f"worker-{i}.log").read_text(errors="replace")

    async def wait_exit(self, proc: subprocess.Popen[bytes], within: float = 30.0) -> int:
        async def exited() -> bool:
            return proc.poll() is not None

        await wait_for(exited, within, f"worker {proc.pid} to exit")
        return proc.returncode

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.asynccontextmanager
async def background_worker(queue: Any, **options: Any) -> AsyncIterator[asyncio.Task[None]]:
    """An in-process worker running in a task, cancelled (jobs requeued) on exit."""
    options.setdefault("poll_interval", 0.05)
    options.setdefault("heartbeat", 0.5)
    task = asyncio.create_task(queue.run_worker(handle_signals=False, **options))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def drain(queue: Any) -> None:
    """Run an in-process burst worker until the queue is empty."""
    await queue.run_worker(burst=True, poll_interval=0.05, handle_signals=False)


@contextlib.contextmanager
def not_redis_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers anything like a web server; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                with contextlib.suppress(OSError):
                    conn.settimeout(2)
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(
    *args: str, url: str, name: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m forktex_core.queue <args> queue_app:make_queue`` for this URL and queue."""
    env = dict(os.environ, PYTHONPATH=str(TESTS), QUEUE_TEST_URL=url, QUEUE_TEST_NAME=name)
    cmd = [sys.executable, "-m", "forktex_core.queue", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
