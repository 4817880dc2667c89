# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The console in a real browser: Debian's chromium driven by Playwright, against the
console served by ``forktex-flow console`` and a worker in processes of their own, on real
Postgres. Screenshots are written to ``tmp_path`` (or to ``$FORKTEX_CONSOLE_SCREENSHOTS``).

Skipped, with the reason, where no chromium or Playwright is installed (``.ci/run``
installs both).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forktex_core.flow import Flow

HERE = Path(__file__).resolve().parent
APP = HERE / "console_app.py"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.async_api import Browser, Page, async_playwright
except ModuleNotFoundError:  # pragma: no cover - skipped below
    async_playwright = None

pytestmark = [
    pytest.mark.skipif(async_playwright is None, reason="playwright is not installed"),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason="no chromium browser (apt-get install chromium; .ci/run does)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go."""
    wanted = os.environ.get("FORKTEX_CONSOLE_SCREENSHOTS")
    out = Path(wanted) if wanted else tmp_path / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def served(pg: Any, tmp_path: Path) -> Iterator[str]:
    """A worker process and ``forktex-flow console`` serving console_app's flow; its URL."""
    port = _free_port()
    env = {**os.environ, "CONSOLE_TEST_URL": pg.url, "TMPDIR": str(tmp_path)}
    cli = [sys.executable, "-m", "forktex_core.flow._cli"]
    logs = [open(tmp_path / name, "wb") for name in ("worker.log", "console.log")]
    procs = [
        subprocess.Popen([*cli, "worker", f"{APP}:flow"], env=env, stdout=logs[0],
                         stderr=subprocess.STDOUT),
        subprocess.Popen([*cli, "console", f"{APP}:flow", "--auth", "console_app:allow_ada",
                          "--port", str(port)], env=env, cwd=HERE, stdout=logs[1],
                         stderr=subprocess.STDOUT),
    ]  # fmt: skip
    url = f"http://localhost:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                pass
            assert procs[1].poll() is None, (tmp_path / "console.log").read_text()
            __import__("time").sleep(0.1)
        else:
            raise AssertionError("the console did not start within 20 s")
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


@pytest.fixture
async def browser(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Browser]:
    """Debian's chromium under Playwright. Its temporary files go to a short directory of
    its own (chromium's socket paths must stay under 108 bytes), removed afterwards."""
    assert async_playwright is not None
    with tempfile.TemporaryDirectory(prefix="fxc-") as scratch:
        monkeypatch.setenv("TMPDIR", scratch)
        async with async_playwright() as pw:
            launched = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
                env={**os.environ, "TMPDIR": scratch},
            )
            try:
                yield launched
            finally:
                await launched.close()


