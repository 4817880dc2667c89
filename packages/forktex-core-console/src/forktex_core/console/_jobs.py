# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The jobs page of a ``forktex_core.queue.Queue``: counts by status, its workers, failed
jobs with their tracebacks, and a look-up of one job by id.

Everything comes from the queue's public API: ``health()`` (workers), ``job_counts()`` and
``failed_jobs()`` (both read at most ``failed_jobs_scan`` kept results a view).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from ._html import Safe, el, join, when
from ._layout import href, notice, respond
from ._settings import QueueLike, Settings

log = logging.getLogger("forktex_core.console")

SHOWN = 50  # failed jobs listed


def _failed_table(jobs: list[Any]) -> Safe:
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
            el("td", None, when(j.finished_at)),
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


async def _finished(queue: QueueLike, scan: int) -> tuple[Safe, list[tuple[str, int]]]:
    """The failed-jobs part of the page and the counts of kept results by status."""
    try:
        counts = await queue.job_counts(scan=scan)
        failed = await queue.failed_jobs(limit=SHOWN, scan=scan)
    except Exception as exc:  # QueueUnavailable mid-page: the rest of the page still shows
        part = notice(f"the failed jobs could not be read: {type(exc).__name__}", error=True)
        return part, []
    read = counts.complete + counts.failed + counts.aborted
    note = f"{read} finished jobs kept" + (
        "" if counts.exact else f" (the first {scan} read; more exist)"
    )
    part = join(
        el("p", {"class": "note"}, note),
        _failed_table(failed) if failed else el("p", {"class": "empty"}, "No failed jobs kept."),
    )
    return part, [
        ("complete", counts.complete),
        ("failed", counts.failed),
        ("aborted", counts.aborted),
    ]


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
    counts = [
        ("queued", health.queued),
        ("deferred", health.deferred),
        ("in progress", health.in_progress),
    ]
    scan = settings.failed_jobs_scan
    if scan:
        failed_part, kept = await _finished(queue, scan)
        counts += kept
    else:
        failed_part = notice("failed jobs are not listed (failed_jobs_scan=0)")
    counts.append(("retried (by listed workers)", sum(w.jobs_retried for w in health.workers)))
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
