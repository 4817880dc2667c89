# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The jobs page of a ``forktex_core.queue.Queue``: counts by status, its workers, failed
jobs with their tracebacks, and a look-up of one job by id.

Counts and workers come from ``queue.health()``. A queue keeps each finished job's record
(with the traceback of a failure) under ``<queue>:result:<id>`` for its ``keep_result``
seconds and has no index of them, so the failed jobs are found by scanning those keys
(``SCAN MATCH``, at most ``failed_jobs_scan`` keys a view) on the queue's own Redis client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from ._html import Safe, el, join, when
from ._layout import href, notice, respond
from ._settings import QueueLike, Settings

log = logging.getLogger("forktex_core.console")

SHOWN = 50  # failed jobs listed


@dataclass(frozen=True)
class FailedJob:
    """A failed job's record as the queue stored it."""

    job_id: str
    task: str
    tries: int
    error_type: str
    message: str
    traceback: str
    finished: datetime | None


def _failed(job_id: str, raw: bytes | str | None) -> FailedJob | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("s") != "failed":
        return None
    finished = data.get("ft")
    return FailedJob(
        job_id=job_id,
        task=str(data.get("f") or ""),
        tries=int(data["t"]) if isinstance(data.get("t"), int) else 0,
        error_type=str(data.get("e") or "Error"),
        message=str(data.get("m") or ""),
        traceback=str(data.get("tb") or ""),
        finished=datetime.fromtimestamp(finished / 1000, UTC)
        if isinstance(finished, int | float) and 0 < finished < 253_402_300_799_999
        else None,
    )


async def failed_jobs(queue: QueueLike, scan: int) -> tuple[list[FailedJob], int, bool]:
    """The newest failed jobs, how many result keys were read, and whether the scan ended.

    Raises :class:`LookupError` when the queue's engine has no Redis client to scan with.
    """
    redis = getattr(queue.backend, "redis", None)
    if redis is None:
        raise LookupError("this queue's engine offers no way to list its finished jobs")
    prefix = f"{queue.name}:result:"
    found: list[FailedJob] = []
    seen = 0
    cursor: Any = 0
    complete = False

    async def read() -> None:
        nonlocal cursor, seen, complete
        while seen < scan:
            cursor, keys = await redis.scan(cursor, match=prefix + "*", count=1000)
            if keys:
                seen += len(keys)
                values = await redis.mget(keys)
                for key, raw in zip(keys, values, strict=True):
                    name = key.decode() if isinstance(key, bytes) else str(key)
                    job = _failed(name[len(prefix) :], raw)
                    if job is not None:
                        found.append(job)
            if int(cursor) == 0:
                complete = True
                return

    await asyncio.wait_for(read(), queue.command_timeout * 4)
    epoch = datetime.fromtimestamp(0, UTC)
    found.sort(key=lambda j: j.finished or epoch, reverse=True)
    return found[:SHOWN], seen, complete


def _failed_table(jobs: list[FailedJob]) -> Safe:
    head = el(
        "tr",
        None,
        [el("th", None, h) for h in ("Job", "Task", "Tries", "Finished", "Error", "Traceback")],
    )
    rows = [
        el(
            "tr",
            {"class": "failed-job", "data-job": j.job_id},
            el("td", None, j.job_id),
            el("td", None, j.task),
            el("td", {"class": "num"}, j.tries),
            el("td", None, when(j.finished)),
            el("td", None, f"{j.error_type}: {j.message}"),
            el(
                "td",
                None,
                el(
                    "details",
                    None,
                    el("summary", None, "traceback"),
                    el("pre", {"class": "traceback"}, j.traceback or "(none)"),
                ),
            ),
        )
        for j in jobs
    ]
    return el("table", {"class": "jobs"}, el("thead", None, head), el("tbody", None, rows))


