# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every route of the console against real Postgres (and Redis for the jobs page), through
httpx: authentication refused, CSRF, redaction, actions and their authorisers, bad input,
escaping, and the console mounted under a path."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount

from forktex_core.console import (
    ANONYMOUS,
    REDACTED,
    ConsoleError,
    SecretRedactor,
    current_principal,
    flow_console,
    redact_secrets,
)
from forktex_core.flow import Flow, FlowHooks, HookDenied, RunInfo

Client = Callable[..., httpx.AsyncClient]
ORIGIN = "http://console.test"  # the clients' base URL (conftest)


async def wait_until(cond: Callable[[], Any], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Poll an (async) condition until true; fail after ``timeout`` seconds."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await cond():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


def staff(request: Request) -> str | None:
    """The tests' login: the ``X-User`` header names the principal."""
    return request.headers.get("x-user")


USER = {"x-user": "ada"}
POST = {**USER, "origin": ORIGIN}


def token_in(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def waiting_review(flow: Flow) -> uuid.UUID:
    run_id = await flow.start("orders.review", {"n": 1, "password": "hunter2"})
    await wait_until(lambda: _status(flow, run_id, "waiting"))
    return run_id


async def _status(flow: Flow, run_id: uuid.UUID, status: str) -> bool:
    return (await flow.get_run(run_id)).status == status


# -- building the app ----------------------------------------------------------------------


async def test_the_console_refuses_to_be_built_without_authentication(flow: Flow) -> None:
    with pytest.raises(ConsoleError, match="needs authenticate="):
        flow_console(flow)
    with pytest.raises(ConsoleError, match="either authenticate= or allow_anonymous"):
        flow_console(flow, staff, allow_anonymous=True)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"authenticate": "ada"}, "authenticate must be callable"),
        ({"authenticate": staff, "redact": "x"}, "redact must be callable"),
        ({"authenticate": staff, "page_size": 0}, "page_size must be an int from 1"),
        ({"authenticate": staff, "page_size": True}, "page_size"),
        ({"authenticate": staff, "exact_counts_below": -1}, "exact_counts_below"),
        ({"authenticate": staff, "counts_ttl": -1}, "counts_ttl"),
        ({"authenticate": staff, "trusted_origins": ["ops.example.com"]}, "trusted_origins"),
        ({"authenticate": staff, "queue": object()}, "queue must be a forktex_core.queue.Queue"),
        ({"authenticate": staff, "failed_jobs_scan": -5}, "failed_jobs_scan"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ConsoleError, match=message):
            flow_console(flow, **kwargs)
    with pytest.raises(ConsoleError, match=r"needs a forktex_core\.flow\.Flow"):
        flow_console("postgresql://x", staff)  # type: ignore[arg-type]


def _routes(run_id: uuid.UUID) -> list[tuple[str, str]]:
    return [
        ("GET", "/"),
        ("GET", f"/runs/{run_id}"),
        ("GET", f"/runs/{run_id}/graph.svg"),
        ("GET", "/workers"),
        ("GET", "/queues"),
        ("GET", "/schedules"),
        ("GET", "/jobs"),
        ("GET", "/api/counts"),
        ("GET", f"/api/runs/{run_id}/state"),
        ("GET", "/static/console.css"),
        ("POST", f"/runs/{run_id}/signal"),
        ("POST", f"/runs/{run_id}/cancel"),
        ("POST", f"/runs/{run_id}/retry"),
        ("POST", f"/runs/{run_id}/fork"),
        ("POST", "/schedules/pause"),
        ("POST", "/schedules/trigger"),
    ]


async def test_every_route_refuses_without_the_hosts_login(flow: Flow, client: Client) -> None:
    run_id = await flow.start("jobs.wait", 1)
    app = flow_console(flow, staff)
    async with client(app) as http:
        page = (await http.get(f"/runs/{run_id}", headers=USER)).text  # a token and cookie
        form = {"csrf": token_in(page), "name": "go", "payload": "{}"}
        for method, path in _routes(run_id):
            response = await http.request(method, path, headers={"origin": ORIGIN}, data=form)
            assert response.status_code == 401, (method, path)
            assert "Authentication required" in response.text
            assert str(run_id) not in response.text
            assert response.headers["x-frame-options"] == "DENY"
    run = await flow.get_run(run_id)
    assert run.status == "pending" and await flow.signals(run_id) == []


