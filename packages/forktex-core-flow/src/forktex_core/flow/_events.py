# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Observer events of a run's execution, built from the claimed run and stored JSON text."""

from __future__ import annotations

from typing import Any

from ._claim import ClaimedRun
from ._hooks import RunEvent, StepEvent
from ._serde import Serializer


def _metadata(run: ClaimedRun, serializer: Serializer) -> dict[str, Any]:
    if not run.metadata:
        return {}
    value = serializer.loads(run.metadata)
    return value if isinstance(value, dict) else {}


def step_event(
    run: ClaimedRun,
    serializer: Serializer,
    seq: int,
    name: str,
    kind: str,
    status: str,
    attempt: int,
    output: str | None,
    error: str | None,
    duration: float,
) -> StepEvent:
    """The :class:`StepEvent` of checkpoint ``seq`` just written (JSON decoded).

    Example::

        event = step_event(run, serializer, 0, "charge", "step", "completed", 1, "1", None, 0.2)
    """
    loads = serializer.loads
    return StepEvent(
        run_id=run.id,
        workflow=run.workflow,
        version=run.version,
        seq=seq,
        name=name,
        kind=kind,
        status=status,
        attempt=attempt,
        output=None if output is None else loads(output),
        error=None if error is None else loads(error),
        duration=duration,
        metadata=_metadata(run, serializer),
    )


def run_event(
    run: ClaimedRun, serializer: Serializer, status: str, output: Any, error: str | None
) -> RunEvent:
    """The :class:`RunEvent` of a run that just succeeded or failed.

    Example::

        event = run_event(run, serializer, "succeeded", {"ok": True}, None)
    """
    return RunEvent(
        run_id=run.id,
        workflow=run.workflow,
        version=run.version,
        status=status,
        output=output,
        error=None if error is None else serializer.loads(error),
        metadata=_metadata(run, serializer),
    )