async def _signed_in(browser: Browser, url: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_cookies([{"name": "user", "value": "ada", "url": url}])
    context.set_default_timeout(60_000)
    page = await context.new_page()
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    return page


async def _status(flow: Flow, run_id: uuid.UUID) -> str:
    return (await flow.get_run(run_id)).status.value


async def test_operate_runs_in_the_browser(
    flow: Flow, served: str, browser: Browser, shots: Path, h: Any
) -> None:
    reviews = [await flow.start("orders.review", {"n": n, "password": "hunter2"}) for n in range(3)]
    failed = [await flow.start("jobs.fail", n) for n in range(2)]
    waiting = await flow.start("jobs.wait", 1)
    for run_id in reviews:
        await h.wait_until(lambda r=run_id: _waiting(flow, r))
    for run_id in failed:
        await h.wait_until(lambda r=run_id: _is(flow, r, "failed"))

    # no login, no console
    anonymous = await (await browser.new_context()).new_page()
    response = await anonymous.goto(served + "/")
    assert response is not None and response.status == 401
    assert "Authentication required" in await anonymous.content()
    await anonymous.screenshot(path=str(shots / "0-refused.png"))

    page = await _signed_in(browser, served)
    await page.goto(served + "/")
    # live counts arrive from the page script
    # a function, not an expression: Playwright evaluates an expression with eval(), which
    # the console's Content-Security-Policy (script-src 'self') rightly refuses
    await page.wait_for_function(
        "() => document.querySelector('[data-count=\"failed\"]')?.textContent === '2'",
        timeout=90_000,  # a hang bound: a loaded machine may be slow, never this slow
    )
    assert await page.locator("table.runs tbody tr").count() == 6
    await page.screenshot(path=str(shots / "1-runs.png"), full_page=True)

    # filter by workflow, then by status
    assert await _filter(page, "**/?workflow=orders.review*", workflow="orders.review") == 3
    await page.check("input[name=status][value=failed]")
    assert await _filter(page, "**status=failed*", workflow="") == 2
    rows = page.locator("table.runs tbody tr")
    assert {await rows.nth(i).get_attribute("data-run") for i in range(2)} == set(map(str, failed))
    await page.screenshot(path=str(shots / "2-filtered.png"), full_page=True)

    # open a review: its timeline and its graph picture
    target = reviews[0]
    await page.goto(served + "/")
    await page.click(f'tr[data-run="{target}"] a')
    await page.wait_for_url(f"**/runs/{target}")
    timeline = page.locator("table.timeline tbody tr")
    names = [await timeline.nth(i).locator("td").nth(1).inner_text()
             for i in range(await timeline.count())]  # fmt: skip
    assert names[0] == "received" and names[1].endswith("check") and names[2] == "review"
    assert names[3] == "signal:advance"
    assert "hunter2" not in await page.content()
    picture = page.locator("img.graph-picture")
    await picture.wait_for()
    assert await picture.evaluate("img => img.complete && img.naturalWidth > 100")
    svg = await page.evaluate(
        "fetch(document.querySelector('img.graph-picture').src).then(r => r.text())"
    )
    assert '<g class="state current" data-state="review">' in svg
    await page.screenshot(path=str(shots / "3-run.png"), full_page=True)

    # a denied action changes nothing and says why
    await page.click("form.cancel button")
    await page.wait_for_selector(".notice.error")
    assert "denied: orders under review cannot be cancelled" in await page.inner_text(
        ".notice.error"
    )
    assert await _status(flow, target) == "waiting"
    await page.screenshot(path=str(shots / "4-denied.png"), full_page=True)

    # advance the manual state with a payload and watch the run finish
    await page.goto(f"{served}/runs/{target}")
    await page.fill("textarea[name=payload]", '{"ok": true}')
    await page.click("form.signal button")
    await page.wait_for_selector("text=Signal sent.")
    await page.wait_for_selector("dl.facts .badge.status-succeeded", timeout=30_000)
    assert await flow.result(target, timeout=10) == {"n": 0, "password": "hunter2", "ok": True}
    svg = await page.evaluate(
        "fetch(document.querySelector('img.graph-picture').src).then(r => r.text())"
    )
    assert '<g class="state current" data-state="approved">' in svg
    await page.screenshot(path=str(shots / "5-finished.png"), full_page=True)

    # a form on another origin posting to the console is refused (cookies are sent: same site)
    evil = f"http://localhost:{_free_port()}"
    forged = (
        f'<form method="post" action="{served}/runs/{waiting}/cancel">'
        '<input name="csrf" value="guessed"><button>win a prize</button></form>'
    )
    await page.route(
        f"{evil}/**", lambda route: route.fulfill(body=forged, content_type="text/html")
    )
    await page.goto(evil + "/prize")
    async with page.expect_navigation():
        await page.click("button")
    refusal = await page.inner_text(".notice.error")
    assert f"cross-site request refused: origin '{evil}' is not this console's" in refusal
    await page.screenshot(path=str(shots / "6-csrf-refused.png"), full_page=True)
    assert await _status(flow, waiting) == "pending" or await _status(flow, waiting) == "waiting"
    assert len(await asyncio.to_thread(lambda: list(shots.glob("*.png")))) == 7


async def _filter(page: Page, url: str, **fields: str) -> int:
    """Fill the runs page's filter ``fields``, submit, wait for ``url``: the rows shown."""
    for name, value in fields.items():
        await page.fill(f"input[name={name}]", value)
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(url)
    return await page.locator("table.runs tbody tr").count()


async def _waiting(flow: Flow, run_id: uuid.UUID) -> bool:
    steps = await flow.history(run_id)
    return (await _status(flow, run_id)) == "waiting" and any(s.kind == "signal" for s in steps)


async def _is(flow: Flow, run_id: uuid.UUID, status: str) -> bool:
    return await _status(flow, run_id) == status


async def test_queues_and_forks_in_the_browser(
    flow: Flow, served: str, browser: Browser, shots: Path, h: Any
) -> None:
    flow.queue("orders.mail", concurrency=1)  # as the served flow declares it
    mail = [await flow.start("jobs.wait", n, queue="orders.mail") for n in range(3)]
    other = await flow.start("jobs.wait", 9)
    await h.wait_until(lambda: _held(flow, "orders.mail", 1))
    failed = await flow.start("orders.total", {"n": 7, "amount": "42 EUR"}, version=1)
    await h.wait_until(lambda: _is(flow, failed, "failed"))
    page = await _signed_in(browser, served)

    # the queues page: the queue with its depth and the slot its running run holds
    await page.goto(served + "/")
    await page.click("header nav a:text('Queues')")
    await page.wait_for_url("**/queues")
    row = page.locator('tr[data-queue="orders.mail"]')
    assert await row.locator("td[data-depth]").inner_text() == "2"
    assert await row.locator("td[data-active]").inner_text() == "1 of 1"
    assert "1 at once" in await row.inner_text()
    await page.screenshot(path=str(shots / "q1-queues.png"), full_page=True)

    # its runs: the runs page filtered by queue
    await row.locator("a").click()
    await page.wait_for_url("**/?queue=orders.mail")
    rows = page.locator("table.runs tbody tr")
    assert await rows.count() == 3
    got = {await rows.nth(i).get_attribute("data-run") for i in range(3)}
    assert got == set(map(str, mail)) and str(other) not in got
    assert await page.input_value("input[name=queue]") == "orders.mail"
    assert await _filter(page, "**workflow=orders.total*", queue="", workflow="orders.total") == 1
    assert await _filter(page, "**&queue=orders.mail&*", queue="orders.mail") == 1
    await page.wait_for_selector("text=No runs match.")  # the one row says so
    await page.screenshot(path=str(shots / "q2-runs-by-queue.png"), full_page=True)

    # fork the failed run from its failed step: on its own version the authoriser refuses
    await page.goto(f"{served}/runs/{failed}")
    assert await page.input_value("form.fork input[name=from_step]") == "1"
    await page.click("form.fork button")
    await page.wait_for_selector(".notice.error")
    assert "denied: fork orders.total onto the fixed version 2" in await page.inner_text(
        ".notice.error"
    )
    assert len(await flow.list_runs(workflow="orders.total")) == 1
    await page.screenshot(path=str(shots / "q3-fork-denied.png"), full_page=True)

    # on the fixed version it is allowed: the new run's page follows it until it finishes
    await page.goto(f"{served}/runs/{failed}")
    await page.select_option("form.fork select[name=version]", "2")
    await page.click("form.fork button")
    await page.wait_for_selector("text=Fork started")
    fork = uuid.UUID(page.url.rsplit("/", 1)[1].split("?")[0])
    assert fork != failed
    await page.wait_for_selector("dl.facts .badge.status-succeeded", timeout=30_000)
    assert await flow.result(fork, timeout=10) == 42
    link = page.locator(".forked-from a")
    assert await link.get_attribute("href") == f"/runs/{failed}"
    await page.screenshot(path=str(shots / "q4-forked.png"), full_page=True)
    await link.click()
    await page.wait_for_url(f"**/runs/{failed}")
    assert await page.locator(f'ul.forks a[href="/runs/{fork}"]').count() == 1
    assert len(await asyncio.to_thread(lambda: list(shots.glob("q*.png")))) == 4


async def _held(flow: Flow, queue: str, active: int) -> bool:
    (info,) = await flow.queues(queue)
    return info.active == active


async def test_schedules_in_the_browser(
    flow: Flow, served: str, browser: Browser, shots: Path, h: Any
) -> None:
    # yearly: no tick fires while the test runs, only what the buttons start
    total = {"n": 4, "amount": "5 EUR"}
    await flow.create_schedule(
        "orders.yearly", "orders.total", "@yearly", tz="Europe/Vienna", input=total, version=2
    )
    await flow.create_schedule("audit.yearly", "jobs.fail", "@yearly", input=1)
    page = await _signed_in(browser, served)

    # the schedules page, from the navigation
    await page.goto(served + "/")
    await page.click("header nav a:text('Schedules')")
    await page.wait_for_url("**/schedules")
    row = page.locator('tr[data-schedule="orders.yearly"]')
    assert await row.get_attribute("data-paused") == "false"
    text = await row.inner_text()
    assert "@yearly" in text and "Europe/Vienna" in text and "latest, grace 1 min 0 s" in text
    next_tick = (await flow.get_schedule("orders.yearly")).next_tick  # new year in Vienna, in UTC
    shown = await row.locator("td[data-next-tick]").inner_text()
    assert "active" in text and shown == next_tick.strftime("%Y-%m-%d %H:%M:%S")
    assert shown.endswith("-12-31 23:00:00")
    await page.screenshot(path=str(shots / "s1-schedules.png"), full_page=True)

    # pause (after confirming), then resume: the page and flow agree each time
    await row.locator("form.schedule-pause button").click()
    await page.wait_for_url("**/schedules?done=pause")
    await page.wait_for_selector("text=Schedule paused")
    assert await row.get_attribute("data-paused") == "true"
    assert "paused" in await row.locator("td.state").inner_text()
    assert (await flow.get_schedule("orders.yearly")).paused
    await page.screenshot(path=str(shots / "s2-paused.png"), full_page=True)
    await row.locator("form.schedule-resume button").click()
    await page.wait_for_url("**/schedules?done=resume")
    assert await row.get_attribute("data-paused") == "false"
    assert not (await flow.get_schedule("orders.yearly")).paused

    # trigger now: the new run's page follows it until it finishes
    await row.locator("form.schedule-trigger button").click()
    await page.wait_for_selector("text=Schedule triggered")
    run_id = uuid.UUID(page.url.rsplit("/", 1)[1].split("?")[0])
    await page.wait_for_selector("dl.facts .badge.status-succeeded", timeout=30_000)
    assert await flow.result(run_id, timeout=10) == 5
    assert await page.inner_text("dl.facts a.schedule") == "orders.yearly"
    await page.screenshot(path=str(shots / "s3-triggered.png"), full_page=True)

    # its runs, from the schedules page: the triggered one only
    await page.click("dl.facts a.schedule")
    await page.wait_for_url("**/schedules")
    await row.locator("a[rel=related]").click()
    await page.wait_for_url("**/?metadata=*")
    rows = page.locator("table.runs tbody tr")
    assert await rows.count() == 1 and await rows.get_attribute("data-run") == str(run_id)

    # a denied trigger changes nothing and says why
    await page.goto(served + "/schedules")
    audit = page.locator('tr[data-schedule="audit.yearly"]')
    await audit.locator("form.schedule-trigger button").click()
    await page.wait_for_selector(".notice.error")
    assert "denied: audit schedules run on their ticks only" in await page.inner_text(
        ".notice.error"
    )
    assert await flow.list_runs(metadata={"schedule": "audit.yearly"}) == []
    await page.screenshot(path=str(shots / "s4-trigger-denied.png"), full_page=True)
    assert len(await asyncio.to_thread(lambda: list(shots.glob("s*.png")))) == 4
