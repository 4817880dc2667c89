# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The runs page (filters, keyset pages, live counts) and the run page (status, values,
timeline, signals, graph picture, actions)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from forktex_core.flow import (
    InvalidArgument,
    RunInfo,
    RunNotFound,
    RunStatus,
    SignalInfo,
    StepInfo,
    UnknownWorkflow,
)

from ._filters import STATUSES, BadFilter, parse_filters, query_pairs
from ._html import Safe, badge, el, join, pretty, seconds, short, when
from ._layout import csrf_field, href, notice, respond
from ._redact import shown
from ._settings import Settings

TIMELINE_ROWS = 2000  # steps drawn on a run page (the rest are counted)

NOTICES = {
    "signal": "Signal sent.",
    "cancel": "Run cancelled.",
    "retry": "Run queued for retry.",
    "fork": "Fork started: this run replays the original's steps before its position.",
    "trigger": "Schedule triggered: this run started now, outside the schedule's ticks.",
}

# The lineage flow keeps in run metadata (see Flow.fork and ctx.continue_as_new).
FORKED_FROM = "forked_from"
FORKED_FROM_STEP = "forked_from_step"
CONTINUED_FROM = "continued_from"
CONTINUED_INTO = "continued_into"
GENERATION = "generation"
SCHEDULE = "schedule"  # the schedule that started the run (with its tick, "scheduled_at")
CHILDREN_SHOWN = 50  # a fan-out may have thousands; the first ones are listed
FORKS_SHOWN = 20  # forks of a run linked from its page (newest first)


def _query(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query, keep_blank_values=True)


def _run_id(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(request.path_params["run_id"]))
    except ValueError:
        return None


def _note(run: RunInfo) -> str:
    if run.waiting_for_worker:
        return f"waiting for a worker with {run.workflow} version {run.version}"
    return ""


def _filter_form(request: Request, settings: Settings, query: dict[str, list[str]]) -> Safe:
    def value(name: str) -> str:
        return (query.get(name) or [""])[-1]

    chosen = {v for s in query.get("status", []) for v in s.split(",")}
    workflows = sorted({w for w in settings.flow.graphs} | _workflow_names(settings))
    fields = [
        el(
            "label",
            None,
            "Workflow",
            el(
                "input",
                {
                    "name": "workflow",
                    "value": value("workflow"),
                    "list": "workflows",
                    "autocomplete": "off",
                    "size": 18,
                },
            ),
        ),
        el("datalist", {"id": "workflows"}, [el("option", {"value": w}) for w in workflows]),
        el(
            "label",
            None,
            "Version",
            el(
                "input",
                {"name": "version", "value": value("version"), "inputmode": "numeric", "size": 4},
            ),
        ),
        el(
            "fieldset",
            {"class": "statuses"},
            el("legend", None, "Status"),
            [
                el(
                    "label",
                    None,
                    el(
                        "input",
                        {"type": "checkbox", "name": "status", "value": s, "checked": s in chosen},
                    ),
                    s,
                )
                for s in STATUSES
            ],
        ),
        el(
            "label",
            None,
            "Metadata",
            el(
                "input",
                {
                    "name": "metadata",
                    "value": value("metadata"),
                    "placeholder": 'org_id=o1 or {"org_id": "o1"}',
                    "size": 22,
                },
            ),
        ),
        el(
            "label",
            None,
            "Queue",
            el("input", {"name": "queue", "value": value("queue"), "size": 12}),
        ),
        el(
            "label",
            None,
            "Created from (UTC)",
            el(
                "input",
                {
                    "name": "from",
                    "value": value("from"),
                    "placeholder": "2026-01-31T12:00",
                    "size": 16,
                },
            ),
        ),
        el(
            "label",
            None,
            "before",
            el(
                "input",
                {"name": "to", "value": value("to"), "placeholder": "2026-02-01", "size": 16},
            ),
        ),
    ]
    return el(
        "form",
        {"class": "filters", "method": "get", "action": href(request, "runs")},
        fields,
        el("button", {"type": "submit"}, "Filter"),
        el("a", {"href": href(request, "runs")}, "Clear"),
    )


def _workflow_names(settings: Settings) -> set[str]:
    names = set()
    for key in settings.flow.fingerprints():
        names.add(key[0])
    return names


