# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fixtures of the console tests: a fresh database, a Flow with a manual graph and a plain
workflow on it, a worker in the test's event loop, and an HTTP client for any console app."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from forktex_core.flow import Flow

APP = Path(__file__).with_name("console_app.py")
_spec = importlib.util.spec_from_file_location("forktex_console_test_app", APP)
assert _spec is not None and _spec.loader is not None
console_app = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(console_app)
define = console_app.define

FAST: dict[str, Any] = {
    "lease": 1.5,
    "heartbeat": 0.3,
    "reaper_interval": 0.2,
    "poll_interval": 0.3,
    "shutdown_grace": 0.5,
}
ORIGIN = "http://console.test"


@pytest.fixture
def pg(forktex_new_database: Callable[[], Any]) -> Any:
    """A fresh database for this test."""
    return forktex_new_database()


@pytest.fixture
async def flow(pg: Any) -> AsyncIterator[Flow]:
    """A Flow with the test workflows on this test's database."""
    made = Flow(database_url=pg.url, **FAST)
    define(made)
    yield made
    await made.close()


@contextlib.asynccontextmanager
async def running(flow: Flow) -> AsyncIterator[None]:
    """``flow``'s worker in this event loop for the duration of the block."""
    task = asyncio.create_task(flow.run_worker(concurrency=8))
    try:
        await flow.wait_worker_started()
        yield
    finally:
        flow.stop()
        await asyncio.wait_for(task, 20)


async def wait_until(cond: Callable[[], Any], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Poll an (async) condition until true; fail after ``timeout`` seconds."""
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
        await asyncio.sleep(0.05)


@pytest.fixture
def client() -> Callable[..., httpx.AsyncClient]:
    """``client(app)``: an HTTP client for an ASGI app at ``ORIGIN`` (closed by ``async with``)."""

    def make(app: Any, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, **kwargs)

    return make


def staff(request: Any) -> str | None:
    """The tests' login: the ``X-User`` header names the principal."""
    return request.headers.get("x-user")


def token_in(page: str) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


class Helpers:
    """``h.running(flow)``, ``h.wait_until(cond)``, ``h.ORIGIN``, ``h.staff`` (a login),
    ``h.token_in(page)`` for the test modules."""

    running = staticmethod(running)
    staff = staticmethod(staff)
    token_in = staticmethod(token_in)
    wait_until = staticmethod(wait_until)
    ORIGIN = ORIGIN
    define = staticmethod(define)


@pytest.fixture
def h() -> type[Helpers]:
    """The shared helpers (test modules cannot import conftest under importlib mode)."""
    return Helpers
