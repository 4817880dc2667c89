# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex-flow`` operator CLI: runs list/show/cancel/retry, schedules, graph export,
errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from forktex_core.flow import Flow, RunStatus
from forktex_core.flow._cli import main

APP = """
from forktex_core.flow import Flow, FlowContext, Graph

flow = Flow(database_url={url!r}, lease=1.5, heartbeat=0.3, reaper_interval=0.2,
            poll_interval=0.5, shutdown_grace=0.5)


@flow.step
async def check(ctx: FlowContext, payload: dict) -> dict:
    if payload.get("fail"):
        raise ValueError("check failed")
    return payload


g = Graph(name="cli.review", version=1, initial="intake")


@g.state("intake")
async def intake(ctx: FlowContext, payload: dict) -> dict:
    return await check(ctx, payload)


@g.state("review", manual=True)
async def review(ctx: FlowContext, payload: dict) -> dict:
    return payload


@g.state("done", terminal=True)
async def done(ctx: FlowContext, payload: dict) -> dict:
    return payload


g.transition("intake", "review")
g.transition("review", "done")
flow.register_graph(g)
"""


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def app(pg: Any, tmp_path: Path) -> str:
    path = tmp_path / "cli_app.py"
    path.write_text(APP.format(url=pg.url))
    return f"{path}:flow"


async def test_runs_and_graph_commands(
    app: str, pg: Any, make_flow: Any, h: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from forktex_core.flow._cli import load_flow

    flow: Flow = load_flow(app)
    try:
        good = await flow.start("cli.review", input={"n": 1}, metadata={"org_id": "o1"})
        bad = await flow.start("cli.review", input={"fail": True})
        pending = await flow.start("cli.review", input={"n": 3})

        # no worker yet: the runs wait for a worker with that version
        code, out, _ = await cli(capsys, "runs", "list", "--app", app)
        assert code == 0
        assert "waiting for a worker with cli.review version 1" in out
        assert out.splitlines()[0].split() == [
            "ID",
            "WORKFLOW",
            "VER",
            "STATUS",
            "CREATED",
            "METADATA",
            "NOTE",
        ]
        await cli(capsys, "runs", "cancel", str(pending), "--database-url", pg.url)

        async with h.running(flow):

            async def settled() -> bool:
                return (await flow.get_run(good)).status is RunStatus.WAITING and (
                    await flow.get_run(bad)
                ).status is RunStatus.FAILED

            await h.wait_until(settled)
            code, out, _ = await cli(
                capsys, "runs", "list", "--database-url", pg.url, "--metadata", "org_id=o1"
            )
            assert code == 0 and str(good) in out and str(bad) not in out
            code, out, _ = await cli(capsys, "runs", "list", "--app", app, "--status", "failed")
            assert str(bad) in out and "ValueError" in out and str(good) not in out

            code, out, _ = await cli(capsys, "runs", "show", str(good), "--app", app)
            assert code == 0
            assert "cli.review version 1" in out and "intake -> review" in out
            assert "signal:advance" in out and "waiting" in out

            code, out, _ = await cli(
                capsys,
                "graph",
                "export",
                "cli.review",
                "--app",
                app,
                "--format",
                "dot",
                "--run",
                str(good),
            )
            assert code == 0
            assert '"review" [label="review\\n(manual)", fillcolor="#ffd27f", penwidth=3];' in out
            assert '"intake" -> "review" [penwidth=2.5' in out

            await flow.send_signal(good, "advance", payload={"ok": True})
            assert await flow.result(good, timeout=30) == {"n": 1, "ok": True}

            code, out, _ = await cli(capsys, "runs", "retry", str(bad), "--app", app)
            assert code == 0 and "queued for retry" in out
            code, out, err = await cli(capsys, "runs", "retry", str(good), "--app", app)
            assert code == 2 and "only failed, dead or cancelled" in err
        code, out, _ = await cli(capsys, "runs", "show", str(pending), "--app", app)
        assert "cancelled" in out
    finally:
        await flow.close()

    code, out, _ = await cli(capsys, "graph", "export", "cli.review", "--app", app)
    assert code == 0 and out.startswith("stateDiagram-v2") and "s1 --> s2" in out
    target = Path(app.rsplit(":", 1)[0]).with_name("g.dot")
    code, out, _ = await cli(
        capsys, "graph", "export", "cli.review", "--app", app, "--format", "dot", "-o", str(target)
    )
    assert code == 0 and target.read_text().startswith('digraph "cli.review v1"')
    code, out, _ = await cli(capsys, "graph", "list", "--app", app)
    assert "cli.review" in out
    code, _, err = await cli(capsys, "graph", "export", "nope", "--app", app)
    assert code == 2 and "unknown workflow 'nope'" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["worker"],
        ["audit"],
        ["runs"],
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "cancel"],
        ["runs", "retry"],
        ["graph"],
        ["graph", "export"],
        ["graph", "list"],
        ["schedules"],
        ["schedules", "list"],
        ["schedules", "pause"],
        ["schedules", "resume"],
        ["schedules", "trigger"],
    ],
)
def test_help_on_every_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: forktex-flow")