def _counts_bar(request: Request) -> Safe:
    cells = [
        el(
            "li",
            {"class": f"count status-{s}"},
            el("a", {"href": href(request, "runs") + "?" + urlencode({"status": s})}, s),
            " ",
            el("span", {"data-count": s}, "…"),
        )
        for s in STATUSES
    ]
    return el(
        "ul",
        {"class": "counts", "data-counts-url": href(request, "counts"), "aria-live": "polite"},
        cells,
        el("li", {"class": "count-note", "data-count-note": True}),
    )


def _runs_table(request: Request, settings: Settings, runs: list[RunInfo]) -> Safe:
    head = el(
        "tr",
        None,
        [
            el("th", None, h)
            for h in (
                "Run",
                "Workflow",
                "Version",
                "Status",
                "Queue",
                "Created",
                "Took",
                "Metadata",
                "Note",
            )
        ],
    )
    rows = []
    for run in runs:
        took = None
        if run.started_at is not None and run.finished_at is not None:
            took = (run.finished_at - run.started_at).total_seconds()
        meta = shown(settings.redact, run.metadata) if run.metadata else None
        rows.append(
            el(
                "tr",
                {"data-run": str(run.id)},
                el(
                    "td",
                    None,
                    el("a", {"href": href(request, "run", run_id=str(run.id))}, str(run.id)[:8]),
                ),
                el("td", None, run.workflow),
                el("td", {"class": "num"}, run.version),
                el("td", None, badge(run.status.value)),
                el("td", None, run.queue or ""),
                el("td", None, when(run.created_at)),
                el("td", {"class": "num"}, seconds(took)),
                el("td", {"class": "meta"}, "" if meta is None else short(meta, 60)),
                el("td", None, _note(run)),
            )
        )
    if not rows:
        rows.append(el("tr", None, el("td", {"colspan": 9, "class": "empty"}, "No runs match.")))
    return el("table", {"class": "runs"}, el("thead", None, head), el("tbody", None, rows))


async def runs_page(settings: Settings, request: Request) -> Response:
    """``GET /``: the runs, newest first, filtered, a keyset page at a time."""
    query = _query(request)
    problem = None
    runs: list[RunInfo] = []
    next_cursor = None
    status = 200
    try:
        kwargs = parse_filters(query)
        after = (query.get("after") or [""])[-1] or None
        page = await settings.flow.page_runs(limit=settings.page_size, after=after, **kwargs)
        runs, next_cursor = page.runs, page.next
    except (BadFilter, InvalidArgument) as exc:
        problem, status = str(exc), 400
    pager = []
    if "after" in query:
        pager.append(
            el(
                "a",
                {"href": href(request, "runs") + "?" + urlencode(query_pairs(query))},
                "« Newest",
            )
        )
    if next_cursor is not None:
        link = urlencode([*query_pairs(query), ("after", next_cursor)])
        pager.append(
            el("a", {"href": href(request, "runs") + "?" + link, "rel": "next"}, "Older »")
        )
    body = join(
        _counts_bar(request),
        _filter_form(request, settings, query),
        notice(problem, error=True),
        _runs_table(request, settings, runs),
        el("nav", {"class": "pager"}, pager),
    )
    return respond(request, settings, current="runs", heading="Runs", body=body, status=status)


# -- one run ----------------------------------------------------------------------------------


def _value_block(settings: Settings, label: str, value: Any) -> Safe:
    if value is None:
        return Safe("")
    return el(
        "section",
        {"class": "value"},
        el("h3", None, label),
        el("pre", None, pretty(shown(settings.redact, value))),
    )


