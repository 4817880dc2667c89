# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A 1-second schedule run by worker subprocesses in the schedule failover test.

Started as ``python -m forktex_core.flow._cli worker tests/flow_schedule_app.py:flow``; the
test passes the database URL in the environment (test code, not library code, reads it).
"""

from __future__ import annotations

import os

from forktex_core.flow import Flow, FlowContext

flow = Flow(
    database_url=os.environ["FLOW_TEST_URL"],
    lease=1.5,
    heartbeat=0.3,
    reaper_interval=0.2,
    poll_interval=0.5,
    shutdown_grace=0.5,
)


@flow.schedule("* * * * * *", name="tick.every_second", input={"from": "schedule"})
@flow.workflow(name="tick.job", version=1)
async def job(ctx: FlowContext, payload: dict[str, str]) -> str:
    return payload["from"]
