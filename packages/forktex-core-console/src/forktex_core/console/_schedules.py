# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The schedules page (``flow.schedules()``: definition, paused, next and last tick,
catch-up policy, a link to each schedule's runs) and its actions: pause, resume, trigger now.

An action is ``POST /schedules/{action}`` with the schedule's name in the form (names are
free text, so they stay out of the path). It calls ``flow.pause_schedule`` and so on, so the
flow's ``FlowHooks.authorize_schedule`` decides, exactly as for the host's own calls; it
passes the same CSRF checks as the run actions. A trigger leads to the new run's page.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from forktex_core.flow import Flow, ScheduleInfo

from ._actions import Refused, checked_form, outcome
from ._html import Safe, el, join, seconds, when
from ._layout import csrf_field, href, notice, respond
from ._settings import Settings

log = logging.getLogger("forktex_core.console")

# The metadata flow gives every run a schedule starts (a tick's, a trigger's, a backfill's).
SCHEDULE_KEY = "schedule"

NOTICES = {
    "pause": "Schedule paused: its ticks no longer start runs.",
    "resume": "Schedule resumed: from its next tick on (ticks missed while paused do not run).",
}


async def _pause(flow: Flow, name: str) -> None:
    await flow.pause_schedule(name)


async def _resume(flow: Flow, name: str) -> None:
    await flow.resume_schedule(name)


async def _trigger(flow: Flow, name: str) -> uuid.UUID:
    return await flow.trigger_schedule(name)


#: A schedule action: ``None``, or the id of the run it started (the console then shows it).
ScheduleAction = Callable[[Flow, str], Awaitable[uuid.UUID | None]]

#: The schedule actions by name; each is ``POST /schedules/<name>`` (route ``schedule_<name>``).
SCHEDULE_ACTIONS: dict[str, ScheduleAction] = {
    "pause": _pause,
    "resume": _resume,
    "trigger": _trigger,
}


def runs_href(request: Request, name: str) -> str:
    """The runs page filtered to the runs schedule ``name`` started (by their metadata).

    Example::

        runs_href(request, "reports.refresh")  # '/?metadata=%7B%22schedule%22...'
    """
    wanted = json.dumps({SCHEDULE_KEY: name}, ensure_ascii=False)
    return href(request, "runs") + "?" + urlencode({"metadata": wanted})


def catch_up(info: ScheduleInfo) -> str:
    """The catch-up policy in words (with ``grace``, the lateness still counted on time).

    Example::

        catch_up(info)  # 'all (at most 10), grace 1 min 0 s'
    """
    policy = f"all (at most {info.max_catch_up})" if info.catch_up == "all" else info.catch_up
    return f"{policy}, grace {seconds(info.grace)}"


def _button(request: Request, action: str, name: str, label: str, confirm: str | None) -> Safe:
    return el(
        "form",
        {
            "method": "post",
            "action": href(request, f"schedule_{action}"),
            "class": f"action schedule-{action}",
            "data-confirm": confirm,
        },
        csrf_field(request),
        el("input", {"type": "hidden", "name": "schedule", "value": name}),
        el("button", {"type": "submit"}, label),
    )


def _row(request: Request, info: ScheduleInfo) -> Safe:
    version = "newest" if info.version is None else f"version {info.version}"
    toggle = (
        _button(request, "resume", info.name, "Resume", None)
        if info.paused
        else _button(request, "pause", info.name, "Pause", f"Pause schedule {info.name}?")
    )
    state = el(
        "span",
        {"class": "badge " + ("status-cancelled" if info.paused else "status-running")},
        "paused" if info.paused else "active",
    )
    return el(
        "tr",
        {"class": "schedule", "data-schedule": info.name, "data-paused": str(info.paused).lower()},
        el("td", None, info.name, el("small", None, " (in code)") if info.declared else ""),
        el("td", None, info.workflow, el("small", None, f" {version}")),
        el("td", None, el("code", None, info.cron)),
        el("td", None, info.tz),
        el("td", {"class": "state"}, state),
        el("td", {"data-next-tick": True}, when(info.next_tick)),
        el("td", {"data-last-tick": True}, when(info.last_tick)),
        el("td", None, catch_up(info)),
        el("td", None, el("a", {"href": runs_href(request, info.name), "rel": "related"}, "runs")),
        el(
            "td",
            {"class": "actions"},
            toggle,
            _button(
                request, "trigger", info.name, "Trigger now", f"Start a run of {info.name} now?"
            ),
        ),
    )


async def schedules_page(
    settings: Settings, request: Request, *, problem: str | None = None, status: int = 200
) -> Response:
    """``GET /schedules``: every stored schedule and its state (also re-rendered with
    ``problem`` after a refused action)."""
    schedules = await settings.flow.schedules()
    head = el(
        "tr",
        None,
        [
            el("th", None, h)
            for h in (
                "Schedule",
                "Workflow",
                "Cron",
                "Time zone",
                "State",
                "Next tick (UTC)",
                "Last tick (UTC)",
                "Catch-up",
                "Runs",
                "Actions",
            )
        ],
    )
    rows = [_row(request, info) for info in schedules]
    done = request.query_params.get("done", "")
    body = join(
        notice(NOTICES.get(done)),
        notice(problem, error=True),
        el("table", {"class": "schedules"}, el("thead", None, head), el("tbody", None, rows))
        if rows
        else el("p", {"class": "empty"}, "No schedule is stored on this database."),
    )
    return respond(
        request, settings, current="schedules", heading="Schedules", body=body, status=status
    )


async def act_on_schedule(settings: Settings, request: Request, action: str) -> Response:
    """``POST /schedules/{action}``: check the request, run the action, show the result."""
    name = ""
    try:
        form = await checked_form(settings, request)
        name = form.get("schedule", "")
        if not name.strip():
            raise Refused(400, "the form names no schedule (field 'schedule')")
        started = await SCHEDULE_ACTIONS[action](settings.flow, name)
    except Refused as exc:
        return await schedules_page(settings, request, problem=str(exc), status=exc.status)
    except Exception as exc:
        known = outcome(exc)
        if known is None:
            log.exception("console: %s of schedule %r failed", action, name[:200])
            known = (500, f"the {action} failed ({type(exc).__name__}); see the server log")
        return await schedules_page(settings, request, problem=known[1], status=known[0])
    if started is not None:
        target = href(request, "run", run_id=str(started)) + "?done=trigger"
    else:
        target = href(request, "schedules") + f"?done={action}"
    return RedirectResponse(target, status_code=303)