def _timeline(settings: Settings, run: RunInfo, steps: list[StepInfo]) -> Safe:
    if not steps:
        return el("p", {"class": "empty"}, "No steps recorded yet.")
    origin = run.started_at or steps[0].started_at
    last = max((s.finished_at or s.started_at for s in steps), default=origin)
    span = max((last - origin).total_seconds(), 1e-3)
    head = el(
        "tr",
        None,
        [
            el("th", None, h)
            for h in ("#", "Step", "Kind", "Status", "Attempt", "Started", "Took", "", "Result")
        ],
    )
    rows = []
    for s in steps[:TIMELINE_ROWS]:
        start = max((s.started_at - origin).total_seconds(), 0.0)
        length = (s.duration or 0.0) if s.finished_at is not None else 0.0
        x = 200 * start / span
        w = max(200 * length / span, 2.0)
        bar = Safe(
            f'<svg class="bar" width="204" height="12" viewBox="0 0 204 12" aria-hidden="true">'
            f'<rect x="{min(x, 202):.1f}" y="2" width="{min(w, 204 - x):.1f}" height="8" rx="2" '
            f'class="bar-{s.status}"/></svg>'
        )
        result = s.error if s.error is not None else s.output
        shown_value = shown(settings.redact, result)
        cell: Any = ""
        if result is not None:
            text = pretty(shown_value)
            cell = (
                el(
                    "details",
                    None,
                    el("summary", None, short(shown_value, 60)),
                    el("pre", None, text),
                )
                if len(text) > 60
                else el("code", None, text)
            )
        rows.append(
            el(
                "tr",
                {"class": f"step kind-{s.kind} step-{s.status}", "data-seq": s.seq},
                el("td", {"class": "num"}, s.seq),
                el("td", None, s.name),
                el("td", None, s.kind),
                el("td", None, badge(s.status)),
                el("td", {"class": "num"}, s.attempt),
                el("td", None, when(s.started_at)),
                el("td", {"class": "num"}, seconds(s.duration)),
                el("td", None, bar),
                el("td", {"class": "result"}, cell),
            )
        )
    more = len(steps) - TIMELINE_ROWS
    tail = el("p", {"class": "empty"}, f"{more} more steps not shown.") if more > 0 else ""
    return join(
        el("table", {"class": "timeline"}, el("thead", None, head), el("tbody", None, rows)), tail
    )


def _signals(settings: Settings, signals: list[SignalInfo]) -> Safe:
    if not signals:
        return el("p", {"class": "empty"}, "No signals sent.")
    head = el(
        "tr", None, [el("th", None, h) for h in ("Id", "Name", "Sent", "Consumed", "Payload")]
    )
    rows = [
        el(
            "tr",
            {"class": "signal"},
            el("td", {"class": "num"}, s.id),
            el("td", None, s.name),
            el("td", None, when(s.created_at)),
            el(
                "td",
                None,
                when(s.consumed_at) if s.consumed_at else "pending",
                f" (step {s.consumed_seq})" if s.consumed_seq is not None else "",
            ),
            el("td", None, el("code", None, short(shown(settings.redact, s.payload), 100))),
        )
        for s in signals
    ]
    return el("table", {"class": "signals"}, el("thead", None, head), el("tbody", None, rows))


def _fork_form(request: Request, settings: Settings, run: RunInfo, steps: list[StepInfo]) -> Safe:
    """Fork a finished run from a position: by default the first failed step's (else 0),
    on the original's version unless another registered one is chosen."""
    failed = [s.seq for s in steps if s.status == "failed"]
    start = failed[0] if failed else 0
    last = max((s.seq for s in steps), default=-1) + 1
    versions = sorted(v for w, v in settings.flow.fingerprints() if w == run.workflow)
    choices = [el("option", {"value": ""}, f"the original's ({run.version})")]
    choices.extend(el("option", {"value": v}, str(v)) for v in versions if v != run.version)
    return el(
        "form",
        {
            "method": "post",
            "action": href(request, "fork", run_id=str(run.id)),
            "class": "action fork",
        },
        csrf_field(request),
        el(
            "label",
            None,
            "From step #",
            el(
                "input",
                {
                    "name": "from_step",
                    "type": "number",
                    "min": 0,
                    "max": last,
                    "value": start,
                    "required": True,
                    "size": 5,
                },
            ),
        ),
        el("label", None, "On version", el("select", {"name": "version"}, choices)),
        el("button", {"type": "submit"}, "Fork run"),
    )


