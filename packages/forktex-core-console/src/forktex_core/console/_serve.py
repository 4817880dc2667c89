# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow console``: serve the console of a Flow with uvicorn (standalone use)."""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import os
import sys
from collections.abc import Callable
from typing import Any

from forktex_core.flow import Flow

from ._app import flow_console
from ._errors import ConsoleError

LOOPBACK = ("localhost",)


def _loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_callable(entrypoint: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (the ``--auth`` of ``forktex-flow console``).

    Example::

        authenticate = load_callable("myapp.auth:console_user")
    """
    target, sep, attr = entrypoint.rpartition(":")
    if not sep or not target or not attr:
        raise ConsoleError(f"--auth must look like 'package.module:function', got {entrypoint!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(target)
    except Exception as exc:
        raise ConsoleError(f"cannot import {target!r}: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConsoleError(f"{entrypoint!r} is not a function (request -> principal)")
    return fn  # type: ignore[no-any-return]


def serve_console(
    flow: Flow,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    auth: str | None = None,
    no_auth: bool = False,
    root_path: str = "",
) -> None:
    """Serve ``flow``'s console until interrupted (what ``forktex-flow console`` runs).

    ``auth`` names the host's ``authenticate`` (``package.module:function``);
    ``no_auth=True`` serves it without a login, and only on a loopback address.

    Example::

        serve_console(flow, port=8080, auth="myapp.auth:console_user")
    """
    import uvicorn

    if auth is None and not no_auth:
        raise ConsoleError(
            "the console needs a login: pass --auth package.module:function (request -> "
            "principal, None refuses), or --no-auth to serve it without one on this machine only"
        )
    if auth is not None and no_auth:
        raise ConsoleError("pass either --auth or --no-auth, not both")
    if no_auth and not _loopback(host):
        raise ConsoleError(
            f"--no-auth serves the console to anyone who reaches it: only on a loopback "
            f"address (127.0.0.1, ::1, localhost), not {host!r}; use --auth instead"
        )
    if not 0 < port < 65536:
        raise ConsoleError(f"--port must be from 1 to 65535, got {port}")
    app = flow_console(
        flow,
        None if auth is None else load_callable(auth),
        allow_anonymous=no_auth,
    )
    config = uvicorn.Config(
        app, host=host, port=port, root_path=root_path, log_level="info", proxy_headers=False
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        try:
            try:
                await asyncio.wait_for(flow.connect(), 15)
            except Exception as exc:
                raise ConsoleError(
                    f"cannot connect to the flow's database: {type(exc).__name__}: {exc}"
                ) from None
            print(f"forktex-flow console on http://{shown}:{port}{root_path}/ (Ctrl-C stops it)")
            await server.serve()
        finally:
            await flow.close()

    shown = f"[{host}]" if ":" in host else host
    asyncio.run(run())
