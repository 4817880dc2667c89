# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tracing: one span per storage call with the bucket, backend and server (never a key, body,
metadata value or URL), failures by type, no span for bad input, and nothing at all without
an SDK."""

from __future__ import annotations

import secrets
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from forktex_core.storage import (
    Credentials,
    InvalidArgument,
    ObjectNotFound,
    PublicAccess,
    StorageClient,
    StorageUnavailable,
)
from forktex_core.testing import FaultProxy, S3Service, Telemetry, run_python

test_tracer = trace.get_tracer("forktex_core.storage.tests")


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _expected(storage: StorageClient, forktex_s3: S3Service | None) -> dict[str, Any]:
    if forktex_s3 is None:
        return {"forktex.storage.backend": "filesystem", "aws.s3.bucket": storage.bucket}
    host, _, port = forktex_s3.endpoint.rpartition(":")
    return {
        "forktex.storage.backend": "s3",
        "aws.s3.bucket": storage.bucket,
        "server.address": host,
        "server.port": int(port),
    }


async def test_every_call_has_its_span_and_nothing_secret(
    storage: StorageClient, forktex_otel: Telemetry, request: pytest.FixtureRequest
) -> None:
    s3 = request.getfixturevalue("forktex_s3") if "s3" in request.node.callspec.id else None
    base = _expected(storage, s3)
    secret = f"s3cret-{secrets.token_hex(4)}"
    key = f"private/{secret}/report.txt"
    body = f"body {secret}".encode()
    with test_tracer.start_as_current_span("request"):
        await storage.put(key, body, metadata={"owner": secret})
        assert await storage.get(key) == body
        assert (await storage.stat(key)).size == len(body)
        assert await storage.exists(key) is True
        assert await storage.exists(key + ".missing") is False
        await storage.copy(key, key + ".copy")
        assert len([o async for o in storage.list(prefix=f"private/{secret}/")]) == 2
        assert b"".join([c async for c in storage.stream(key, chunk_size=4)]) == body
        url = await storage.signed_url(key, access=PublicAccess.read, ttl_seconds=60)
        await storage.signed_post(key, ttl_seconds=60, content_type="text/plain")
        await storage.delete(key + ".copy")
        await storage.delete_many([key])

    request_span = forktex_otel.span("request")
    expected = {
        "storage.put": (SpanKind.CLIENT, {"forktex.storage.object.size": len(body)}),
        "storage.get": (SpanKind.CLIENT, {"forktex.storage.object.size": len(body)}),
        "storage.stat": (SpanKind.CLIENT, {}),
        "storage.copy": (SpanKind.CLIENT, {}),
        "storage.list": (SpanKind.INTERNAL, {"forktex.storage.objects": 2}),
        "storage.stream": (SpanKind.CLIENT, {"forktex.storage.object.size": len(body)}),
        "storage.signed_url": (SpanKind.INTERNAL, {"forktex.storage.access": "read"}),
        "storage.signed_post": (SpanKind.INTERNAL, {}),
        "storage.delete": (SpanKind.CLIENT, {}),
        "storage.delete_many": (SpanKind.INTERNAL, {"forktex.storage.keys": 1}),
    }
    for name, (kind, extra) in expected.items():
        span = forktex_otel.span(name)
        assert span.kind is kind, name
        assert _attrs(span) == {**base, **extra}, name
        assert span.status.status_code is StatusCode.UNSET, name
        assert Telemetry.is_child(span, request_span), name
    found, missing = forktex_otel.spans("storage.exists")
    assert _attrs(found) == {**base, "forktex.storage.found": True}
    assert _attrs(missing) == {**base, "forktex.storage.found": False}
    assert missing.status.status_code is StatusCode.UNSET  # a missing key is an answer

    dump = forktex_otel.dump()
    assert secret not in dump
    assert url not in dump and url.split("?")[0] not in dump


async def test_a_missing_object_is_an_error_of_its_type(
    storage: StorageClient, forktex_otel: Telemetry
) -> None:
    with pytest.raises(ObjectNotFound):
        await storage.get(f"missing/{secrets.token_hex(4)}")
    span = forktex_otel.span("storage.get")
    assert _attrs(span)["error.type"] == "forktex_core.storage.ObjectNotFound"
    assert span.status.status_code is StatusCode.ERROR and span.status.description is None
    assert span.events == ()


async def test_stopping_a_listing_early_is_not_an_error(
    storage: StorageClient, forktex_otel: Telemetry, prefix: str
) -> None:
    for i in range(3):
        await storage.put(f"{prefix}{i}", b"x")
    listing = storage.list(prefix=prefix, page_size=1)
    async for _ in listing:
        break
    await listing.aclose()  # type: ignore[attr-defined]
    span = forktex_otel.span("storage.list")
    assert _attrs(span)["forktex.storage.objects"] == 1
    assert span.status.status_code is StatusCode.UNSET


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_recorded_by_the_original_error(
    forktex_otel: Telemetry,
) -> None:
    port = _closed_port()
    storage = StorageClient(
        endpoint=f"http://127.0.0.1:{port}",
        credentials=Credentials("AKIAEXAMPLE", "hunter2-secret-key"),
        bucket="bucket",
        max_attempts=1,
    )
    try:
        with pytest.raises(StorageUnavailable):
            await storage.get("k")
    finally:
        await storage.aclose()
    span = forktex_otel.span("storage.get")
    assert _attrs(span)["server.port"] == port
    assert _attrs(span)["error.type"] in (
        "ConnectionRefusedError",
        "aiohttp.client_exceptions.ClientConnectorError",
    )
    assert span.status.status_code is StatusCode.ERROR
    assert "hunter2" not in forktex_otel.dump()


async def test_a_silent_server_is_a_timeout(
    forktex_otel: Telemetry, forktex_s3: S3Service, forktex_fault_proxy: Any
) -> None:
    proxy: FaultProxy = forktex_fault_proxy(forktex_s3)
    storage = StorageClient(
        endpoint=proxy.url(forktex_s3.endpoint_url),
        credentials=Credentials(forktex_s3.access_key, forktex_s3.secret_key),
        region=forktex_s3.region,
        bucket=forktex_s3.bucket,
        read_timeout=0.5,
        connect_timeout=0.5,
        max_attempts=1,
    )
    proxy.black_hole()
    try:
        with pytest.raises(StorageUnavailable):
            await storage.stat("k")
    finally:
        proxy.heal()
        await storage.aclose()
    assert _attrs(forktex_otel.span("storage.stat"))["error.type"] == "timeout"


async def test_bad_input_starts_no_span(storage: StorageClient, forktex_otel: Telemetry) -> None:
    with pytest.raises(InvalidArgument):
        await storage.get("../escape")
    with pytest.raises(InvalidArgument):
        await storage.signed_url("k", ttl_seconds=0)
    with pytest.raises(InvalidArgument):
        [o async for o in storage.list(page_size=0)]
    assert forktex_otel.spans() == []


_OPERATIONS = """
import asyncio
from forktex_core.storage import StorageClient

