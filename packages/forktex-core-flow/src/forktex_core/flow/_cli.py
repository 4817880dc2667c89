# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow``: the operator command line of forktex_core.flow.

Commands::

    forktex-flow worker ENTRYPOINT [--concurrency N]        run a worker (SIGTERM stops it)
    forktex-flow audit ENTRYPOINT [--manifest PATH] [--update]   the versioning gate (CI)
    forktex-flow runs list|show|cancel|retry|fork ...       inspect and control runs
    forktex-flow queues [--app EP | --database-url URL]     queues: depth, slots, rate window
    forktex-flow schedules list|pause|resume|trigger ...    cron schedules: ticks, control
    forktex-flow graph export NAME --format mermaid|dot     draw a graph (or a run of it)
    forktex-flow console [ENTRYPOINT] [--database-url URL] [--auth F | --no-auth]
                                                            the operator console in a browser

``ENTRYPOINT`` names the :class:`Flow` object: ``package.module:flow`` or
``path/to/file.py:flow``. ``runs``, ``schedules`` and ``graph`` take it as ``--app``
(``schedules`` then also lists the schedules the app declares); ``runs`` may instead
take ``--database-url``. As a convenience for operators (this program, not the library,
reads them) ``FORKTEX_FLOW_APP`` and ``FORKTEX_FLOW_DATABASE_URL`` provide the defaults.
Exit status: 0 success, 1 audit failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from ._audit import DEFAULT_MANIFEST, FAILING, audit
from ._cli_common import (
    APP_ENV,
    URL_ENV,
    CliError,
    connect,
    load_flow,
    note,
    open_flow,
    short,
    table,
    when,
)
from ._cli_queues import cmd_queues, cmd_schedules
from ._errors import FlowError
from ._flow import Flow
from ._pictures import FORMATS

# -- commands -------------------------------------------------------------------------------


async def _worker(flow: Flow, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, flow.stop)
    try:
        await flow.run_worker(concurrency=concurrency)
    finally:
        await flow.close()


def cmd_worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    flow = load_flow(args.entrypoint)
    asyncio.run(_worker(flow, args.concurrency))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    flow = load_flow(args.entrypoint)
    from ._errors import VersionGateError

    try:
        report = audit(flow, args.manifest, update=args.update)
    except VersionGateError as exc:
        raise CliError(str(exc)) from None
    rows = [(e.status.upper(), e.workflow, e.version, e.message) for e in report.entries]
    print(table(("STATUS", "WORKFLOW", "VERSION", "DETAIL"), rows))
    if report.updated:
        print(f"\nmanifest {report.manifest} updated ({len(report.entries)} workflow versions)")
        return 0
    failing = [e for e in report.entries if e.status in FAILING]
    if failing:
        print(f"\naudit FAILED: {len(failing)} workflow version(s) need attention", file=sys.stderr)
        for e in failing:
            print(f"  {e.message}", file=sys.stderr)
        return 1
    print(f"\naudit passed ({len(report.entries)} workflow versions)")
    return 0