def _actions(request: Request, settings: Settings, run: RunInfo, steps: list[StepInfo]) -> Safe:
    rid = str(run.id)
    forms = []
    if not run.status.finished:
        forms.append(
            el(
                "form",
                {
                    "method": "post",
                    "action": href(request, "signal", run_id=rid),
                    "class": "action signal",
                },
                csrf_field(request),
                el(
                    "label",
                    None,
                    "Signal",
                    el(
                        "input",
                        {
                            "name": "name",
                            "value": "advance",
                            "required": True,
                            "maxlength": 200,
                            "size": 14,
                        },
                    ),
                ),
                el(
                    "label",
                    None,
                    "Payload (JSON)",
                    el(
                        "textarea",
                        {
                            "name": "payload",
                            "rows": 3,
                            "cols": 40,
                            "placeholder": '{"code": "abc"}',
                        },
                    ),
                ),
                el("button", {"type": "submit"}, "Send signal"),
            )
        )
        forms.append(
            el(
                "form",
                {
                    "method": "post",
                    "action": href(request, "cancel", run_id=rid),
                    "class": "action cancel",
                    "data-confirm": "Cancel this run?",
                },
                csrf_field(request),
                el("button", {"type": "submit"}, "Cancel run"),
            )
        )
    if run.status in (RunStatus.FAILED, RunStatus.DEAD, RunStatus.CANCELLED):
        forms.append(
            el(
                "form",
                {
                    "method": "post",
                    "action": href(request, "retry", run_id=rid),
                    "class": "action retry",
                },
                csrf_field(request),
                el("button", {"type": "submit"}, "Retry run"),
            )
        )
    if run.status.finished:
        forms.append(_fork_form(request, settings, run, steps))
    if not forms:
        return Safe("")
    return el("section", {"class": "actions"}, el("h2", None, "Actions"), forms)


def _picture(request: Request, settings: Settings, run: RunInfo) -> Safe:
    try:
        settings.flow.graph(run.workflow, run.version)
    except UnknownWorkflow:
        return Safe("")
    src = href(request, "run_graph", run_id=str(run.id))
    return el(
        "section",
        {"class": "graph"},
        el("h2", None, "Graph"),
        el(
            "img",
            {
                "src": src,
                "alt": f"state picture of {run.workflow} v{run.version}",
                "class": "graph-picture",
            },
        ),
    )


def state_key(run: RunInfo, steps: list[StepInfo]) -> str:
    """What changes whenever the run page would show something new."""
    last = max((s.finished_at or s.started_at for s in steps), default=None)
    stamp = "" if last is None else last.isoformat()
    return f"{run.status.value}|{run.updated_at.isoformat()}|{len(steps)}|{stamp}"


