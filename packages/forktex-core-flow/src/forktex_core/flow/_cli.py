# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow`` command line: ``forktex-flow worker ENTRYPOINT [--concurrency N]``.

``ENTRYPOINT`` names the :class:`Flow` object: ``package.module:flow`` or
``path/to/file.py:flow``. SIGTERM/SIGINT stop the worker gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import signal
import sys
from pathlib import Path

from ._flow import Flow


def load_flow(entrypoint: str) -> Flow:
    """Import ``module:attr`` or ``file.py:attr`` and return the :class:`Flow` it names."""
    target, sep, attr = entrypoint.rpartition(":")
    if not sep or not target or not attr:
        raise SystemExit(f"ENTRYPOINT must look like 'package.module:flow', got {entrypoint!r}")
    if target.endswith(".py"):
        path = Path(target).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot import {target!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    obj = getattr(module, attr, None)
    if not isinstance(obj, Flow):
        raise SystemExit(f"{entrypoint!r} is not a forktex_core.flow.Flow (got {type(obj)})")
    return obj


async def _worker(flow: Flow, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, flow.stop)
    try:
        await flow.run_worker(concurrency=concurrency)
    finally:
        await flow.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``forktex-flow`` console script."""
    parser = argparse.ArgumentParser(prog="forktex-flow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run a worker for the Flow named by ENTRYPOINT")
    w.add_argument("entrypoint", help="package.module:flow or path/to/file.py:flow")
    w.add_argument("--concurrency", type=int, default=16)
    w.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    flow = load_flow(args.entrypoint)
    asyncio.run(_worker(flow, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
