# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The schedules page and its actions: pause, resume and trigger now through
``FlowHooks.authorize_schedule``, CSRF-protected, refused without the host's login; a link
from each schedule to the runs it started."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from forktex_core.console import current_principal, flow_console
from forktex_core.console._schedules import catch_up
from forktex_core.flow import Flow, FlowHooks, HookDenied, ScheduleInfo

Client = Callable[..., httpx.AsyncClient]  # the client fixture; h: the conftest's helpers
ORIGIN = "http://console.test"  # the clients' base URL (conftest)
USER = {"x-user": "ada"}
POST = {**USER, "origin": ORIGIN}
ODD = "tenant <7>/digest & co"  # a schedule name is free text: escaped, never in a path
TOTAL = {"n": 3, "amount": "5 EUR"}  # orders.total version 2 returns 5


def row_of(page: str, name: str) -> str:
    attr = re.escape(html.escape(name, quote=True))
    found = re.search(rf'<tr class="schedule" data-schedule="{attr}"[^>]*>(.*?)</tr>', page, re.S)
    assert found, f"no row of schedule {name}"
    return found.group(0)


def run_ids(page: str) -> list[str]:
    return re.findall(r'data-run="([^"]+)"', page)


async def _two_schedules(flow: Flow) -> tuple[ScheduleInfo, ScheduleInfo]:
    daily = await flow.create_schedule(
        "reports.daily", "orders.total", "0 6 * * *", tz="Europe/Vienna", catch_up="skip",
        input=TOTAL, version=2,
    )  # fmt: skip
    odd = await flow.create_schedule(
        ODD, "jobs.wait", "*/5 * * * *", input=1, catch_up="all", max_catch_up=3, grace=30
    )
    return daily, odd


async def test_schedules_page_shows_each_schedule_and_links_its_runs(
    flow: Flow, client: Client, h: Any
) -> None:
    app = flow_console(flow, h.staff)
    async with client(app) as http:
        empty = await http.get("/schedules", headers=USER)
        assert empty.status_code == 200
        assert "No schedule is stored on this database." in empty.text
        assert 'href="/schedules" aria-current="page"' in empty.text
        assert 'href="/schedules"' in (await http.get("/", headers=USER)).text  # in the nav

        daily, odd = await _two_schedules(flow)
        await flow.pause_schedule(ODD)
        page = (await http.get("/schedules", headers=USER)).text
        row = row_of(page, "reports.daily")
        assert 'data-paused="false"' in row and ">active<" in row
        assert "orders.total<small> version 2</small>" in row
        assert "<code>0 6 * * *</code>" in row and "<td>Europe/Vienna</td>" in row
        assert f'datetime="{daily.next_tick.isoformat()}"' in row
        assert "<td data-last-tick></td>" in row  # never ticked
        assert "<td>skip, grace 1 min 0 s</td>" in row
        assert ">Pause</button>" in row and ">Trigger now</button>" in row
        assert 'action="/schedules/pause"' in row and 'action="/schedules/trigger"' in row
        row = row_of(page, ODD)
        assert 'data-paused="true"' in row and ">paused<" in row and ">Resume</button>" in row
        assert "jobs.wait<small> newest</small>" in row
        assert "<td>all (at most 3), grace 30.0 s</td>" in row
        assert html.escape(ODD) in row and ODD not in page  # escaped, never markup
        assert f'name="schedule" value="{html.escape(ODD)}"' in row
        assert odd.paused is False  # the info from before the pause

        # its runs: a tick's (backfill), a trigger's; another schedule's are not among them
        start = datetime(2026, 3, 1, tzinfo=UTC)
        ticks = await flow.backfill_schedule(ODD, start, start + timedelta(minutes=10))
        triggered = await flow.trigger_schedule(ODD)
        other = await flow.trigger_schedule("reports.daily")
        plain = await flow.start("jobs.wait", 1)
        link = re.search(r'<a href="([^"]+)" rel="related">runs</a>', row_of(page, ODD))
        assert link is not None
        runs = await http.get(html.unescape(link.group(1)), headers=USER)
        assert runs.status_code == 200
        assert set(run_ids(runs.text)) == {str(r) for r in [*ticks, triggered]}
        assert len(ticks) == 2 and str(other) not in runs.text and str(plain) not in runs.text
        # the run page names the schedule that started it
        shown = (await http.get(f"/runs/{triggered}", headers=USER)).text
        assert '<dt>Schedule</dt><dd><a href="/schedules" class="schedule">' in shown
        assert f"{html.escape(ODD)}</a>" in shown
        assert "<dt>Schedule</dt>" not in (await http.get(f"/runs/{plain}", headers=USER)).text


