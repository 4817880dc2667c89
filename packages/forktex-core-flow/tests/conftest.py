# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared fixtures: a fresh database per test and fast-lease Flow objects on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from forktex_core.flow import Flow

FAST: dict[str, Any] = {
    "lease": 1.5,
    "heartbeat": 0.3,
    "reaper_interval": 0.2,
    "poll_interval": 0.5,
    "shutdown_grace": 0.5,
}


@pytest.fixture
def pg(forktex_new_database: Callable[[], Any]) -> Any:
    """A fresh database for this test."""
    return forktex_new_database()


@pytest.fixture
async def make_flow(pg: Any) -> AsyncIterator[Callable[..., Flow]]:
    """Factory of Flows on this test's database (fast leases); all closed afterwards."""
    flows: list[Flow] = []

    def make(**kwargs: Any) -> Flow:
        flow = Flow(database_url=pg.url, **{**FAST, **kwargs})
        flows.append(flow)
        return flow

    yield make
    for flow in flows:
        await flow.close()


@contextlib.asynccontextmanager
async def running(flow: Flow, concurrency: int = 8) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``flow``'s worker in this event loop for the duration of the block."""
    task = asyncio.create_task(flow.run_worker(concurrency=concurrency))
    try:
        await flow.wait_worker_started()
        yield task
    finally:
        flow.stop()
        await asyncio.wait_for(task, 20)


def user_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A run's metadata without the trace context flow stores under ``"forktex.trace"``
    whenever a tracer provider is installed - process-wide, by any earlier test that used
    the SDK - so an equality check does not depend on which tests ran before."""
    return {k: v for k, v in metadata.items() if k != "forktex.trace"}


async def wait_until(cond: Callable[[], Any], timeout: float = 20.0, every: float = 0.05) -> None:  # noqa: ASYNC109
    """Poll an (async or sync) condition until true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


class Helpers:
    running = staticmethod(running)
    wait_until = staticmethod(wait_until)


@pytest.fixture
def h() -> type[Helpers]:
    """Helpers: ``h.running(flow)`` worker context, ``h.wait_until(cond)``."""
    return Helpers
