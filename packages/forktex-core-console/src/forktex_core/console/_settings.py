# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What one console was built with: its flow, the host's hooks into it, and its limits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from forktex_core.flow import Flow, RunCounts

from ._redact import Redactor


class QueueLike(Protocol):
    """What the jobs page needs of a ``forktex_core.queue.Queue``."""

    name: str

    async def health(self) -> Any: ...

    async def job_counts(self, *, scan: int = ...) -> Any: ...

    async def failed_jobs(self, limit: int = ..., *, scan: int = ...) -> list[Any]: ...

    def job(self, job_id: str) -> Any: ...


@dataclass
class CountsCache:
    """Run counts shared by every viewer: at most one query per ``ttl`` seconds."""

    ttl: float
    value: RunCounts | None = None
    at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, flow: Flow, exact_below: int) -> RunCounts:
        """The cached counts, refreshed when older than ``ttl``."""
        async with self.lock:
            now = time.monotonic()
            if self.value is None or now - self.at >= self.ttl:
                self.value = await flow.run_counts(exact_below=exact_below)
                self.at = now
            return self.value


@dataclass
class Settings:
    """Everything the console's pages and actions read (made once by ``flow_console``)."""

    flow: Flow
    redact: Redactor
    queue: QueueLike | None
    title: str
    page_size: int
    exact_counts_below: int
    trusted_origins: tuple[str, ...]
    failed_jobs_scan: int
    counts: CountsCache