def test_catch_up_policies_read_as_words() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    info = ScheduleInfo(
        "s", "w", None, "@hourly", "UTC", None, None, "latest", 10, 60.0, False, now, None,
        False, now,
    )  # fmt: skip
    assert catch_up(info) == "latest, grace 1 min 0 s"


async def test_pause_resume_and_trigger_from_the_page(flow: Flow, client: Client, h: Any) -> None:
    await _two_schedules(flow)
    app = flow_console(flow, h.staff)
    async with h.running(flow), client(app) as http:
        token = h.token_in((await http.get("/schedules", headers=USER)).text)
        paused = await http.post(
            "/schedules/pause", headers=POST, data={"csrf": token, "schedule": "reports.daily"}
        )
        assert paused.status_code == 303
        assert paused.headers["location"] == "/schedules?done=pause"
        assert (await flow.get_schedule("reports.daily")).paused
        page = (await http.get(paused.headers["location"], headers=USER)).text
        assert "Schedule paused" in page
        assert ">Resume</button>" in row_of(page, "reports.daily")

        resumed = await http.post(
            "/schedules/resume", headers=POST, data={"csrf": token, "schedule": "reports.daily"}
        )
        assert resumed.status_code == 303
        assert resumed.headers["location"] == "/schedules?done=resume"
        assert not (await flow.get_schedule("reports.daily")).paused
        assert "Schedule resumed" in (await http.get("/schedules?done=resume", headers=USER)).text

        # trigger now: a run of the schedule starts at once; the console shows that run
        triggered = await http.post(
            "/schedules/trigger", headers=POST, data={"csrf": token, "schedule": "reports.daily"}
        )
        assert triggered.status_code == 303
        found = re.fullmatch(r"/runs/([0-9a-f-]+)\?done=trigger", triggered.headers["location"])
        assert found is not None
        run_id = uuid.UUID(found.group(1))
        assert await flow.result(run_id, timeout=20) == 5
        run = await flow.get_run(run_id)
        assert run.metadata["schedule"] == "reports.daily" and run.version == 2
        assert run.idempotency_key is not None
        assert run.idempotency_key.startswith("schedule:reports.daily:trigger:")
        shown = (await http.get(triggered.headers["location"], headers=USER)).text
        assert "Schedule triggered" in shown and "succeeded" in shown

        # a paused schedule can be triggered too (its ticks stay off)
        await http.post("/schedules/pause", headers=POST, data={"csrf": token, "schedule": ODD})
        again = await http.post(
            "/schedules/trigger", headers=POST, data={"csrf": token, "schedule": ODD}
        )
        assert again.status_code == 303 and "?done=trigger" in again.headers["location"]
        assert (await flow.get_schedule(ODD)).paused


