# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Tracing and metrics: spans and counters as the SDK (in memory) receives them, errors and
degraded calls, nothing secret recorded, and nothing at all without an SDK."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_resp_server import FakeRedis
from fault_helpers import FAST, within
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from forktex_core import cache
from forktex_core.cache import (
    CacheCommandError,
    CacheUnavailable,
    InvalidArgument,
    InvalidKey,
    Namespace,
    RateLimitUnavailable,
    cached,
)
from forktex_core.testing import FaultProxy, RedisService, Telemetry, run_python

test_tracer = trace.get_tracer("forktex_core.cache.tests")


def _ns() -> str:
    """A namespace of this test's own (counters are process-wide)."""
    return f"otel-{secrets.token_hex(4)}"


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _server(redis: RedisService) -> dict[str, Any]:
    return {
        "db.system.name": "redis",
        "server.address": redis.host,
        "server.port": redis.port,
        "db.namespace": str(redis.db),
    }


# -- @cached -----------------------------------------------------------------------------------


async def test_cached_miss_then_hit_spans_and_lookup_counts(
    cache_client: str, forktex_otel: Telemetry, forktex_redis: RedisService
) -> None:
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def profile(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    with test_tracer.start_as_current_span("request") as request:
        assert await profile("42") == {"id": "42"}
        assert await profile("42") == {"id": "42"}

    miss, hit = forktex_otel.spans(f"cache.cached {ns}")
    fill = forktex_otel.span(f"cache.cached.fill {ns}")
    expected = {
        **_server(forktex_redis),
        "forktex.cache.namespace": ns,
        "code.function.name": f"{__name__}.{profile.__qualname__}",
    }
    assert _attrs(miss) == {**expected, "forktex.cache.result": "miss"}
    assert _attrs(hit) == {**expected, "forktex.cache.result": "hit"}
    assert _attrs(fill) == {**expected, "forktex.cache.computed": True}
    assert miss.kind == hit.kind == fill.kind == SpanKind.INTERNAL
    assert all(s.status.status_code == StatusCode.UNSET for s in (miss, hit, fill))
    assert (
        Telemetry.is_child(fill, miss)
        and Telemetry.is_child(miss, request)
        and Telemetry.is_child(hit, request)
    )
    assert forktex_otel.counts("forktex.cache.lookups") == {
        frozenset({("forktex.cache.namespace", ns), ("forktex.cache.result", "miss")}): 1,
        frozenset({("forktex.cache.namespace", ns), ("forktex.cache.result", "hit")}): 1,
    }


async def test_spans_of_the_function_nest_under_the_fill_span(
    cache_client: str, forktex_otel: Telemetry
) -> None:
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def report(n: int) -> int:
        with test_tracer.start_as_current_span("query"):
            return n * 2

    assert await report(21) == 42
    query = forktex_otel.span("query")
    assert Telemetry.is_child(query, forktex_otel.span(f"cache.cached.fill {ns}"))


async def test_concurrent_misses_run_one_fill_the_others_are_coalesced(
    cache_client: str, forktex_otel: Telemetry
) -> None:
    ns = _ns()
    gate = asyncio.Event()
    calls = 0

    @cached(ttl=60, namespace=ns)
    async def slow(n: int) -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return n

    tasks = [asyncio.create_task(slow(1)) for _ in range(5)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await within(asyncio.gather(*tasks)) == [1] * 5
    assert calls == 1
    spans = forktex_otel.spans(f"cache.cached {ns}")
    assert len(spans) == 5
    assert sum(bool(_attrs(s).get("forktex.cache.coalesced")) for s in spans) == 4
    assert len(forktex_otel.spans(f"cache.cached.fill {ns}")) == 1


class ReportFailed(Exception):
    pass


async def test_an_error_of_the_function_is_recorded_by_type_never_by_message(
    cache_client: str, forktex_otel: Telemetry
) -> None:
    ns = _ns()
    secret = secrets.token_hex(8)

    @cached(ttl=60, namespace=ns)
    async def fails() -> None:
        raise ReportFailed(f"upstream said {secret}")

    with pytest.raises(ReportFailed):
        await fails()
    for span in (
        forktex_otel.span(f"cache.cached {ns}"),
        forktex_otel.span(f"cache.cached.fill {ns}"),
    ):
        assert span.status.status_code == StatusCode.ERROR
        assert span.status.description is None
        assert _attrs(span)["error.type"] == f"{__name__}.ReportFailed"
        assert not span.events  # no exception event: its message and traceback are not ours
    assert secret not in forktex_otel.dump()


async def test_redis_down_is_a_bypass_not_an_error(
    dead_url: str, forktex_otel: Telemetry, prefix: str
) -> None:
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def value() -> int:
        return 7

    await cache.init(dead_url, prefix=prefix, verify=False, outage_retry_seconds=60)
    try:
        assert await value() == 7  # tries Redis: refused
        assert await value() == 7  # during the outage: Redis is skipped
    finally:
        await cache.close()
    tried, skipped = forktex_otel.spans(f"cache.cached {ns}")
    for span in (tried, skipped):
        assert _attrs(span)["forktex.cache.result"] == "bypass"
        assert span.status.status_code == StatusCode.UNSET
        assert "error.type" not in _attrs(span)
    (event,) = tried.events
    assert event.name == "forktex.cache.degraded"
    assert event.attributes == {"error.type": "redis.exceptions.ConnectionError"}
    assert not skipped.events
    assert forktex_otel.counts("forktex.cache.lookups") == {
        frozenset({("forktex.cache.namespace", ns), ("forktex.cache.result", "bypass")}): 2
    }


# -- typed ops ---------------------------------------------------------------------------------

PROFILES = Namespace("otel.profile")
P = "otel:profile"
K1, K2 = PROFILES.key(1), PROFILES.key(2)
#: (span name, db.operation.name, call, namespace recorded, number of keys recorded)
TYPED_OPS: list[tuple[str, str | None, Callable[[], Any], str | None, int | None]] = [
    ("cache.set_json", "SET", lambda: cache.set_json(K1, {"a": 1}), P, None),
    ("cache.get_json", "GET", lambda: cache.get_json(K1), P, None),
    ("cache.incr", "EVALSHA", lambda: cache.incr(PROFILES.key("n")), P, None),
    ("cache.mget", "MGET", lambda: cache.mget([K1, K2]), P, 2),
    ("cache.delete", "UNLINK", lambda: cache.delete(K1, K2), P, 2),
    ("cache.delete_pattern", None, lambda: cache.delete_pattern(PROFILES.pattern()), P, 1),
    ("cache.get_json", "GET", lambda: cache.get_json("user-data:42"), None, None),
    ("cache.mget", "MGET", lambda: cache.mget([K1, "other::1"]), None, 2),
    ("cache.delete_pattern", None, lambda: cache.delete_pattern("otel:profile::4*"), P, 0),
    ("cache.delete_pattern", None, lambda: cache.delete_pattern("free-form*"), None, 0),
]


@pytest.mark.parametrize(
    ("name", "operation", "call", "namespace", "count"),
    TYPED_OPS,
    ids=[f"{op[0]}-{i}" for i, op in enumerate(TYPED_OPS)],
)
async def test_typed_ops_have_client_spans(
    cache_client: str,
    forktex_otel: Telemetry,
    forktex_redis: RedisService,
    name: str,
    operation: str | None,
    call: Callable[[], Any],
    namespace: str | None,
    count: int | None,
) -> None:
    await cache.set_json(K1, {"a": 1})
    forktex_otel.exporter.clear()
    with test_tracer.start_as_current_span("request") as request:
        await call()
    span = forktex_otel.span(name)
    expected = dict(_server(forktex_redis))
    if operation is not None:
        expected["db.operation.name"] = operation
    if namespace is not None:
        expected["forktex.cache.namespace"] = namespace
    if count is not None:
        expected["forktex.cache.keys"] = count
    assert _attrs(span) == expected
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    assert Telemetry.is_child(span, request)


async def test_bad_input_starts_no_span(cache_client: str, forktex_otel: Telemetry) -> None:
    with pytest.raises(InvalidKey):
        await cache.get_json("")
    with pytest.raises(InvalidArgument):
        await cache.mget("one-key")
    with pytest.raises(InvalidArgument):
        await cache.rate_limit("login", key="ip", limit=0, window_seconds=1)
    assert forktex_otel.spans() == []


async def test_error_replies_give_their_code_as_error_type(
    fake_redis: FakeRedis, forktex_redis: RedisService, prefix: str, forktex_otel: Telemetry
) -> None:
    await cache.init(fake_redis.url(forktex_redis.url), prefix=prefix)
    try:
        fake_redis.fail("READONLY You can't write against a read only replica.", "SET")
        with pytest.raises(CacheUnavailable):
            await cache.set_json("k", 1)
        fake_redis.fail("WRONGTYPE Operation against a key holding the wrong kind of value", "GET")
        with pytest.raises(CacheCommandError):
            await cache.get_json("k")
        fake_redis.heal()
        await cache.set_json("text", "not a number")
        with pytest.raises(CacheCommandError):
            await cache.incr("text")
    finally:
        await cache.close()
    for name, code in (
        ("cache.set_json", "READONLY"),
        ("cache.get_json", "WRONGTYPE"),
        ("cache.incr", "ERR"),
    ):
        span = forktex_otel.spans(name)[0]
        assert span.status.status_code == StatusCode.ERROR, name
        assert span.status.description is None
        assert _attrs(span)["error.type"] == code
        assert _attrs(span)["db.response.status_code"] == code


async def test_a_silent_server_is_error_type_timeout(
    forktex_fault_proxy: Callable[..., FaultProxy],
    forktex_redis: RedisService,
    prefix: str,
    forktex_otel: Telemetry,
) -> None:
    proxy = forktex_fault_proxy(forktex_redis)
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def value() -> int:
        return 1

    await cache.init(proxy.url(forktex_redis.url), prefix=prefix, **FAST)
    try:
        assert await cache.get_json("warm") is None
        proxy.black_hole()
        with pytest.raises(CacheUnavailable):
            await within(cache.get_json("k"))
        await cache.close()
        proxy.heal()
        await cache.init(proxy.url(forktex_redis.url), prefix=prefix, **FAST)
        assert await cache.get_json("warm") is None
        proxy.black_hole()
        assert await within(value()) == 1
    finally:
        proxy.heal()
        await within(cache.close())
    failed = forktex_otel.spans("cache.get_json")[1]
    assert failed.status.status_code == StatusCode.ERROR
    assert _attrs(failed)["error.type"] == "timeout"
    (bypass,) = forktex_otel.spans(f"cache.cached {ns}")
    assert _attrs(bypass)["forktex.cache.result"] == "bypass"
    assert [e.attributes for e in bypass.events] == [{"error.type": "timeout"}]


# -- rate limiting -----------------------------------------------------------------------------


async def test_rate_limit_spans_and_decision_counts(
    cache_client: str, forktex_otel: Telemetry, forktex_redis: RedisService
) -> None:
    name = _ns()
    for _ in range(3):
        await cache.rate_limit(name, key="203.0.113.7", limit=2, window_seconds=60)
    state = await cache.peek(name, key="203.0.113.7", limit=2, window_seconds=60)
    assert state.used == 2
    assert await cache.reset(name, key="203.0.113.7")

    spans = forktex_otel.spans(f"cache.rate_limit {name}")
    assert [_attrs(s)["forktex.cache.rate_limit.result"] for s in spans] == [
        "allowed",
        "allowed",
        "denied",
    ]
    assert _attrs(spans[0]) == {
        **_server(forktex_redis),
        "db.operation.name": "EVALSHA",
        "forktex.cache.rate_limit.name": name,
        "forktex.cache.rate_limit.result": "allowed",
    }
    assert all(s.kind == SpanKind.CLIENT for s in spans)
    for op, command in (("peek", "EVALSHA"), ("reset", "UNLINK")):
        span = forktex_otel.span(f"cache.rate_limit.{op} {name}")
        assert _attrs(span) == {
            **_server(forktex_redis),
            "db.operation.name": command,
            "forktex.cache.rate_limit.name": name,
        }
    limiter = ("forktex.cache.rate_limit.name", name)
    assert forktex_otel.counts("forktex.cache.rate_limit.decisions") == {
        frozenset({limiter, ("forktex.cache.rate_limit.result", "allowed")}): 2,
        frozenset({limiter, ("forktex.cache.rate_limit.result", "denied")}): 1,
    }
    assert "203.0.113.7" not in forktex_otel.dump()


async def test_rate_limit_without_redis_counts_degraded_decisions(
    dead_url: str, forktex_otel: Telemetry, prefix: str
) -> None:
    name = _ns()
    await cache.init(dead_url, prefix=prefix, verify=False)
    try:
        ok, _ = await cache.rate_limit(name, "ip", limit=1, window_seconds=1)
        assert ok
        ok, _ = await cache.rate_limit(
            name, "ip", limit=1, window_seconds=1, on_error="fail_closed"
        )
        assert not ok
        with pytest.raises(RateLimitUnavailable):
            await cache.rate_limit(name, "ip", limit=1, window_seconds=1, on_error="raise")
    finally:
        await cache.close()
    opened, closed, raised = forktex_otel.spans(f"cache.rate_limit {name}")
    assert _attrs(opened)["forktex.cache.degraded"] is True
    assert [e.name for e in opened.events] == ["forktex.cache.degraded"]
    assert opened.status.status_code == closed.status.status_code == StatusCode.UNSET
    assert raised.status.status_code == StatusCode.ERROR
    assert _attrs(raised)["error.type"] == "forktex_core.cache.RateLimitUnavailable"
    limiter = ("forktex.cache.rate_limit.name", name)
    degraded = ("forktex.cache.degraded", True)
    assert forktex_otel.counts("forktex.cache.rate_limit.decisions") == {
        frozenset({limiter, degraded, ("forktex.cache.rate_limit.result", "allowed")}): 1,
        frozenset({limiter, degraded, ("forktex.cache.rate_limit.result", "denied")}): 1,
    }


async def test_invalidate_spans(cache_client: str, forktex_otel: Telemetry) -> None:
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def value(n: int) -> int:
        return n

    await value(1)
    await value(2)
    assert await value.invalidate(1)
    assert await value.invalidate_all() == 1
    one = forktex_otel.span(f"cache.invalidate {ns}")
    every = forktex_otel.span(f"cache.invalidate_all {ns}")
    assert _attrs(one)["db.operation.name"] == "UNLINK"
    assert _attrs(every)["forktex.cache.keys"] == 1
    assert _attrs(one)["forktex.cache.namespace"] == _attrs(every)["forktex.cache.namespace"] == ns


# -- nothing secret, nothing without an SDK ----------------------------------------------------


async def test_no_key_value_argument_or_password_is_ever_recorded(
    forktex_redis: RedisService, forktex_otel: Telemetry, dead_url: str, prefix: str
) -> None:
    secret = "s3cr3t" + secrets.token_hex(8)
    ns = _ns()

    @cached(ttl=60, namespace=ns)
    async def lookup(token: str) -> dict[str, str]:
        return {"echo": token}

    keyed = Namespace("otel.secret")
    await cache.init(forktex_redis.url, prefix=prefix)
    try:
        await lookup(secret)
        await lookup(secret)
        await cache.set_json(keyed.key(secret), {"password": secret})
        await cache.get_json(keyed.key(secret))
        await cache.set_json(secret, secret)  # a free-form key holding the secret
        await cache.mget([secret, keyed.key(secret)])
        with pytest.raises(CacheCommandError) as info:
            await cache.incr(secret)  # its message names the key
        assert secret in str(info.value)
        await cache.delete(secret, keyed.key(secret))
        await cache.delete_pattern(f"{secret}*")
        await cache.rate_limit("login", key=secret, limit=1, window_seconds=1)
    finally:
        await cache.close()
    await cache.init(dead_url.replace("redis://", f"redis://user:{secret}@"), verify=False)
    try:
        assert await lookup(secret) == {"echo": secret}
        await cache.rate_limit("login", key=secret, limit=1, window_seconds=1)
        with pytest.raises(CacheUnavailable):
            await cache.get_json(keyed.key(secret))
    finally:
        await cache.close()

    dump = forktex_otel.dump()
    assert len(forktex_otel.spans()) >= 13
    assert secret not in dump
    assert secret.encode().hex() not in dump


#: Every kind of traced call, in a fresh interpreter (URL and PREFIX defined before).
_OPERATIONS = """
import asyncio
from opentelemetry import trace
from forktex_core import cache

inside = []

@cache.cached(ttl=60, namespace="otel.nosdk")
async def value(n):
    inside.append(trace.get_current_span())
    return n

async def main():
    await cache.init(URL, prefix=PREFIX)
    try:
        assert await value(1) == 1 and await value(1) == 1
        await cache.set_json("k", 1)
        assert await cache.get_json("k") == 1
        assert (await cache.rate_limit("login", "ip", limit=5, window_seconds=1)).allowed
        await cache.delete_pattern("*")
    finally:
        await cache.close()

asyncio.run(main())
"""


def test_without_an_sdk_every_span_is_a_no_op(
    forktex_redis: RedisService, prefix: str, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        URL, PREFIX = {forktex_redis.url!r}, {prefix!r}
        # An SDK that is installed but not the global provider must see nothing.
        exporter = InMemorySpanExporter()
        TracerProvider().add_span_processor(SimpleSpanProcessor(exporter))
        """,
        _OPERATIONS,
        """
        from forktex_core.cache import _telemetry

        print(json.dumps({
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": _telemetry.tracer.start_span("probe").is_recording(),
            "inside": [span is trace.INVALID_SPAN for span in inside],
            "exported": len(exporter.get_finished_spans()),
        }))
        """,
        cwd=tmp_path,
    )
    assert result == {
        "provider": "ProxyTracerProvider",
        "recording": False,
        "inside": [True],  # the function ran once, with nothing made current around it
        "exported": 0,
    }


def test_works_without_the_sdk_installed(
    forktex_redis: RedisService, prefix: str, tmp_path: Path
) -> None:
    result = run_python(
        f"""
        import json
        import sys
        URL, PREFIX = {forktex_redis.url!r}, {prefix!r}
        """,
        _OPERATIONS,
        """
        try:
            import opentelemetry.sdk.trace
            hidden = False
        except ModuleNotFoundError:
            hidden = True
        print(json.dumps({
            "hidden": hidden,
            "sdk_loaded": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "inside": len(inside),
        }))
        """,
        cwd=tmp_path,
        hide_sdk=True,
    )
    assert result == {"hidden": True, "sdk_loaded": [], "inside": 1}