def metadata_filter(pairs: list[str] | None) -> dict[str, Any] | None:
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--metadata takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def run_id_arg(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(f"RUN_ID must be a UUID, got {text!r}") from None


async def _runs(args: argparse.Namespace) -> int:
    flow = open_flow(args)
    try:
        await connect(flow)
        if args.runs_command == "list":
            runs = await flow.list_runs(
                workflow=args.workflow,
                status=args.status,
                metadata=metadata_filter(args.metadata),
                limit=args.limit,
                queue=args.queue,
            )
            rows = [
                (
                    r.id,
                    r.workflow,
                    r.version,
                    r.status.value,
                    when(r.created_at),
                    short(r.metadata, 40) if r.metadata else "",
                    note(r),
                )
                for r in runs
            ]
            headers = ("ID", "WORKFLOW", "VER", "STATUS", "CREATED", "METADATA", "NOTE")
            print(table(headers, rows))
            print(f"\n{len(runs)} run(s)")
            return 0
        rid = run_id_arg(args.run_id)
        if args.runs_command == "cancel":
            await flow.cancel(rid)
            print(f"run {rid} cancelled")
            return 0
        if args.runs_command == "retry":
            await flow.retry(rid)
            print(f"run {rid} queued for retry")
            return 0
        if args.runs_command == "fork":
            new_id = await flow.fork(rid, from_step=args.from_step, version=args.version)
            print(f"run {new_id} forked from run {rid} at step {args.from_step}")
            return 0
        run = await flow.get_run(rid)
        fields = [
            ("id", run.id),
            ("workflow", f"{run.workflow} version {run.version}"),
            ("status", run.status.value + (f" ({note(run)})" if note(run) else "")),
            ("input", short(run.input, 100)),
            ("output", short(run.output, 100) if run.output is not None else ""),
            ("error", short(run.error, 100) if run.error is not None else ""),
            ("metadata", short(run.metadata, 100)),
            ("worker", run.worker or ""),
            ("created", when(run.created_at)),
            ("finished", when(run.finished_at)),
        ]
        width = max(len(k) for k, _ in fields)
        for key, value in fields:
            print(f"{key.ljust(width)}  {value}")
        if run.parent_id is not None:
            print(f"{'parent'.ljust(width)}  {run.parent_id}")
        kids = await flow.children(rid)
        if kids:
            shown = ", ".join(f"{k.id} ({k.status})" for k in kids[:5])
            more = f" and {len(kids) - 5} more" if len(kids) > 5 else ""
            print(f"{'children'.ljust(width)}  {len(kids)}: {shown}{more}")
        history = await flow.history(rid)
        states = [s.name for s in history if s.kind == "state"]
        if states:
            print(f"{'states'.ljust(width)}  {' -> '.join(states)}")
        steps: list[tuple[object, ...]] = [
            (
                s.seq,
                s.name,
                s.kind,
                s.status,
                s.attempt,
                "" if s.duration is None else f"{s.duration * 1000:.1f} ms",
                short(s.error if s.error is not None else s.output, 50),
            )
            for s in history
        ]
        print()
        print(table(("SEQ", "NAME", "KIND", "STATUS", "ATTEMPT", "TOOK", "RESULT"), steps))
        return 0
    finally:
        await flow.close()


def cmd_runs(args: argparse.Namespace) -> int:
    return asyncio.run(_runs(args))


async def _graph(args: argparse.Namespace) -> int:
    flow = open_flow(args, need_app=True)
    try:
        if args.graph_command == "list":
            rows = [(n, ", ".join(map(str, v))) for n, v in flow.graphs.items()]
            print(table(("GRAPH", "VERSIONS"), rows))
            return 0
        graph = flow.graph(args.name, args.version)
        if args.run is None:
            text = graph.to_dot() if args.format == "dot" else graph.to_mermaid()
        else:
            await connect(flow)
            text = await flow.picture(run_id_arg(args.run), format=args.format)
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, text, encoding="utf-8")
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    finally:
        await flow.close()


def cmd_graph(args: argparse.Namespace) -> int:
    return asyncio.run(_graph(args))


CONSOLE_MISSING = (
    "the console is a distribution of its own: pip install forktex-core-console "
    "(or forktex-core[console])"
)


def cmd_console(args: argparse.Namespace) -> int:
    try:
        from forktex_core.console import ConsoleError, serve_console
    except ModuleNotFoundError as exc:  # forktex-core-console (or its Starlette) is missing
        if (exc.name or "").split(".")[0] in ("forktex_core", "starlette", "uvicorn"):
            raise CliError(CONSOLE_MISSING) from None
        raise
    if args.entrypoint is not None:
        args.app = args.entrypoint
    flow = open_flow(args)
    try:
        serve_console(
            flow,
            host=args.host,
            port=args.port,
            auth=args.auth,
            no_auth=args.no_auth,
            root_path=args.root_path,
        )
    except ConsoleError as exc:
        raise CliError(str(exc)) from None
    return 0


