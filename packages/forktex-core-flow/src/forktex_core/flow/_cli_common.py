# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What every ``forktex-flow`` command shares: loading the app, opening the database,
the usage error, and plain-text output."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import FlowError
from ._flow import Flow, with_database
from ._records import RunInfo

APP_ENV = "FORKTEX_FLOW_APP"
URL_ENV = "FORKTEX_FLOW_DATABASE_URL"


class CliError(Exception):
    """A usage or configuration problem, reported as ``forktex-flow: error: ...`` (exit 2)."""


def load_flow(entrypoint: str) -> Flow:
    """Import ``module:attr`` or ``file.py:attr`` and return the :class:`Flow` it names."""
    target, sep, attr = entrypoint.rpartition(":")
    if not sep or not target or not attr:
        raise CliError(
            f"ENTRYPOINT must look like 'package.module:flow' or 'path/file.py:flow', "
            f"got {entrypoint!r}"
        )
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            if not path.is_file():
                raise CliError(f"cannot import {target!r}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise CliError(f"cannot import {target!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except CliError:
        raise
    except Exception as exc:
        raise CliError(f"cannot import {target!r}: {type(exc).__name__}: {exc}") from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise CliError(f"module {target!r} has no attribute {attr!r}")
    if not isinstance(obj, Flow):
        raise CliError(f"{entrypoint!r} is not a forktex_core.flow.Flow (got {type(obj).__name__})")
    return obj


def open_flow(args: argparse.Namespace, *, need_app: bool = False) -> Flow:
    app = getattr(args, "app", None) or os.environ.get(APP_ENV)
    url = getattr(args, "database_url", None) or os.environ.get(URL_ENV)
    flow = load_flow(app) if app else None
    if flow is None and need_app:
        raise CliError(f"this command needs the application: pass --app ENTRYPOINT (or {APP_ENV})")
    if url:
        try:
            # the app's definitions (if any) on the given database
            flow = Flow(database_url=url) if flow is None else with_database(flow, url)
        except FlowError as exc:
            raise CliError(str(exc)) from None
    if flow is None:
        raise CliError(
            f"no database: pass --database-url URL or --app ENTRYPOINT (or set {URL_ENV})"
        )
    return flow


async def connect(flow: Flow) -> None:
    # An unreachable database raises FlowUnavailable naming it (password masked), which
    # main() prints as one line, exit status 2.
    await flow.connect()


# -- output ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def when(value: Any) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def note(run: RunInfo) -> str:
    if run.waiting_for_worker:
        return f"waiting for a worker with {run.workflow} version {run.version}"
    if isinstance(run.error, dict):
        return short(f"{run.error.get('type', 'Error')}: {run.error.get('message', '')}")
    return ""