async def test_authenticate_may_refuse_redirect_or_fail_closed(flow: Flow, client: Client) -> None:
    def forbidden(request: Request) -> None:
        raise HTTPException(403, "staff only <b>")

    def to_login(request: Request) -> RedirectResponse:
        return RedirectResponse("/login?next=ops", status_code=307)

    def broken(request: Request) -> str:
        raise RuntimeError("the identity provider is down")

    async def async_ok(request: Request) -> dict[str, str]:
        return {"name": "ada"}

    cases: list[tuple[Any, int, str]] = [
        (forbidden, 403, "staff only &lt;b&gt;"),
        (to_login, 307, ""),
        (broken, 500, "Authentication failed"),
        (lambda request: False, 401, "Authentication required"),
        (async_ok, 200, "Runs"),
    ]
    for authenticate, status, text in cases:
        async with client(flow_console(flow, authenticate)) as http:
            response = await http.get("/")
            assert response.status_code == status, authenticate
            assert text in response.text
            if status == 307:
                assert response.headers["location"] == "/login?next=ops"
            assert "identity provider" not in response.text


async def test_anonymous_only_when_asked_and_the_principal_reaches_hooks(
    flow: Flow, client: Client
) -> None:
    seen: list[Any] = []

    class Record(FlowHooks):
        async def authorize_cancel(self, run: RunInfo) -> None:
            seen.append(current_principal())

    flow.add_hooks(Record())
    first = await flow.start("jobs.wait", 1)
    second = await flow.start("jobs.wait", 2)
    for app, headers, run_id in (
        (flow_console(flow, allow_anonymous=True), {}, first),
        (flow_console(flow, lambda r: {"user": r.headers["x-user"]}), USER, second),
    ):
        async with client(app) as http:
            page = await http.get(f"/runs/{run_id}", headers=headers)
            response = await http.post(
                f"/runs/{run_id}/cancel",
                headers={**headers, "origin": ORIGIN},
                data={"csrf": token_in(page.text)},
            )
            assert response.status_code == 303
    assert seen == [ANONYMOUS, {"user": "ada"}]
    assert current_principal() is None


# -- CSRF ----------------------------------------------------------------------------------


async def test_cross_site_posts_are_refused_and_change_nothing(flow: Flow, client: Client) -> None:
    run_id = await flow.start("jobs.wait", 1)
    app = flow_console(flow, staff, trusted_origins=["https://ops.example.com"])
    async with client(app) as http:
        page = await http.get(f"/runs/{run_id}", headers=USER)
        token = token_in(page.text)
        cookie = http.cookies.get("forktex_console_csrf")
        assert cookie == token
        set_cookie = page.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        attempts: list[tuple[dict[str, str], dict[str, str], str]] = [
            (USER, {"csrf": token}, "names no Origin"),
            ({**USER, "origin": "https://evil.example"}, {"csrf": token}, "is not this console's"),
            ({**USER, "origin": "null"}, {"csrf": token}, "is not this console's"),
            ({**USER, "referer": "https://evil.example/x"}, {"csrf": token}, "not this console's"),
            (POST, {"name": "x"}, "token is missing"),
            (POST, {"csrf": "x" * 43}, "does not match"),
        ]
        for headers, form, why in attempts:
            response = await http.post(f"/runs/{run_id}/cancel", headers=headers, data=form)
            assert response.status_code == 403, (headers, form)
            assert why in html.unescape(response.text)
        # the cookie alone is not enough: a forged form without it
        http.cookies.clear()
        response = await http.post(f"/runs/{run_id}/cancel", headers=POST, data={"csrf": token})
        assert response.status_code == 403 and "token is missing" in response.text
        assert (await flow.get_run(run_id)).status == "pending"

        # the console's own form passes: same origin, a trusted one, or a same-origin Referer
        for headers in (
            POST,
            {**USER, "origin": "https://ops.example.com"},
            {**USER, "referer": f"{ORIGIN}/runs/{run_id}"},
        ):
            page = await http.get(f"/runs/{run_id}", headers=USER)
            response = await http.post(
                f"/runs/{run_id}/signal",
                headers=headers,
                data={"csrf": token_in(page.text), "name": "note", "payload": ""},
            )
            assert response.status_code == 303, headers
    assert [s.name for s in await flow.signals(run_id)] == ["note", "note", "note"]


