# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.console — the operator console of forktex-core in the browser.

An ASGI app (Starlette) a host service mounts under any path: runs with filters and keyset
pages, a run's timeline, signals, graph picture and lineage, flow's flow-control queues and
schedules, workers and the leader, a queue's jobs; actions (signal, cancel, retry, fork of a
run; pause, resume, trigger of a schedule) authorised by the flow's ``FlowHooks`` and
protected against cross-site requests. It has no users of its
own: the host passes ``authenticate``.

Example::

    from forktex_core.console import flow_console

    app.mount("/ops", flow_console(flow, authenticate=require_staff, queue=queue))

or standalone: ``forktex-flow console myapp.flows:flow --auth myapp.auth:console_user``.
"""

from ._app import flow_console
from ._auth import ANONYMOUS, current_principal
from ._errors import ConsoleError
from ._redact import REDACTED, SecretRedactor, redact_secrets
from ._serve import serve_console

__all__ = [
    "ANONYMOUS",
    "REDACTED",
    "ConsoleError",
    "SecretRedactor",
    "current_principal",
    "flow_console",
    "redact_secrets",
    "serve_console",
]
