# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The workflow of the tracing crash test, and a worker that exports its spans to a file.

The test defines the workflow in its own process with :func:`define`. Started as
``python -m forktex_core.flow._cli worker tests/flow_otel_app.py:flow`` with
``FLOW_TEST_URL`` and ``FLOW_TEST_DIR`` set (test code, not library code, reads them), it
installs the OpenTelemetry SDK with an exporter that appends each span to
``<dir>/spans.jsonl`` as it ends, so what ended before a SIGKILL survives it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

from forktex_core.flow import Flow, FlowContext


def define(flow: Flow, workdir: Path) -> None:
    """``otel.crash``: step ``first``, then step ``second``, which announces
    ``holding-<pid>`` and waits for ``release`` in ``workdir``."""

    @flow.step(name="first")
    async def first(ctx: FlowContext) -> int:
        return 1

    @flow.step(name="second")
    async def second(ctx: FlowContext) -> int:
        (workdir / f"holding-{os.getpid()}").touch()
        while not (workdir / "release").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return 2

    @flow.workflow(name="otel.crash", version=1)
    async def crash(ctx: FlowContext) -> int:
        return await first(ctx) + await second(ctx)


if "FLOW_TEST_URL" in os.environ:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    DIR = Path(os.environ["FLOW_TEST_DIR"])

    class _FileExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            with open(DIR / "spans.jsonl", "a", encoding="utf-8") as out:
                for s in spans:
                    record = {
                        "name": s.name,
                        "trace": s.context.trace_id,
                        "span": s.context.span_id,
                        "parent": s.parent.span_id if s.parent else None,
                        "pid": os.getpid(),
                    }
                    out.write(json.dumps(record) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_FileExporter()))
    trace.set_tracer_provider(provider)

    flow = Flow(
        database_url=os.environ["FLOW_TEST_URL"],
        lease=1.5,
        heartbeat=0.3,
        reaper_interval=0.2,
        poll_interval=0.5,
        shutdown_grace=0.5,
    )
    define(flow, DIR)
