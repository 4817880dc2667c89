# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The queues page: flow's flow-control queues (``flow.queues()``), each with its definition,
depth, slots held and running, rate window and slots per partition key, linked to its runs."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from forktex_core.flow import Queue, QueueInfo

from ._html import Safe, el, join, seconds
from ._layout import href, respond
from ._settings import Settings

PARTITIONS_SHOWN = 20  # partition keys listed per queue, most slots first (the rest counted)


def definition(queue: Queue) -> list[str]:
    """The limits a queue was declared with, one phrase each (``unlimited`` for none).

    Example::

        definition(Queue("emails", concurrency=10, limit=100, period=60))
        # ['10 at once', '100 starts per 1.0 min']
    """
    parts = []
    if queue.concurrency is not None:
        parts.append(f"{queue.concurrency} at once")
    if queue.worker_concurrency is not None:
        parts.append(f"{queue.worker_concurrency} at once per worker")
    if queue.limit is not None and queue.period is not None:
        parts.append(f"{queue.limit} starts per {seconds(queue.period)}")
    if queue.partition_concurrency is not None:
        parts.append(f"{queue.partition_concurrency} at once per partition key")
    if queue.priorities:
        parts.append("priorities")
    return parts or ["unlimited"]


def _partitions(info: QueueInfo) -> Safe:
    if not info.partitions:
        return Safe("")
    held = sorted(info.partitions.items(), key=lambda kv: (-kv[1], kv[0]))
    items = [
        el("li", {"data-partition": key}, el("code", None, key), f": {n}")
        for key, n in held[:PARTITIONS_SHOWN]
    ]
    more = len(held) - PARTITIONS_SHOWN
    if more > 0:
        items.append(el("li", {"class": "empty"}, f"{more} more keys"))
    return el("ul", {"class": "partitions"}, items)


def _window(info: QueueInfo) -> str:
    queue = info.queue
    if info.window_starts is None or queue.limit is None or queue.period is None:
        return ""
    return f"{info.window_starts} / {queue.limit} in the last {seconds(queue.period)}"


def _row(request: Request, info: QueueInfo) -> Safe:
    runs = href(request, "runs") + "?" + urlencode({"queue": info.name})
    slots = "" if info.queue.concurrency is None else f" of {info.queue.concurrency}"
    return el(
        "tr",
        {"class": "queue", "data-queue": info.name},
        el("td", None, el("a", {"href": runs}, info.name)),
        el("td", None, ", ".join(definition(info.queue))),
        el("td", {"class": "num", "data-depth": info.depth}, info.depth),
        el("td", {"class": "num"}, info.delayed),
        el("td", {"class": "num", "data-active": info.active}, f"{info.active}{slots}"),
        el("td", {"class": "num"}, info.running),
        el("td", None, _window(info)),
        el("td", None, _partitions(info)),
    )


async def queues_page(settings: Settings, request: Request) -> Response:
    """``GET /queues``: every declared flow-control queue and what it holds now."""
    queues = await settings.flow.queues()
    head = el(
        "tr",
        None,
        [
            el("th", None, h)
            for h in (
                "Queue",
                "Definition",
                "Depth",
                "of which delayed",
                "Slots held",
                "Running",
                "Rate window",
                "Slots by partition key",
            )
        ],
    )
    rows = [_row(request, info) for info in queues]
    body = join(
        el(
            "p",
            {"class": "empty"},
            "Depth: runs started on the queue and not admitted yet. Slots held: admitted runs "
            "that have not finished (sleeping and waiting ones included); running: of those, "
            "the ones a worker executes now.",
        ),
        el("table", {"class": "queues"}, el("thead", None, head), el("tbody", None, rows))
        if rows
        else el("p", {"class": "empty"}, "No flow-control queue is declared on this database."),
    )
    return respond(request, settings, current="queues", heading="Queues", body=body)
