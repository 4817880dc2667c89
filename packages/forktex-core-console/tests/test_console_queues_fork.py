# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The queues page and the runs filtered by queue; forking a run from the run page (its
authoriser, CSRF, bad input) and the lineage links of forks and continue-as-new."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from forktex_core.console import flow_console
from forktex_core.console._queues import definition
from forktex_core.flow import Flow, FlowContext, FlowHooks, HookDenied, Queue, RunFailed, RunInfo

Client = Callable[..., httpx.AsyncClient]
ORIGIN = "http://console.test"  # the clients' base URL (conftest)
USER = {"x-user": "ada"}
POST = {**USER, "origin": ORIGIN}


def run_ids(page: str) -> list[str]:
    return re.findall(r'data-run="([^"]+)"', page)


def queue_row(page: str, name: str) -> str:
    found = re.search(rf'<tr class="queue" data-queue="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert found, f"no row of queue {name}"
    return found.group(1)


# -- queues --------------------------------------------------------------------------------


async def test_queues_page_shows_each_queue_and_runs_filter_by_queue(
    flow: Flow, client: Client, h: Any
) -> None:
    app = flow_console(flow, h.staff, page_size=2)
    async with client(app) as http:
        empty = await http.get("/queues", headers=USER)
        assert empty.status_code == 200
        assert "No flow-control queue is declared" in empty.text
        assert 'href="/queues" aria-current="page"' in empty.text

        flow.queue("console.emails", concurrency=2, limit=10, period=60)
        flow.queue("console.keyed", partition_concurrency=1)
        emails = [await flow.start("jobs.wait", n, queue="console.emails") for n in range(3)]
        keyed = [
            await flow.start("jobs.wait", n, queue="console.keyed", partition_key=f"org-{n}")
            for n in range(2)
        ]
        plain = await flow.start("jobs.wait", 9)
        before = (await http.get("/queues", headers=USER)).text
        row = queue_row(before, "console.emails")
        assert 'data-depth="3"' in row and 'data-active="0"' in row
        assert "2 at once, 10 starts per 1 min 0 s" in row
        assert 'href="/?queue=console.emails"' in row

        async with h.running(flow):  # admission: 2 slots of emails, one per key of keyed
            await h.wait_until(lambda: _admitted(flow, "console.emails", 2))
            await h.wait_until(lambda: _admitted(flow, "console.keyed", 2))
            after = (await http.get("/queues", headers=USER)).text
        row = queue_row(after, "console.emails")
        assert 'data-depth="1"' in row and 'data-active="2"' in row and ">2 of 2<" in row
        assert "2 / 10 in the last 1 min 0 s" in row
        row = queue_row(after, "console.keyed")
        assert "1 at once per partition key" in row
        assert '<li data-partition="org-0"><code>org-0</code>: 1</li>' in row
        assert '<li data-partition="org-1"><code>org-1</code>: 1</li>' in row

        # the runs of one queue, a keyset page at a time; the filter carries into the pager
        page = await http.get("/", params={"queue": "console.emails"}, headers=USER)
        assert run_ids(page.text) == [str(emails[2]), str(emails[1])]
        older = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert older is not None and "queue=console.emails" in older.group(1)
        rest = await http.get(html.unescape(older.group(1)), headers=USER)
        assert run_ids(rest.text) == [str(emails[0])]
        both = await http.get(
            "/", params={"queue": "console.keyed", "workflow": "jobs.wait"}, headers=USER
        )
        assert run_ids(both.text) == [str(keyed[1]), str(keyed[0])]
        assert str(plain) not in both.text
        none = await http.get("/", params={"queue": "nowhere"}, headers=USER)
        assert none.status_code == 200 and "No runs match." in none.text
        for bad, message in (("x" * 201, "queue must be text of at most 200"), ("a\tb", "queue")):
            response = await http.get("/", params={"queue": bad}, headers=USER)
            assert response.status_code == 400 and message in html.unescape(response.text)


async def _admitted(flow: Flow, name: str, active: int) -> bool:
    (info,) = await flow.queues(name)
    return info.active == active


def test_queue_definitions_read_as_phrases() -> None:
    assert definition(Queue("q")) == ["unlimited"]
    assert definition(
        Queue("q", concurrency=4, worker_concurrency=2, limit=5, period=0.5, priorities=True)
    ) == ["4 at once", "2 at once per worker", "5 starts per 500 ms", "priorities"]


# -- fork ----------------------------------------------------------------------------------


class FixedVersionOnly(FlowHooks):
    async def authorize_fork(self, run: RunInfo, from_step: int, version: int | None) -> None:
        if version != 2:
            raise HookDenied(f"{run.workflow} is forked onto version 2 only, not {version}")


async def _failed_total(flow: Flow, h: Any) -> uuid.UUID:
    run_id = await flow.start("orders.total", {"n": 1, "amount": "42 EUR"}, version=1)
    try:
        await flow.result(run_id, timeout=20)
    except RunFailed:
        return run_id
    raise AssertionError("orders.total v1 should fail on '42 EUR'")


async def test_fork_from_the_run_page_with_lineage_both_ways(
    flow: Flow, client: Client, h: Any
) -> None:
    flow.add_hooks(FixedVersionOnly())
    app = flow_console(flow, h.staff)
    async with h.running(flow), client(app) as http:
        original = await _failed_total(flow, h)
        page = (await http.get(f"/runs/{original}", headers=USER)).text
        assert f'action="/runs/{original}/fork"' in page
        # the first failed step is the default position; the other registered version offered
        assert re.search(r'name="from_step"[^>]*value="1"', page)
        assert '<option value="2">2</option>' in page

        # denied by the authoriser: nothing is created and the page says why
        denied = await http.post(
            f"/runs/{original}/fork",
            headers=POST,
            data={"csrf": h.token_in(page), "from_step": "1", "version": ""},
        )
        assert denied.status_code == 403
        assert "denied: orders.total is forked onto version 2 only, not None" in denied.text
        assert len(await flow.list_runs(workflow="orders.total")) == 1

        response = await http.post(
            f"/runs/{original}/fork",
            headers=POST,
            data={"csrf": h.token_in(page), "from_step": "1", "version": "2"},
        )
        assert response.status_code == 303
        location = response.headers["location"]
        found = re.fullmatch(r"/runs/([0-9a-f-]+)\?done=fork", location)
        assert found is not None
        fork = uuid.UUID(found.group(1))
        assert await flow.result(fork, timeout=20) == 42
        shown = (await http.get(location, headers=USER)).text
        assert "Fork started" in shown
        assert f'<span class="forked-from"><a href="/runs/{original}" rel="related">' in shown
        assert "from step #1" in shown
        back = (await http.get(f"/runs/{original}", headers=USER)).text
        assert f'<a href="/runs/{fork}" rel="related">{fork}</a>' in back
        steps = await flow.history(fork)
        assert [(s.name, s.kind) for s in steps][-1][0].endswith("parse_amount")


async def test_fork_is_csrf_protected_and_bad_input_is_4xx(
    flow: Flow, client: Client, h: Any
) -> None:
    app = flow_console(flow, h.staff)
    async with h.running(flow), client(app) as http:
        original = await _failed_total(flow, h)
        live = await flow.start("jobs.wait", 1)
        token = h.token_in((await http.get(f"/runs/{original}", headers=USER)).text)
        forged = await http.post(
            f"/runs/{original}/fork",
            headers={**USER, "origin": "https://evil.example"},
            data={"csrf": token, "from_step": "0"},
        )
        assert forged.status_code == 403 and "is not this console's" in html.unescape(forged.text)
        no_token = await http.post(f"/runs/{original}/fork", headers=POST, data={"from_step": "0"})
        assert no_token.status_code == 403 and "token is missing" in no_token.text
        ok = {"csrf": token}
        cases: list[tuple[uuid.UUID | str, dict[str, str], int, str]] = [
            (original, ok, 400, "from_step must be a step position"),
            (original, {**ok, "from_step": "-1"}, 400, "from_step must be a step position"),
            (original, {**ok, "from_step": "one"}, 400, "from_step must be a step position"),
            (original, {**ok, "from_step": "99"}, 400, "between 0 and 2"),
            (original, {**ok, "from_step": "0", "version": "v2"}, 400, "version must be"),
            (original, {**ok, "from_step": "0", "version": "9"}, 400, "version 9"),
            (original, {**ok, "from_step": "0", "version": "0"}, 400, "version"),
            (live, {**ok, "from_step": "0"}, 400, "only finished runs"),
            (uuid.uuid4(), {**ok, "from_step": "0"}, 404, "There is no run"),
        ]
        for run_id, form, status, message in cases:
            response = await http.post(f"/runs/{run_id}/fork", headers=POST, data=form)
            assert response.status_code == status, (form, response.text[-400:])
            assert message in html.unescape(response.text), (form, message)
    assert len(await flow.list_runs(workflow="orders.total")) == 1
    assert len(await flow.list_runs(workflow="jobs.wait")) == 1


async def test_continue_as_new_generations_link_to_each_other(
    flow: Flow, client: Client, h: Any
) -> None:
    @flow.workflow(name="console.counter", version=1)
    async def counter(ctx: FlowContext, n: int) -> int:
        if n < 1:
            ctx.continue_as_new(n + 1)
        return n

    app = flow_console(flow, h.staff)
    async with h.running(flow), client(app) as http:
        run_id = await flow.start("console.counter", 0)
        assert await flow.result(run_id, timeout=20) == 1
        archive = (await flow.get_run(run_id)).metadata["continued_from"]
        live = (await http.get(f"/runs/{run_id}", headers=USER)).text
        assert f'<span class="continued-from"><a href="/runs/{archive}"' in live
        assert "<dt>Generation</dt><dd>1</dd>" in live
        old = (await http.get(f"/runs/{archive}", headers=USER)).text
        assert f'<span class="continued-into"><a href="/runs/{run_id}"' in old
        assert "<dt>Generation</dt><dd>0</dd>" in old
        # lineage is data: something that is not a run id is shown as no link
        forged = await flow.start("jobs.wait", 1, metadata={"forked_from": "<b>x</b>"})
        page = (await http.get(f"/runs/{forged}", headers=USER)).text
        assert "Forked from" not in page and "<b>x</b>" not in page


async def test_parent_and_children_link_to_each_other(flow: Flow, client: Client, h: Any) -> None:
    @flow.workflow(name="console.leaf", version=1)
    async def leaf(ctx: FlowContext, n: int) -> int:
        return n * 2

    @flow.workflow(name="console.tree", version=1)
    async def tree(ctx: FlowContext, n: int) -> int:
        return sum([await ctx.run_child("console.leaf", i) for i in range(n)])

    app = flow_console(flow, h.staff)
    async with h.running(flow), client(app) as http:
        parent = await flow.start("console.tree", 3)
        assert await flow.result(parent, timeout=20) == 6
        kids = [c.id for c in await flow.children(parent)]
        assert len(kids) == 3
        page = (await http.get(f"/runs/{parent}", headers=USER)).text
        assert "<dt>Children (3)</dt>" in page
        assert all(f'<a href="/runs/{kid}" rel="related">' in page for kid in kids)
        assert "<dt>Parent</dt>" not in page
        child = (await http.get(f"/runs/{kids[0]}", headers=USER)).text
        assert f'<span class="parent"><a href="/runs/{parent}" rel="related">' in child
        assert "Children (" not in child
