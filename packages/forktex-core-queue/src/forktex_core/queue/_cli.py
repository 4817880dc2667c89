# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The ``forktex-queue`` command: run a worker, or check a queue's health from a probe.

Example::

    forktex-queue worker app.jobs:queue --concurrency 20
    forktex-queue health app.jobs:queue --max-age 60     # exit 0 if a worker is alive
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._errors import InvalidEntrypoint, QueueError, show
from ._queue import Queue


def load_queue(entrypoint: str) -> Queue:
    """Import ``module:attr`` or ``path/to/file.py:attr``; ``attr`` is a :class:`Queue` or a
    function returning one.

    Example::

        queue = load_queue("app.jobs:queue")
    """
    if not isinstance(entrypoint, str) or entrypoint.count(":") != 1:
        raise InvalidEntrypoint(
            f"entrypoint {show(entrypoint)}: expected 'module:attribute' or 'file.py:attribute'"
        )
    shown = show(entrypoint)
    target, attr = entrypoint.split(":")
    if not target or not attr:
        raise InvalidEntrypoint(f"entrypoint {shown}: both sides of ':' are needed")
    if not attr.isidentifier():
        raise InvalidEntrypoint(f"entrypoint {shown}: {show(attr)} is not an attribute name")
    try:
        if target.endswith(".py"):
            try:
                path = Path(target).resolve()
                is_file = path.is_file()
            except (OSError, ValueError) as exc:
                raise InvalidEntrypoint(f"entrypoint {shown}: bad file path ({exc})") from None
            if not is_file:
                raise InvalidEntrypoint(f"entrypoint {shown}: no file {show(str(path))}")
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise InvalidEntrypoint(f"entrypoint {shown}: cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if not all(part.isidentifier() for part in target.split(".")):
                raise InvalidEntrypoint(
                    f"entrypoint {shown}: {show(target)} is not a module name like "
                    "'app.jobs' (or a path ending in .py)"
                )
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(target)
    except ImportError as exc:
        raise InvalidEntrypoint(f"entrypoint {shown}: cannot import it: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise InvalidEntrypoint(
            f"entrypoint {shown}: module {module.__name__!r} has no attribute {attr!r}"
        ) from None
    if not isinstance(obj, Queue) and callable(obj):
        obj = obj()
    if not isinstance(obj, Queue):
        raise InvalidEntrypoint(
            f"entrypoint {shown} is a {type(obj).__name__}; expected a Queue or a "
            "function returning one"
        )
    return obj


async def _health(queue: Queue, max_age: float) -> int:
    try:
        health = await queue.health()
    finally:
        await queue.close()
    last = health.last_heartbeat
    fresh = last is not None and time.time() - last.timestamp() <= max_age
    print(
        json.dumps(
            {
                "queue": health.queue,
                "ok": fresh,
                "queued": health.queued,
                "deferred": health.deferred,
                "in_progress": health.in_progress,
                "alive_workers": health.alive_workers,
                "last_heartbeat": None if last is None else last.isoformat(),
            }
        )
    )
    return 0 if fresh else 1


async def _worker(queue: Queue, args: argparse.Namespace) -> None:
    try:
        await queue.run_worker(
            concurrency=args.concurrency,
            burst=args.burst,
            poll_interval=args.poll_interval,
            grace_period=args.grace_period,
            lease=args.lease,
            heartbeat=args.heartbeat,
            max_outage=args.max_outage,
        )
    finally:
        await queue.close()


_DESCRIPTION = """\
Run background-job workers for a forktex_core.queue Queue, or check from a probe that one is
alive. ENTRYPOINT names the Queue: 'package.module:queue', 'path/to/file.py:queue', or a
function returning a Queue ('app.jobs:make_queue').
"""

_EPILOG = """\
examples:
  forktex-queue worker app.jobs:queue --concurrency 20
  forktex-queue worker path/to/jobs.py:make_queue --burst
  forktex-queue health app.jobs:queue --max-age 60     # exit 0 if a worker is alive
"""


_ENTRYPOINT_HELP = "the Queue: module:queue, path/to/file.py:queue, or a function returning one"


def _seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``forktex-queue`` argument parser (every option documented in ``--help``).

    Example::

        build_parser().parse_args(["worker", "app.jobs:queue", "--burst"])
    """
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="forktex-queue", description=_DESCRIPTION, epilog=_EPILOG, formatter_class=fmt
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    w = sub.add_parser(
        "worker",
        help="process jobs until SIGTERM/SIGINT (or, with --burst, until the queue is empty)",
        description="Process the queue's jobs until SIGTERM/SIGINT. On a signal the worker "
        "stops taking jobs, lets running ones finish for up to --grace-period seconds, then "
        "cancels and requeues the rest. Exit status: 0 when stopped, 2 when Redis is "
        "unreachable at start or for longer than --max-outage, or on a bad entrypoint.",
    )
    w.add_argument("entrypoint", metavar="ENTRYPOINT", help=_ENTRYPOINT_HELP)
    w.add_argument(
        "--concurrency", type=int, default=10, metavar="N",
        help="jobs this worker runs at once (default: 10)",
    )  # fmt: skip
    w.add_argument(
        "--burst", action="store_true",
        help="exit once the queue, deferred jobs included, is empty",
    )  # fmt: skip
    w.add_argument(
        "--poll-interval", type=_seconds, default=0.5, metavar="SECONDS",
        help="how often to look for due jobs (default: 0.5)",
    )  # fmt: skip
    w.add_argument(
        "--grace-period", type=_seconds, default=30.0, metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long running jobs may finish before they are cancelled "
        "and requeued (default: 30)",
    )  # fmt: skip
    w.add_argument(
        "--lease", type=_seconds, default=30.0, metavar="SECONDS",
        help="lease on a running job, renewed every lease/3; if the worker dies the job runs "
        "again elsewhere after this long (default: 30, minimum 1)",
    )  # fmt: skip
    w.add_argument(
        "--heartbeat", type=_seconds, default=10.0, metavar="SECONDS",
        help="seconds between health records read by 'forktex-queue health' (default: 10)",
    )  # fmt: skip
    w.add_argument(
        "--max-outage", type=_seconds, default=300.0, metavar="SECONDS",
        help="how long Redis may be unreachable while the worker keeps retrying with backoff; "
        "then it exits with status 2 (default: 300). Unreachable at start: exits at once",
    )  # fmt: skip
    w.add_argument(
        "--log-level", default="INFO", type=str.upper, metavar="LEVEL",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: INFO)",
    )  # fmt: skip
    h = sub.add_parser(
        "health",
        help="exit 0 if a worker heartbeated within --max-age seconds, else 1",
        description="Print the queue's counts and worker heartbeats as JSON; exit 0 if a "
        "worker heartbeated within --max-age seconds, 1 if not, 2 on an error.",
    )
    h.add_argument("entrypoint", metavar="ENTRYPOINT", help=_ENTRYPOINT_HELP)
    h.add_argument(
        "--max-age", type=_seconds, default=60.0, metavar="SECONDS",
        help="the newest heartbeat may be at most this old (default: 60)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forktex-queue`` command.

    Example::

        forktex-queue worker app.jobs:queue --concurrency 20
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        queue = load_queue(args.entrypoint)
        if args.command == "health":
            return asyncio.run(_health(queue, args.max_age))
        logging.basicConfig(
            level=args.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        asyncio.run(_worker(queue, args))
        return 0
    except QueueError as exc:
        print(f"forktex-queue: {' '.join(str(exc).split())}", file=sys.stderr)  # one line
        return 2


if __name__ == "__main__":
    sys.exit(main())