def _db_options(p: argparse.ArgumentParser, *, url: bool = True) -> None:
    p.add_argument(
        "--app",
        metavar="ENTRYPOINT",
        help=f"the application's Flow, package.module:flow or file.py:flow (default ${APP_ENV})",
    )
    if url:
        p.add_argument(
            "--database-url",
            metavar="URL",
            help=f"database to read (default: the app's Flow, or ${URL_ENV})",
        )


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``forktex-flow`` (every command has ``--help``)."""
    root = argparse.ArgumentParser(
        prog="forktex-flow",
        description=(
            "The operator command line of forktex_core.flow: run workers, gate workflow "
            "versions in CI, inspect and control runs, draw graphs."
        ),
        epilog="Run 'forktex-flow COMMAND --help' for the options of a command.",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("worker", help="run a worker for the Flow named by ENTRYPOINT")
    w.add_argument("entrypoint", metavar="ENTRYPOINT", help="package.module:flow or file.py:flow")
    w.add_argument("--concurrency", type=int, default=16, help="runs at a time (default 16)")
    w.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    w.set_defaults(func=cmd_worker)

    a = sub.add_parser(
        "audit",
        help="fail when a workflow body changed without a version bump",
        description=(
            "Compare the AST fingerprints of every workflow and graph registered on "
            "ENTRYPOINT with the committed manifest. Exits 1 naming each workflow and "
            "version whose body changed without a version= bump; comments, docstrings "
            "and formatting never count, and new `if ctx.patched(...)` branches pass."
        ),
    )
    a.add_argument("entrypoint", metavar="ENTRYPOINT", help="package.module:flow or file.py:flow")
    a.add_argument(
        "--manifest", default=DEFAULT_MANIFEST, help=f"manifest path (default {DEFAULT_MANIFEST})"
    )
    a.add_argument(
        "--update", action="store_true", help="rewrite the manifest (after a conscious bump)"
    )
    a.set_defaults(func=cmd_audit)

    r = sub.add_parser("runs", help="list, show, cancel or retry runs")
    rs = r.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    rl = rs.add_parser("list", help="list runs, newest first")
    _db_options(rl)
    rl.add_argument("--workflow", help="only this workflow")
    rl.add_argument("--status", action="append", help="only this status (repeatable)")
    rl.add_argument(
        "--metadata", action="append", metavar="KEY=VALUE", help="metadata filter (repeatable)"
    )
    rl.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    rl.add_argument("--queue", help="only runs of this queue")
    for action, text in (
        ("show", "show a run, its history and graph states"),
        ("cancel", "cancel a run"),
        ("retry", "retry a failed, dead or cancelled run"),
    ):
        rp = rs.add_parser(action, help=text)
        rp.add_argument("run_id", metavar="RUN_ID")
        _db_options(rp)
    rf = rs.add_parser("fork", help="a new run from a finished run's results before a step")
    rf.add_argument("run_id", metavar="RUN_ID")
    rf.add_argument(
        "--from-step", type=int, required=True, metavar="N", help="execute from position N"
    )
    rf.add_argument("--version", type=int, help="on this registered version (needs --app)")
    _db_options(rf)
    r.set_defaults(func=cmd_runs)

    q = sub.add_parser("queues", help="list queues: limits, depth, active runs, rate window")
    q.add_argument("name", nargs="?", metavar="NAME", help="only this queue")
    _db_options(q)
    q.set_defaults(func=cmd_queues)

    sc = sub.add_parser("schedules", help="list, pause, resume or trigger cron schedules")
    ss = sc.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    sl = ss.add_parser("list", help="list schedules: cron, time zone, next and last tick, state")
    _db_options(sl)
    for action, text in (
        ("pause", "stop firing a schedule's ticks"),
        ("resume", "fire a paused schedule's ticks again, from the next one"),
        ("trigger", "start a run of a schedule now"),
    ):
        sp = ss.add_parser(action, help=text)
        sp.add_argument("name", metavar="NAME", help="schedule name")
        _db_options(sp)
    sc.set_defaults(func=cmd_schedules)

    g = sub.add_parser("graph", help="export graph pictures")
    gs = g.add_subparsers(dest="graph_command", required=True, metavar="ACTION")
    ge = gs.add_parser("export", help="draw a graph as Mermaid or Graphviz DOT")
    ge.add_argument("name", metavar="NAME", help="graph name")
    ge.add_argument("--format", choices=FORMATS, default="mermaid", help="default mermaid")
    ge.add_argument("--version", type=int, help="graph version (default newest)")
    ge.add_argument("--run", metavar="RUN_ID", help="mark this run's current and visited states")
    ge.add_argument("--output", "-o", help="write to this file instead of stdout")
    _db_options(ge)
    gl = gs.add_parser("list", help="list the graphs registered by the app")
    _db_options(gl, url=False)
    g.set_defaults(func=cmd_graph)

    c = sub.add_parser(
        "console",
        help="serve the operator console (forktex-core-console) in a browser",
        description=(
            "Serve the console of the Flow named by ENTRYPOINT (its graphs are drawn and its "
            "FlowHooks authorise actions), or of the database at --database-url. A login is "
            "required: --auth names the host's function of the request returning the signed-in "
            "principal; --no-auth serves it without one, on a loopback address only."
        ),
    )
    c.add_argument("entrypoint", nargs="?", metavar="ENTRYPOINT", help="package.module:flow")
    _db_options(c)
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    c.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    c.add_argument("--auth", metavar="MODULE:FUNCTION", help="the host's authenticate(request)")
    c.add_argument("--no-auth", action="store_true", help="no login (loopback addresses only)")
    c.add_argument("--root-path", default="", help="path prefix behind a reverse proxy")
    c.set_defaults(func=cmd_console)
    return root


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forktex-flow`` console script."""
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except CliError as exc:
        print(f"forktex-flow: error: {exc}", file=sys.stderr)
        return 2
    except FlowError as exc:
        print(f"forktex-flow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
