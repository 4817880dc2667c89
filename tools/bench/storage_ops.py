# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""storage: put/get of 1 KB and 1 MB objects, StorageClient vs raw miniopy-async, same server.

The S3 server comes from ``FORKTEX_BENCH_S3_URL`` / ``FORKTEX_TEST_S3_URL`` or the embedded
moto server of forktex-core-testing. Both sides use the same endpoint, bucket and credentials;
ours adds key validation, content-type sniffing and error mapping on top.

Tracing: ``get`` of a 1 KB object on the filesystem backend (the fastest call, so where a
fixed cost shows most), client CPU per call with the tracing API (no SDK configured) vs with
the module's span calls replaced by no-ops, interleaved in one process.

    uv run python tools/bench/storage_ops.py --quick
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main
from miniopy_async.api import Minio
from opentelemetry import trace

from forktex_core.storage import Credentials, StorageClient, _telemetry
from forktex_core.testing import resolve_s3

#: What the tracing calls are stubbed out with: the no-op scope, without starting a span.
_NO_SPAN = nullcontext(trace.INVALID_SPAN)


def _timed(op: Callable[[int], Awaitable[object]], n: int) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        start = time.perf_counter()
        for i in range(n):
            await op(i)
        return (time.perf_counter() - start) / n * 1e6

    return measure


async def _tracing_row(n: int, runs: int) -> Row:
    """A filesystem ``get`` with the tracing API (no SDK) vs its span calls stubbed out."""
    operation = _telemetry.operation
    with tempfile.TemporaryDirectory(prefix="forktex-bench-") as tmp:
        fs = StorageClient(endpoint=f"file://{tmp}", bucket="bench")
        await fs.ensure_bucket()
        await fs.put("report.txt", b"x" * 1024)

        def cpu(stub: bool) -> Callable[[], Awaitable[float]]:
            async def measure() -> float:
                if stub:
                    _telemetry.operation = lambda *args: _NO_SPAN  # type: ignore[assignment]
                try:
                    start = time.process_time()
                    for _ in range(n):
                        await fs.get("report.txt")
                    return (time.process_time() - start) / n * 1e6
                finally:
                    _telemetry.operation = operation  # type: ignore[misc]

            return measure

        await cpu(False)()
        ours, base = await interleave(cpu(False), cpu(True), runs)
        await fs.aclose()
    return Row("storage", "get 1 KB, filesystem, tracing API (no SDK)", ours, "µs CPU/op",
               "span calls stubbed out", base, runs)  # fmt: skip


async def run(quick: bool) -> list[Row]:
    env = os.environ.get("FORKTEX_BENCH_S3_URL") or os.environ.get("FORKTEX_TEST_S3_URL")
    (host, port, secure, access, secret, region, _source), stop = resolve_s3(env)
    bucket = f"ftx-bench-{uuid.uuid4().hex[:10]}"
    scheme = "https" if secure else "http"
    ours = StorageClient(
        endpoint=f"{scheme}://{host}:{port}",
        credentials=Credentials(access, secret),
        bucket=bucket,
        region=region,
    )
    raw = Minio(f"{host}:{port}", access, secret, secure=secure, region=region)
    n, runs = (20, 5) if quick else (100, 9)
    rows: list[Row] = []
    try:
        await ours.ensure_bucket()
        for label, size in (("1 KB", 1024), ("1 MB", 1024 * 1024)):
            body = b"%PDF-1.7\n" + b"x" * (size - 9)

            async def ours_put(i: int, body: bytes = body, label: str = label) -> object:
                return await ours.put(f"ours/{label}/{i % 4}.pdf", body)

            async def raw_put(i: int, body: bytes = body, label: str = label) -> object:
                return await raw.put_object(
                    bucket,
                    f"raw/{label}/{i % 4}.pdf",
                    io.BytesIO(body),
                    len(body),
                    content_type="application/pdf",
                )

            async def ours_get(i: int, label: str = label) -> object:
                return await ours.get(f"ours/{label}/{i % 4}.pdf")

            async def raw_get(i: int, label: str = label) -> object:
                resp = await raw.get_object(bucket, f"raw/{label}/{i % 4}.pdf")
                try:
                    return await resp.read()
                finally:
                    resp.close()

            for op, a, b in (("put", ours_put, raw_put), ("get", ours_get, raw_get)):
                o, r = await interleave(_timed(a, n), _timed(b, n), runs)
                rows.append(
                    Row("storage", f"{op} {label}", o, "µs/op", "raw miniopy-async", r, runs)
                )
        rows.append(await _tracing_row(500 if quick else 5000, runs))
    finally:
        await ours.delete_many([o.key async for o in ours.list()])
        await raw.remove_bucket(bucket)
        await ours.aclose()
        await raw.close_session()  # type: ignore[no-untyped-call]
        stop()
    return rows


if __name__ == "__main__":
    main(run)