class OpsSchedules(FlowHooks):
    """Only ``ops`` controls schedules; what it was asked is recorded."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []

    async def authorize_schedule(self, schedule: ScheduleInfo, action: str) -> None:
        self.asked.append((schedule.name, action, current_principal()))
        if current_principal() != "ops":
            raise HookDenied(f"{current_principal()} may not {action} {schedule.name}")


async def test_a_denied_schedule_action_changes_nothing_and_says_why(
    flow: Flow, client: Client, h: Any
) -> None:
    hooks = OpsSchedules()
    flow.add_hooks(hooks)
    await _two_schedules(flow)
    app = flow_console(flow, h.staff)
    async with client(app) as http:
        token = h.token_in((await http.get("/schedules", headers=USER)).text)
        for action in ("pause", "resume", "trigger"):
            response = await http.post(
                f"/schedules/{action}",
                headers=POST,
                data={"csrf": token, "schedule": "reports.daily"},
            )
            assert response.status_code == 403, action
            text = html.unescape(response.text)
            assert f"denied: ada may not {action} reports.daily" in text
            assert 'class="notice error" role="alert"' in response.text
            assert 'data-schedule="reports.daily"' in response.text  # the page, re-rendered
        assert [(n, a) for n, a, _ in hooks.asked] == [
            ("reports.daily", "pause"),
            ("reports.daily", "resume"),
            ("reports.daily", "trigger"),
        ]
        assert {p for _, _, p in hooks.asked} == {"ada"}
        info = await flow.get_schedule("reports.daily")
        assert not info.paused and info.last_tick is None
        assert await flow.list_runs(metadata={"schedule": "reports.daily"}) == []

        ops = {**POST, "x-user": "ops"}
        allowed = await http.post(
            "/schedules/pause", headers=ops, data={"csrf": token, "schedule": "reports.daily"}
        )
        assert allowed.status_code == 303
        assert (await flow.get_schedule("reports.daily")).paused


async def test_schedule_actions_refuse_cross_site_posts_and_bad_input(
    flow: Flow, client: Client, h: Any
) -> None:
    await _two_schedules(flow)
    app = flow_console(flow, h.staff, trusted_origins=["https://ops.example.com"])
    async with client(app) as http:
        token = h.token_in((await http.get("/schedules", headers=USER)).text)
        form = {"csrf": token, "schedule": "reports.daily"}
        forged: list[tuple[dict[str, str], dict[str, str], str]] = [
            (USER, form, "names no Origin"),
            ({**USER, "origin": "https://evil.example"}, form, "is not this console's"),
            ({**USER, "referer": "https://evil.example/x"}, form, "is not this console's"),
            (POST, {"schedule": "reports.daily"}, "token is missing"),
            (POST, {**form, "csrf": "x" * 43}, "does not match"),
        ]
        for action in ("pause", "trigger"):
            for headers, data, why in forged:
                response = await http.post(f"/schedules/{action}", headers=headers, data=data)
                assert response.status_code == 403, (action, headers, data)
                assert why in html.unescape(response.text)
        bad: list[tuple[str, dict[str, str], int, str]] = [
            ("pause", {**form, "schedule": "ghost"}, 404, "no schedule named 'ghost'"),
            ("resume", {**form, "schedule": "ghost"}, 404, "no schedule named 'ghost'"),
            ("trigger", {**form, "schedule": "ghost"}, 404, "no schedule named 'ghost'"),
            ("pause", {"csrf": token}, 400, "the form names no schedule"),
            ("trigger", {**form, "schedule": "  "}, 400, "the form names no schedule"),
            ("pause", {**form, "schedule": "x" * 300}, 400, "schedule name must be"),
        ]
        for action, data, status, message in bad:
            response = await http.post(f"/schedules/{action}", headers=POST, data=data)
            assert response.status_code == status, (action, data, response.text[-300:])
            assert message in html.unescape(response.text), (action, message)
        as_json = await http.post("/schedules/pause", headers=POST, json=form)
        assert as_json.status_code == 415 and "actions take a form" in as_json.text
        assert (await http.get("/schedules/pause", headers=USER)).status_code == 405
        assert (await http.post("/schedules/delete", headers=POST, data=form)).status_code == 404
    assert [s.paused for s in await flow.schedules()] == [False, False]
    assert await flow.list_runs() == []


async def test_schedule_routes_refuse_without_the_hosts_login(
    flow: Flow, client: Client, h: Any
) -> None:
    await _two_schedules(flow)
    app = flow_console(flow, h.staff)
    async with client(app) as http:
        token = h.token_in((await http.get("/schedules", headers=USER)).text)
        form = {"csrf": token, "schedule": "reports.daily"}
        for method, path in (
            ("GET", "/schedules"),
            ("POST", "/schedules/pause"),
            ("POST", "/schedules/resume"),
            ("POST", "/schedules/trigger"),
        ):
            response = await http.request(method, path, headers={"origin": ORIGIN}, data=form)
            assert response.status_code == 401, (method, path)
            assert "Authentication required" in response.text
            assert "reports.daily" not in response.text
    assert [s.paused for s in await flow.schedules()] == [False, False]
    assert await flow.list_runs() == []