async def _lookup(queue: QueueLike, job_id: str) -> Safe:
    try:
        job = queue.job(job_id)
        status = await job.status()
    except Exception as exc:  # InvalidArgument (a bad id) or QueueUnavailable
        return notice(f"{type(exc).__name__}: {exc}", error=True)
    value = getattr(status, "value", str(status))
    parts: list[Any] = [
        el("p", None, "Job ", el("code", None, job_id), " is ", el("strong", None, value))
    ]
    if value == "failed":
        try:
            await job.result(timeout=1)
        except Exception as exc:
            tb = getattr(exc, "traceback", "") or ""
            parts.append(
                el(
                    "p",
                    None,
                    f"{getattr(exc, 'error_type', type(exc).__name__)}: "
                    f"{getattr(exc, 'message', exc)}",
                )
            )
            parts.append(el("pre", {"class": "traceback"}, tb or "(no traceback)"))
    return el("section", {"class": "lookup"}, parts)


async def jobs_page(settings: Settings, request: Request) -> Response:
    """``GET /jobs``: the queue's counts, workers and failed jobs (404 without a queue)."""
    queue = settings.queue
    if queue is None:
        return Response("no queue was given to this console", status_code=404)
    query = parse_qs(request.url.query)
    wanted = (query.get("job") or [""])[-1].strip()
    try:
        health = await queue.health()
    except Exception as exc:
        body = notice(f"queue {queue.name!r} is unavailable: {exc}", error=True)
        return respond(request, settings, current="jobs", heading="Jobs", body=body, status=503)
    totals = {
        "complete": sum(w.jobs_complete for w in health.workers),
        "failed": sum(w.jobs_failed for w in health.workers),
        "retried": sum(w.jobs_retried for w in health.workers),
    }
    counts = [
        ("queued", health.queued),
        ("deferred", health.deferred),
        ("in progress", health.in_progress),
    ]
    counts += [(f"{k} (by listed workers)", v) for k, v in totals.items()]
    worker_rows = [
        el(
            "tr",
            {"class": "alive" if w.alive else "silent"},
            el("td", None, w.worker_id),
            el("td", None, w.host),
            el("td", {"class": "num"}, w.pid),
            el("td", None, "alive" if w.alive else "silent"),
            el("td", None, when(w.last_heartbeat)),
            el("td", {"class": "num"}, w.jobs_ongoing),
            el("td", {"class": "num"}, w.jobs_complete),
            el("td", {"class": "num"}, w.jobs_failed),
        )
        for w in health.workers
    ]
    try:
        failed, scanned, complete = await failed_jobs(queue, settings.failed_jobs_scan)
        note = f"{scanned} finished jobs read" + ("" if complete else "; more exist (not read)")
        failed_part = join(
            el("p", {"class": "note"}, note),
            _failed_table(failed)
            if failed
            else el("p", {"class": "empty"}, "No failed jobs kept."),
        )
    except LookupError as exc:
        failed_part = notice(str(exc))
    except Exception as exc:
        failed_part = notice(f"the failed jobs could not be read: {type(exc).__name__}", error=True)
    body = join(
        el("h2", None, f"Queue {queue.name}"),
        el(
            "ul",
            {"class": "counts"},
            [
                el(
                    "li",
                    {"class": "count"},
                    label,
                    " ",
                    el("span", {"data-job-count": label}, str(n)),
                )
                for label, n in counts
            ],
        ),
        el(
            "form",
            {"method": "get", "action": href(request, "jobs"), "class": "filters"},
            el("label", None, "Job id", el("input", {"name": "job", "value": wanted, "size": 30})),
            el("button", {"type": "submit"}, "Look up"),
        ),
        await _lookup(queue, wanted) if wanted else "",
        el("h2", None, "Workers"),
        el(
            "table",
            {"class": "workers"},
            el(
                "thead",
                None,
                el(
                    "tr",
                    None,
                    [
                        el("th", None, h)
                        for h in (
                            "Worker",
                            "Host",
                            "PID",
                            "State",
                            "Last heartbeat",
                            "Running",
                            "Complete",
                            "Failed",
                        )
                    ],
                ),
            ),
            el("tbody", None, worker_rows),
        )
        if worker_rows
        else el("p", {"class": "empty"}, "No worker has reported."),
        el("h2", None, "Failed jobs"),
        failed_part,
    )
    return respond(request, settings, current="jobs", heading="Jobs", body=body)
