# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The workers page: who is alive, what each serves, who leads."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from ._html import el, join, seconds, when
from ._layout import notice, respond
from ._settings import Settings


async def workers_page(settings: Settings, request: Request) -> Response:
    """``GET /workers``: the workers registered on the database."""
    workers = await settings.flow.workers()
    now = datetime.now(UTC)
    head = el(
        "tr",
        None,
        [
            el("th", None, h)
            for h in (
                "Worker",
                "Host",
                "PID",
                "State",
                "Leader",
                "Up for",
                "Last heartbeat",
                "Serves",
            )
        ],
    )
    rows = [
        el(
            "tr",
            {"class": "worker" + (" alive" if w.alive else " silent"), "data-worker": w.id},
            el("td", None, w.id),
            el("td", None, w.hostname),
            el("td", {"class": "num"}, w.pid),
            el(
                "td",
                None,
                el(
                    "span",
                    {"class": "badge " + ("status-running" if w.alive else "status-dead")},
                    "alive" if w.alive else "silent",
                ),
            ),
            el("td", None, "leader" if w.leader else ""),
            el("td", {"class": "num"}, seconds(max((now - w.started_at).total_seconds(), 0))),
            el("td", None, when(w.heartbeat)),
            el(
                "td", None, el("ul", {"class": "versions"}, [el("li", None, v) for v in w.versions])
            ),
        )
        for w in workers
    ]
    leader = next((w.id for w in workers if w.leader), None)
    body = join(
        notice(f"Leader: {leader}" if leader else "No worker leads right now."),
        el("table", {"class": "workers"}, el("thead", None, head), el("tbody", None, rows))
        if rows
        else el("p", {"class": "empty"}, "No worker has registered on this database."),
    )
    return respond(request, settings, current="workers", heading="Workers", body=body)