async def run_page(
    settings: Settings,
    request: Request,
    *,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    """``GET /runs/{run_id}``: one run (also re-rendered with ``problem`` after a refused
    action)."""
    rid = _run_id(request)
    if rid is None:
        return _not_found(request, settings, "That is not a run id (a UUID).", 400)
    flow = settings.flow
    try:
        run = await flow.get_run(rid)
        steps = await flow.history(rid)
        signals = await flow.signals(rid, limit=500)
    except RunNotFound:
        return _not_found(request, settings, f"There is no run {rid}.", 404)
    done = (_query(request).get("done") or [""])[-1]
    took = None
    if run.started_at is not None and run.finished_at is not None:
        took = (run.finished_at - run.started_at).total_seconds()
    facts = [
        ("Workflow", f"{run.workflow} version {run.version}"),
        ("Status", join(badge(run.status.value), " ", _note(run))),
        ("Created", when(run.created_at)),
        ("Started", when(run.started_at)),
        ("Finished", when(run.finished_at)),
        ("Took", seconds(took)),
        ("Worker", run.worker or ""),
        ("Recovery attempts", run.recovery_attempts),
        ("Deadline", when(run.deadline)),
        ("Idempotency key", run.idempotency_key or ""),
    ]
    facts.extend(await _relations(request, settings, run))
    body = join(
        notice(NOTICES.get(done)),
        notice(problem, error=True),
        el(
            "dl", {"class": "facts"}, [join(el("dt", None, k), el("dd", None, v)) for k, v in facts]
        ),
        _actions(request, settings, run, steps),
        _picture(request, settings, run),
        _value_block(settings, "Input", run.input),
        _value_block(settings, "Output", run.output),
        _value_block(settings, "Error", run.error),
        _value_block(settings, "Metadata", run.metadata or None),
        el(
            "section",
            {"class": "history"},
            el("h2", None, f"Timeline ({len(steps)} steps)"),
            _timeline(settings, run, steps),
        ),
        el(
            "section",
            {"class": "signals"},
            el("h2", None, f"Signals ({len(signals)})"),
            _signals(settings, signals),
        ),
    )
    attrs = {
        "data-run-state-url": href(request, "run_state", run_id=str(run.id)),
        "data-run-state": state_key(run, steps),
        "data-run-finished": "true" if run.status.finished else "false",
    }
    return respond(
        request,
        settings,
        current="runs",
        heading=f"Run {run.id}",
        body=body,
        status=status,
        body_attrs=attrs,
    )


def _run_link(request: Request, value: Any) -> Safe | None:
    """A link to the run whose id is ``value`` (metadata is data: anything else is None)."""
    try:
        rid = uuid.UUID(str(value))
    except ValueError:
        return None
    return el("a", {"href": href(request, "run", run_id=str(rid)), "rel": "related"}, str(rid))


async def _relations(request: Request, settings: Settings, run: RunInfo) -> list[tuple[str, Any]]:
    """Links to related runs: its parent and children (child workflows), the run it was
    forked from, its forks (newest first), the generations before and after it
    (continue-as-new); the schedule that started it."""
    meta = run.metadata or {}
    out: list[tuple[str, Any]] = []
    if run.parent_id is not None:
        parent = _run_link(request, run.parent_id)
        out.append(("Parent", el("span", {"class": "parent"}, parent)))
    children = await settings.flow.children(run.id)
    if children:
        items = [
            el("li", None, _run_link(request, c.id), " ", c.workflow, " ", badge(c.status.value))
            for c in children[:CHILDREN_SHOWN]
        ]
        if len(children) > CHILDREN_SHOWN:
            items.append(el("li", None, f"and {len(children) - CHILDREN_SHOWN} more"))
        out.append((f"Children ({len(children)})", el("ul", {"class": "children"}, items)))
    origin = _run_link(request, meta.get(FORKED_FROM))
    if origin is not None:
        step = meta.get(FORKED_FROM_STEP)
        at = f" from step #{step}" if isinstance(step, int) and not isinstance(step, bool) else ""
        out.append(("Forked from", el("span", {"class": "forked-from"}, origin, at)))
    forks = await settings.flow.page_runs(metadata={FORKED_FROM: str(run.id)}, limit=FORKS_SHOWN)
    if forks.runs:
        links = [
            el("li", None, _run_link(request, f.id), " ", badge(f.status.value)) for f in forks.runs
        ]
        if forks.next is not None:
            more = href(request, "runs") + "?" + urlencode({"metadata": f"{FORKED_FROM}={run.id}"})
            links.append(el("li", None, el("a", {"href": more}, "all forks")))
        out.append(("Forks", el("ul", {"class": "forks"}, links)))
    schedule = meta.get(SCHEDULE)
    if isinstance(schedule, str):
        by = el("a", {"href": href(request, "schedules"), "class": "schedule"}, schedule)
        out.append(("Schedule", by))
    generation = meta.get(GENERATION)
    if isinstance(generation, int) and not isinstance(generation, bool):
        out.append(("Generation", generation))
    for key, label in ((CONTINUED_FROM, "Continued from"), (CONTINUED_INTO, "Continued into")):
        link = _run_link(request, meta.get(key))
        if link is not None:
            out.append((label, el("span", {"class": key.replace("_", "-")}, link)))
    return out


def _not_found(request: Request, settings: Settings, message: str, status: int) -> HTMLResponse:
    body = join(notice(message, error=True), el("a", {"href": href(request, "runs")}, "All runs"))
    return respond(
        request, settings, current="runs", heading="No such run", body=body, status=status
    )


async def run_graph(settings: Settings, request: Request) -> Response:
    """``GET /runs/{run_id}/graph.svg``: the run's graph with its current and visited
    states and the edges it took."""
    from ._svg import render

    rid = _run_id(request)
    if rid is None:
        return Response("not a run id", status_code=400, media_type="text/plain")
    try:
        run = await settings.flow.get_run(rid)
        graph = settings.flow.graph(run.workflow, run.version)
        states = [s.name for s in await settings.flow.history(rid) if s.kind == "state"]
    except RunNotFound:
        return Response(f"no run {rid}", status_code=404, media_type="text/plain")
    except UnknownWorkflow:
        return Response(
            f"{run.workflow} version {run.version} is not a graph registered in this process",
            status_code=404,
            media_type="text/plain",
        )
    current = states[-1] if states else None
    svg = render(graph, current=current, visited=states, path=set(itertools.pairwise(states)))
    return Response(svg, media_type="image/svg+xml")