# -- actions -------------------------------------------------------------------------------


async def test_signal_advances_a_manual_state_and_cancel_and_retry_work(
    flow: Flow, client: Client, h: Any
) -> None:
    app = flow_console(flow, staff)
    async with h.running(flow), client(app) as http:
        run_id = await waiting_review(flow)
        page = await http.get(f"/runs/{run_id}", headers=USER)
        assert f'action="/runs/{run_id}/signal"' in page.text
        response = await http.post(
            f"/runs/{run_id}/signal",
            headers=POST,
            data={"csrf": token_in(page.text), "name": "advance", "payload": '{"ok": true}'},
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/runs/{run_id}?done=signal"
        assert await flow.result(run_id, timeout=20) == {"n": 1, "password": "hunter2", "ok": True}
        done = await http.get(response.headers["location"], headers=USER)
        assert "Signal sent." in done.text and "succeeded" in done.text
        assert "Send signal" not in done.text  # no actions on a finished run

        waiting = await flow.start("jobs.wait", 2)
        page = await http.get(f"/runs/{waiting}", headers=USER)
        cancel = await http.post(
            f"/runs/{waiting}/cancel", headers=POST, data={"csrf": token_in(page.text)}
        )
        assert cancel.status_code == 303
        assert (await flow.get_run(waiting)).status == "cancelled"
        page = await http.get(f"/runs/{waiting}", headers=USER)
        assert "Retry run" in page.text
        retry = await http.post(
            f"/runs/{waiting}/retry", headers=POST, data={"csrf": token_in(page.text)}
        )
        assert retry.status_code == 303
        await wait_until(lambda: _status(flow, waiting, "waiting"))


async def test_a_denied_action_changes_nothing_and_says_why(flow: Flow, client: Client) -> None:
    class OnlyOps(FlowHooks):
        async def authorize_signal(self, run: RunInfo, name: str, payload: Any) -> None:
            if current_principal() != "ops":
                raise HookDenied(f"{current_principal()} may not signal {run.workflow}")

        async def authorize_cancel(self, run: RunInfo) -> None:
            raise PermissionError("runs are never cancelled from the console")

    flow.add_hooks(OnlyOps())
    run_id = await flow.start("jobs.wait", 1)
    app = flow_console(flow, staff)
    async with client(app) as http:
        page = await http.get(f"/runs/{run_id}", headers=USER)
        token = token_in(page.text)
        signal = await http.post(
            f"/runs/{run_id}/signal",
            headers=POST,
            data={"csrf": token, "name": "go", "payload": "1"},
        )
        assert signal.status_code == 403
        assert "denied: ada may not signal jobs.wait" in signal.text
        cancel = await http.post(f"/runs/{run_id}/cancel", headers=POST, data={"csrf": token})
        assert cancel.status_code == 403 and "never cancelled from the console" in cancel.text
        ops = {**POST, "x-user": "ops"}
        allowed = await http.post(
            f"/runs/{run_id}/signal",
            headers=ops,
            data={"csrf": token, "name": "go", "payload": "1"},
        )
        assert allowed.status_code == 303
    assert (await flow.get_run(run_id)).status == "pending"
    assert [(s.name, s.payload) for s in await flow.signals(run_id)] == [("go", 1)]


async def test_bad_actions_are_4xx_with_a_clear_message(flow: Flow, client: Client) -> None:
    run_id = await flow.start("jobs.wait", 1)
    finished = await flow.start("jobs.wait", 2)
    await flow.cancel(finished)
    app = flow_console(flow, staff)
    async with client(app) as http:
        token = token_in((await http.get(f"/runs/{run_id}", headers=USER)).text)
        ok = {"csrf": token, "name": "go"}
        cases: list[tuple[str, dict[str, str], int, str]] = [
            (f"/runs/{run_id}/signal", {**ok, "payload": "{not json"}, 400, "payload is not JSON"),
            (f"/runs/{run_id}/signal", {**ok, "name": "  "}, 400, "the signal needs a name"),
            (f"/runs/{run_id}/signal", {**ok, "name": "x" * 300}, 400, "signal name"),
            (f"/runs/{run_id}/signal", {**ok, "payload": "NaN"}, 400, "payload"),
            (f"/runs/{finished}/signal", ok, 409, "finished"),
            (f"/runs/{run_id}/retry", ok, 409, "only failed, dead or cancelled runs"),
            (f"/runs/{finished}/cancel", ok, 409, "cancelled"),
            (f"/runs/{uuid.uuid4()}/cancel", ok, 404, "There is no run"),
            ("/runs/not-a-uuid/cancel", ok, 400, "not a run id"),
        ]
        for path, form, status, message in cases:
            response = await http.post(path, headers=POST, data=form)
            assert response.status_code == status, (path, form, response.text[-500:])
            assert message in html.unescape(response.text), (path, form)
        as_json = await http.post(f"/runs/{run_id}/cancel", headers=POST, json={"csrf": token})
        assert as_json.status_code == 415 and "actions take a form" in as_json.text
        huge = await http.post(
            f"/runs/{run_id}/signal",
            headers=POST,
            data={**ok, "payload": json.dumps("x" * 300_000)},
        )
        assert huge.status_code == 413 and "larger than 256 KiB" in huge.text
        missing = await http.get("/runs/not-a-uuid", headers=USER)
        assert missing.status_code == 400
    assert (await flow.get_run(run_id)).status == "pending"
    assert await flow.signals(run_id) == []


# -- pages -----------------------------------------------------------------------------------


async def test_runs_page_filters_pages_and_refuses_bad_filters(flow: Flow, client: Client) -> None:
    waits = [
        await flow.start("jobs.wait", n, metadata={"org": "o1" if n % 2 else "o2"})
        for n in range(5)
    ]
    await flow.cancel(waits[0])
    app = flow_console(flow, staff, page_size=2)
    async with client(app) as http:
        first = await http.get("/", params={"workflow": "jobs.wait"}, headers=USER)
        assert first.status_code == 200
        ids = re.findall(r'data-run="([^"]+)"', first.text)
        assert ids == [str(waits[4]), str(waits[3])]
        older = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert older is not None
        second = await http.get(html.unescape(older.group(1)), headers=USER)
        assert re.findall(r'data-run="([^"]+)"', second.text) == [str(waits[2]), str(waits[1])]
        assert "« Newest" in second.text
        wanted = {"status": ["pending", "cancelled"], "metadata": "org=o2"}
        filtered = await http.get("/", headers=USER, params=wanted)
        assert re.findall(r'data-run="([^"]+)"', filtered.text) == [str(waits[4]), str(waits[2])]
        as_json = await http.get(
            "/",
            headers=USER,
            params={"metadata": '{"org": "o1"}', "workflow": "jobs.wait", "version": "1"},
        )
        assert re.findall(r'data-run="([^"]+)"', as_json.text) == [str(waits[3]), str(waits[1])]
        window = await http.get(
            "/", headers=USER, params={"from": "2000-01-01T00:00", "to": "2000-01-02T00:00+02:00"}
        )
        assert "No runs match." in window.text
        bad: list[tuple[dict[str, Any], str]] = [
            ({"version": "abc", "workflow": "w"}, "version must be a whole number"),
            ({"version": "1"}, "version filters need a workflow"),
            ({"status": "lost"}, "status must be one of"),
            ({"metadata": "{nope"}, "metadata is not a JSON object"),
            ({"metadata": "[1]"}, "key=value pairs"),
            ({"metadata": "org"}, "metadata takes key=value pairs"),
            ({"from": "yesterday"}, "from must be a date and time"),
            ({"workflow": "x" * 201}, "workflow must be text of at most 200"),
            ({"after": "garbage"}, "after must be a cursor"),
        ]
        for params, message in bad:
            response = await http.get("/", params=params, headers=USER)
            assert response.status_code == 400, params
            assert message in html.unescape(response.text), params


async def test_counts_run_state_graph_and_workers(flow: Flow, client: Client, h: Any) -> None:
    app = flow_console(flow, staff, counts_ttl=0)
    async with h.running(flow), client(app) as http:
        run_id = await waiting_review(flow)
        failed = await flow.start("jobs.fail", 3)
        await wait_until(lambda: _status(flow, failed, "failed"))
        counts = (await http.get("/api/counts", headers=USER)).json()
        assert counts == {
            "counts": {
                "pending": 0,
                "running": 0,
                "waiting": 1,
                "succeeded": 0,
                "failed": 1,
                "cancelled": 0,
                "dead": 0,
            },
            "exact": True,
        }
        state = (await http.get(f"/api/runs/{run_id}/state", headers=USER)).json()
        assert state["status"] == "waiting" and not state["finished"]
        assert (await http.get(f"/api/runs/{uuid.uuid4()}/state", headers=USER)).status_code == 404
        assert (await http.get("/api/runs/x/state", headers=USER)).status_code == 400

        page = await http.get(f"/runs/{run_id}", headers=USER)
        assert f'data-run-state="{html.escape(state["state"])}"' in page.text
        assert 'class="graph-picture"' in page.text
        for name in ("<td>received</td>", "check</td>", "<td>review</td>", "signal:advance"):
            assert name in page.text
        svg = await http.get(f"/runs/{run_id}/graph.svg", headers=USER)
        assert svg.headers["content-type"] == "image/svg+xml"
        assert '<g class="state current" data-state="review">' in svg.text
        assert '<g class="state visited" data-state="received">' in svg.text
        assert '<g class="state" data-state="approved">' in svg.text
        assert 'class="edge taken" data-from="received" data-to="review"' in svg.text
        not_graph = await http.get(f"/runs/{failed}/graph.svg", headers=USER)
        assert not_graph.status_code == 404 and "not a graph" in not_graph.text
        failed_page = await http.get(f"/runs/{failed}", headers=USER)
        assert "boom 3" in failed_page.text and "graph-picture" not in failed_page.text

        workers = await http.get("/workers", headers=USER)
        assert f'data-worker="{flow.worker_id}"' in workers.text
        assert "orders.review:1" in workers.text and "alive" in workers.text
        await wait_until(flow.leader)
        assert "leader" in (await http.get("/workers", headers=USER)).text
        assert (await http.get(f"/runs/{uuid.uuid4()}", headers=USER)).status_code == 404
        assert (await http.get("/jobs", headers=USER)).status_code == 404  # no queue given
        assert ">Jobs<" not in workers.text


async def test_estimated_counts_are_marked(flow: Flow, client: Client, pg: Any) -> None:
    import asyncpg

    for n in range(5):
        await flow.start("jobs.wait", n)
    await flow.cancel(await flow.start("jobs.wait", 8))
    await flow.cancel(await flow.start("jobs.wait", 9))
    conn = await asyncpg.connect(flow._dsn)
    try:
        await conn.execute("ANALYZE forktex_flow.runs")
    finally:
        await conn.close()
    app = flow_console(flow, staff, exact_counts_below=0)
    async with client(app) as http:
        counts = (await http.get("/api/counts", headers=USER)).json()
    assert counts["exact"] is False and counts["counts"]["pending"] == 5
    assert counts["counts"]["cancelled"] == 2  # ANALYZE read every row of so small a table


async def test_redaction_of_every_value_shown(flow: Flow, client: Client, h: Any) -> None:
    async with h.running(flow):
        run_id = await flow.start(
            "orders.review",
            {"n": 1, "password": "hunter2", "nested": [{"apiKey": "key-in-list"}]},
            metadata={"org": "o1", "session_id": "sess-secret"},
        )
        await wait_until(lambda: _status(flow, run_id, "waiting"))
    await flow.send_signal(run_id, "note", {"token": "signal-secret", "keep": "visible"})
    secrets = ("hunter2", "key-in-list", "sess-secret", "tok-step-secret", "signal-secret")
    async with client(flow_console(flow, staff)) as http:
        page = (await http.get(f"/runs/{run_id}", headers=USER)).text
        listing = (await http.get("/", headers=USER)).text
        for secret in secrets:
            assert secret not in page and secret not in listing
        assert REDACTED in page and "visible" in page and "o1" in listing

    def loud(value: Any) -> Any:
        out = redact_secrets(value)
        return {"shown": out} if isinstance(out, dict) else out

    def broken(value: Any) -> Any:
        raise RuntimeError("bug in the host's redactor")

    extra = SecretRedactor(extra=("org",))
    async with client(flow_console(flow, staff, redact=extra)) as http:
        page = (await http.get(f"/runs/{run_id}", headers=USER)).text
        assert "&quot;org&quot;: &quot;[redacted]&quot;" in page and "hunter2" not in page
    async with client(flow_console(flow, staff, redact=loud)) as http:
        assert "&quot;shown&quot;" in (await http.get(f"/runs/{run_id}", headers=USER)).text
    async with client(flow_console(flow, staff, redact=broken)) as http:
        page = (await http.get(f"/runs/{run_id}", headers=USER)).text
        assert "not shown: the redactor failed" in page
        for secret in secrets:
            assert secret not in page


def test_secret_redactor_matrix() -> None:
    secret = [
        "password",
        "db_password",
        "DB-PASSWORD",
        "apiKey",
        "api_key",
        "X-Api-Key",
        "client_secret",
        "refresh_token",
        "Authorization",
        "auth",
        "session_id",
        "privateKey",
        "signingKey",
        "key",
        "cookie",
        "pin",
        "ssn",
        "passwd",
    ]
    plain = [
        "name",
        "author",
        "monkey",
        "shipping",
        "classname",
        "keyboard",
        "pinned",
        "business",
        "tokenizer_name_len",
    ]
    for key in secret:
        assert redact_secrets.is_secret(key), key
        assert redact_secrets({key: "x"}) == {key: REDACTED}
    for key in plain[:-1]:
        assert not redact_secrets.is_secret(key), key
    assert redact_secrets.is_secret("tokenizer_name_len")  # over-redaction is the safe side
    nested = {"a": [{"b": {"password": {"deep": 1}}}], "ok": (1, 2)}
    assert redact_secrets(nested) == {"a": [{"b": {"password": REDACTED}}], "ok": [1, 2]}
    assert redact_secrets("password") == "password"  # only keys mark secrets
    with pytest.raises(ValueError, match="non-empty"):
        SecretRedactor(extra=("",))


async def test_values_are_escaped_never_markup(flow: Flow, client: Client) -> None:
    evil = "<script>alert(1)</script>"

    @flow.workflow(name="x<b>y</b>", version=1)
    async def wf(ctx: Any, value: Any) -> None:
        return None

    run_id = await flow.start("x<b>y</b>", {"name": evil}, metadata={"note": evil})
    await flow.send_signal(run_id, evil, {"v": evil})
    async with client(flow_console(flow, staff)) as http:
        for path in ("/", f"/runs/{run_id}", "/?workflow=" + evil):
            text = (await http.get(path, headers=USER)).text
            assert "<script>alert" not in text and "<b>y</b>" not in text
            assert "&lt;script&gt;" in text or "&lt;b&gt;" in text


async def test_headers_assets_and_mounting_under_a_path(flow: Flow, client: Client) -> None:
    run_id = await flow.start("jobs.wait", 1)
    host = Starlette(routes=[Mount("/ops", app=flow_console(flow, staff))])
    async with client(host) as http:
        page = await http.get("/ops/", headers=USER)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert 'href="/ops/static/console.css"' in page.text
        assert 'src="/ops/static/console.js"' in page.text
        assert f'href="/ops/runs/{run_id}"' in page.text
        assert "forktex_console_csrf" in page.headers["set-cookie"]
        assert "path=/ops/" in page.headers["set-cookie"].lower()
        css = await http.get("/ops/static/console.css", headers=USER)
        js = await http.get("/ops/static/console.js", headers=USER)
        assert css.status_code == js.status_code == 200 and "data-counts-url" in js.text
        assert "http://" not in css.text + js.text and "https://" not in css.text + js.text
        run = await http.get(f"/ops/runs/{run_id}", headers=USER)
        assert f'action="/ops/runs/{run_id}/signal"' in run.text
        response = await http.post(
            f"/ops/runs/{run_id}/cancel", headers=POST, data={"csrf": token_in(run.text)}
        )
        assert response.headers["location"] == f"/ops/runs/{run_id}?done=cancel"
        assert (await http.get("/ops/static/../_app.py", headers=USER)).status_code == 404