async def main():
    async with StorageClient(endpoint=f"file://{ROOT}", bucket="files") as storage:
        await storage.ensure_bucket()
        await storage.put("a/b.txt", b"hello")
        assert await storage.get("a/b.txt") == b"hello"
        assert [o.key async for o in storage.list("a/")] == ["a/b.txt"]
        await storage.delete("a/b.txt")

asyncio.run(main())
"""


def test_without_an_sdk_nothing_is_recorded(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        ROOT = {str(tmp_path / "store")!r}
        exporter = InMemorySpanExporter()  # installed, but not the global provider
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        {textwrap.indent(_OPERATIONS, " " * 8).strip()}
        from forktex_core.storage import _telemetry

        print(json.dumps({{
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": _telemetry.tracer.start_span("probe").is_recording(),
            "exported": len(exporter.get_finished_spans()),
        }}))
        """,
        cwd=tmp_path,
    )
    assert result == {"provider": "ProxyTracerProvider", "recording": False, "exported": 0}


def test_works_without_the_sdk_installed(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import json
        import sys
        ROOT = {str(tmp_path / "store")!r}
        {textwrap.indent(_OPERATIONS, " " * 8).strip()}
        print(json.dumps({{
            "sdk_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk"))
        }}))
        """,
        cwd=tmp_path,
        hide_sdk=True,
    )
    assert result == {"sdk_loaded": []}