def test_clear_errors_for_bad_entrypoints_and_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORKTEX_FLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("FORKTEX_FLOW_APP", raising=False)
    notflow = tmp_path / "notflow.py"
    notflow.write_text("flow = 42\n")
    broken = tmp_path / "broken.py"
    broken.write_text("import does_not_exist_anywhere\n")
    cases = [
        (["audit", "no_colon"], "must look like 'package.module:flow'"),
        (["audit", "no_such_pkg.flows:flow"], "cannot import 'no_such_pkg.flows'"),
        (["audit", f"{tmp_path / 'missing.py'}:flow"], "no such file"),
        (["audit", f"{broken}:flow"], "ModuleNotFoundError"),
        (["audit", f"{notflow}:flow"], "is not a forktex_core.flow.Flow (got int)"),
        (["audit", f"{notflow}:other"], "has no attribute 'other'"),
        (["runs", "list"], "no database: pass --database-url"),
        (["runs", "list", "--database-url", "mysql://u:p@h/db"], "scheme 'mysql' is not supported"),
        (
            ["runs", "show", "not-a-uuid", "--database-url", "postgresql://u@127.0.0.1:1/x"],
            "cannot connect",
        ),
        (
            ["runs", "list", "--database-url", "postgresql://app:s3cret@127.0.0.1:1/x"],
            "cannot connect to PostgreSQL at 127.0.0.1:1 (database 'x', user 'app')",
        ),
        (["graph", "export", "x"], "needs the application"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("forktex-flow: error: ") and fragment in err, (argv, err)
        assert "s3cret" not in err


SCHEDULE_APP = """
from forktex_core.flow import Flow, FlowContext

flow = Flow(database_url={url!r})


@flow.schedule("0 6 * * mon-fri", tz="Europe/Vienna", name="cli.morning", catch_up="skip")
@flow.workflow(name="cli.report")
async def report(ctx: FlowContext) -> str:
    return "done"
"""


async def test_schedules_commands(
    pg: Any,
    tmp_path: Path,
    make_flow: Any,
    h: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORKTEX_FLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("FORKTEX_FLOW_APP", raising=False)
    path = tmp_path / "schedule_app.py"
    path.write_text(SCHEDULE_APP.format(url=pg.url))
    app = f"{path}:flow"
    # --app: the schedules the app declares are stored and listed
    code, out, _ = await cli(capsys, "schedules", "list", "--app", app)
    assert code == 0, out
    assert "cli.morning" in out and "0 6 * * mon-fri" in out and "Europe/Vienna" in out
    assert "skip" in out and "active" in out and "code" in out and "1 schedule(s)" in out
    code, out, _ = await cli(capsys, "schedules", "pause", "cli.morning", "--database-url", pg.url)
    assert (code, out.strip()) == (0, "schedule cli.morning paused")
    code, out, _ = await cli(capsys, "schedules", "list", "--database-url", pg.url)
    assert "paused" in out
    code, out, _ = await cli(capsys, "schedules", "resume", "cli.morning", "--database-url", pg.url)
    assert code == 0 and out.startswith("schedule cli.morning resumed; next tick ")
    code, out, _ = await cli(
        capsys, "schedules", "trigger", "cli.morning", "--database-url", pg.url
    )
    assert code == 0 and out.strip().endswith("started by schedule cli.morning")
    run_id = out.split()[1]
    flow = make_flow()

    @flow.workflow(name="cli.report")
    async def report(ctx: Any) -> str:
        return "done"

    async with h.running(flow):
        assert await flow.result(run_id, timeout=20) == "done"
    # unknown schedules and missing names are clear errors
    for action in ("pause", "resume", "trigger"):
        code, _, err = await cli(capsys, "schedules", action, "ghost", "--database-url", pg.url)
        assert code == 2 and "no schedule named 'ghost'" in err
    with pytest.raises(SystemExit) as exc:
        main(["schedules", "pause"])
    assert exc.value.code == 2
    code, _, err = await cli(capsys, "schedules", "list")
    assert code == 2 and "no database" in err
