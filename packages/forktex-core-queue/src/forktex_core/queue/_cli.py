# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-queue``: run a worker, or check a queue's health from a probe.

forktex-queue worker app.jobs:queue --concurrency 20
forktex-queue worker path/to/jobs.py:make_queue --burst
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

from ._errors import InvalidEntrypoint, QueueError
from ._queue import Queue


def load_queue(entrypoint: str) -> Queue:
    """Import ``module:attr`` or ``path/to/file.py:attr``; ``attr`` is a :class:`Queue` or a
    function returning one.

    Example::

        queue = load_queue("app.jobs:queue")
    """
    if not isinstance(entrypoint, str) or entrypoint.count(":") != 1:
        raise InvalidEntrypoint(
            f"entrypoint {entrypoint!r}: expected 'module:attribute' or 'file.py:attribute'"
        )
    target, attr = entrypoint.split(":")
    if not target or not attr:
        raise InvalidEntrypoint(f"entrypoint {entrypoint!r}: both sides of ':' are needed")
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            if not path.is_file():
                raise InvalidEntrypoint(f"entrypoint {entrypoint!r}: no file {str(path)!r}")
            sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise InvalidEntrypoint(f"entrypoint {entrypoint!r}: cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(target)
    except ImportError as exc:
        raise InvalidEntrypoint(f"entrypoint {entrypoint!r}: cannot import it: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise InvalidEntrypoint(
            f"entrypoint {entrypoint!r}: module {module.__name__!r} has no attribute {attr!r}"
        ) from None
    if not isinstance(obj, Queue) and callable(obj):
        obj = obj()
    if not isinstance(obj, Queue):
        raise InvalidEntrypoint(
            f"entrypoint {entrypoint!r} is a {type(obj).__name__}; expected a Queue or a "
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
        )
    finally:
        await queue.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forktex-queue`` command.

    Example::

        forktex-queue worker app.jobs:queue --concurrency 20
    """
    parser = argparse.ArgumentParser(prog="forktex-queue", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="process jobs until SIGTERM/SIGINT")
    w.add_argument("entrypoint", help="module:queue or path/to/file.py:queue (or a factory)")
    w.add_argument("--concurrency", type=int, default=10)
    w.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    w.add_argument("--poll-interval", type=float, default=0.5)
    w.add_argument("--grace-period", type=float, default=30.0)
    w.add_argument("--lease", type=float, default=30.0)
    w.add_argument("--heartbeat", type=float, default=10.0)
    w.add_argument("--log-level", default="INFO")
    h = sub.add_parser("health", help="exit 0 if a worker heartbeated within --max-age s")
    h.add_argument("entrypoint")
    h.add_argument("--max-age", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        queue = load_queue(args.entrypoint)
        if args.command == "health":
            return asyncio.run(_health(queue, args.max_age))
        logging.basicConfig(
            level=args.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        asyncio.run(_worker(queue, args))
        return 0
    except QueueError as exc:
        print(f"forktex-queue: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
