# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.cache vs what a user would write instead, on the same Redis in one run.

- ``@cached`` hit and ``get_json`` vs a raw redis-py ``GET`` + ``json.loads`` of the same
  value (target <= 1.3x). This process configures no OpenTelemetry SDK: these rows include
  the tracing API's no-op path, as a service without an SDK runs it.
- The cost of the tracing API calls alone (no SDK): the same two calls with a client that
  answers at once (so only our code runs), with the module's ``operation`` / counter calls
  vs with them replaced by no-ops, in one process, interleaved - the share a real call adds.
- The same two calls with the OpenTelemetry SDK and an in-memory span exporter and metric
  reader configured vs without an SDK (API only): the cost of recording. A global SDK cannot
  be removed once installed, so each side runs in its own interpreter, interleaved.
- Per-command deadlines: the mechanism alone (client CPU to await a no-op coroutine through
  it vs a bare await), and on a ``GET`` (wall time and client CPU vs an unbounded redis-py
  ``GET``): ``command_timeout`` (the module's shared watchdog timer), ``asyncio.timeout``
  around each command, ``asyncio.wait_for``, redis-py's ``socket_timeout``.
- ``rate_limit`` vs the ``limits`` package's moving-window limiter (``limits.aio``, redis-py
  backend; ``hit()`` only, which unlike ours does not compute a retry-after), plus exactness:
  a concurrent burst of 200 calls at a limit of 17, how many each admits.

    uv run python tools/bench/cache_ops.py --quick
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path

import redis.asyncio
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, interleave, main, per_op_us, redis_url
from opentelemetry import trace

from forktex_core import cache
from forktex_core.cache import _telemetry
from forktex_core.cache._client import command, state

HERE = Path(__file__).resolve()

PROFILE = {
    "id": "42",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "roles": ["admin", "editor"],
    "settings": {"theme": "dark", "locale": "en-GB", "notifications": True},
}

#: What the tracing calls are stubbed out with: the no-op scope, without starting a span.
_NO_SPAN = nullcontext(trace.INVALID_SPAN)


async def _burst_ours(key: str, limit: int, calls: int) -> int:
    results = await asyncio.gather(
        *[cache.rate_limit("bench.burst", key=key, limit=limit, window_seconds=60)
          for _ in range(calls)]
    )  # fmt: skip
    return sum(ok for ok, _ in results)


async def _burst_limits(limiter: MovingWindowRateLimiter, key: str, limit: int, calls: int) -> int:
    item = RateLimitItemPerSecond(limit, 60)
    results = await asyncio.gather(*[limiter.hit(item, "burst", key) for _ in range(calls)])
    return sum(results)


async def per_op_cpu_us(op: Callable[[], Awaitable[object]], n: int) -> float:
    """Client CPU microseconds per call of ``op`` over ``n`` sequential calls."""
    start = time.process_time()
    for _ in range(n):
        await op()
    return (time.process_time() - start) / n * 1e6


async def _calls(url: str, prefix: str) -> tuple[Callable[[], Awaitable[object]], ...]:
    """The ``@cached`` hit and ``get_json`` calls measured, on a warm cache."""
    await cache.init(url, prefix=prefix)

    @cache.cached(ttl=600, namespace="bench.profile")
    async def get_profile(user_id: str) -> dict[str, object]:
        return PROFILE

    await get_profile("42")
    await cache.set_json("bench:profile::42", PROFILE)
    for _ in range(200):
        await get_profile("42")
        await cache.get_json("bench:profile::42")
    return (lambda: get_profile("42"), lambda: cache.get_json("bench:profile::42"))


async def _worker(mode: str, url: str, prefix: str, n: int) -> None:
    """One measured run in this interpreter: ``sdk`` installs the SDK first, ``api`` not."""
    if mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    hit, get_json = await _calls(url, prefix)
    try:
        figures: list[float] = []
        for op in (hit, get_json):
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                await op()
            figures += [
                (time.perf_counter() - wall) / n * 1e6,
                (time.process_time() - cpu) / n * 1e6,
            ]
        if mode == "sdk":
            assert len(exporter.get_finished_spans()) >= 2 * n
    finally:
        await cache.close()
    print(json.dumps(figures))


async def _in_interpreter(mode: str, url: str, prefix: str, n: int) -> list[float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE),
        "--worker",
        mode,
        url,
        prefix,
        str(n),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker ({mode}) failed: {err.decode()[-2000:]}")
    figures: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


class _AtOnce:
    """A stand-in for the redis-py client whose GET answers at once: only our code runs."""

    def __init__(self, value: bytes) -> None:
        self.value = value

    async def get(self, key: str) -> bytes:
        return self.value


class _NoCounter:
    def add(self, amount: int, attributes: object = None) -> None:
        return None


async def _api_rows(
    calls: dict[str, Callable[[], Awaitable[object]]], runs: int, n: int
) -> list[Row]:
    """Client CPU per call with the tracing API calls vs with them stubbed out (no SDK)."""
    current = state()
    real_client = current.client
    operation, lookups = _telemetry.operation, _telemetry.lookups

    def stubbed() -> None:
        _telemetry.operation = lambda *args: _NO_SPAN  # type: ignore[assignment]
        _telemetry.lookups = _NoCounter()  # type: ignore[assignment]

    def restored() -> None:
        _telemetry.operation, _telemetry.lookups = operation, lookups  # type: ignore[misc]

    rows: list[Row] = []
    current.client = _AtOnce(json.dumps(PROFILE).encode())
    try:
        for workload, op in calls.items():

            async def with_api(op: Callable[[], Awaitable[object]] = op) -> float:
                restored()
                return await per_op_cpu_us(op, 10 * n)

            async def without(op: Callable[[], Awaitable[object]] = op) -> float:
                stubbed()
                return await per_op_cpu_us(op, 10 * n)

            ours, base = await interleave(with_api, without, runs)
            rows.append(Row("cache", f"{workload}, our code alone, tracing API (no SDK)", ours,
                            "µs CPU/op", "tracing calls stubbed out", base, runs))  # fmt: skip
    finally:
        restored()
        current.client = real_client
    return rows


async def _sdk_rows(url: str, prefix: str, runs: int, n: int) -> list[Row]:
    """@cached hit and get_json with the SDK recording vs API only, interpreters interleaved."""
    sdk: list[list[float]] = []
    api: list[list[float]] = []

    async def with_sdk() -> float:
        sdk.append(await _in_interpreter("sdk", url, prefix, n))
        return sdk[-1][0]

    async def api_only() -> float:
        api.append(await _in_interpreter("api", url, prefix, n))
        return api[-1][0]

    await interleave(with_sdk, api_only, runs)
    rows: list[Row] = []
    for i, (workload, unit) in enumerate(
        [("@cached hit", "µs/op"), ("@cached hit", "µs CPU/op"),
         ("get_json", "µs/op"), ("get_json", "µs CPU/op")]
    ):  # fmt: skip
        ours = statistics.median(f[i] for f in sdk)
        base = statistics.median(f[i] for f in api)
        rows.append(Row("cache", f"{workload}, SDK + in-memory export", ours, unit,
                        f"{workload}, API only", base, runs))  # fmt: skip
    return rows


async def _deadline_rows(url: str, key: str, runs: int, n: int) -> list[Row]:
    """A GET bounded per command three ways vs an unbounded GET, wall time and client CPU."""
    unbounded = redis.asyncio.Redis.from_url(url)
    socket_bound = redis.asyncio.Redis.from_url(url, socket_timeout=5.0)
    current = state()  # command_timeout=5 s, the default

    async def plain() -> object:
        return await unbounded.get(key)

    async def watchdog() -> object:
        return await command(current, "GET", current.client.get(key))

    async def timeout_cm() -> object:
        async with asyncio.timeout(5.0):
            return await unbounded.get(key)

    async def socket_timeout() -> object:
        return await socket_bound.get(key)

    async def noop() -> None:
        return None

    async def bare() -> object:
        return await noop()

    async def noop_watchdog() -> object:
        return await command(current, "no-op", noop())

    async def noop_timeout_cm() -> object:
        async with asyncio.timeout(5.0):
            return await noop()

    async def noop_wait_for() -> object:
        return await asyncio.wait_for(noop(), 5.0)

    rows: list[Row] = []
    for name, op in (
        ("no-op await bounded by command_timeout", noop_watchdog),
        ("no-op await in asyncio.timeout", noop_timeout_cm),
        ("no-op await in asyncio.wait_for", noop_wait_for),
    ):
        ours, base = await interleave(
            lambda op=op: per_op_cpu_us(op, 10 * n), lambda: per_op_cpu_us(bare, 10 * n), runs
        )
        rows.append(Row("cache", name, ours, "µs CPU/op", "bare await", base, runs))
    try:
        for op in (plain, watchdog, timeout_cm, socket_timeout):
            for _ in range(200):
                await op()
        for name, op in (
            ("GET bounded by command_timeout", watchdog),
            ("GET in asyncio.timeout per command", timeout_cm),
            ("GET with redis-py socket_timeout", socket_timeout),
        ):
            for unit, measure in (("µs/op", per_op_us), ("µs CPU/op", per_op_cpu_us)):
                ours, base = await interleave(
                    lambda op=op, m=measure: m(op, n),
                    lambda m=measure: m(plain, n),
                    runs,
                )
                rows.append(Row("cache", name, ours, unit, "redis-py GET, unbounded", base, runs))
    finally:
        await unbounded.aclose()
        await socket_bound.aclose()
    return rows


async def run(quick: bool) -> list[Row]:
    runs, n = (3, 400) if quick else (9, 3000)
    prefix = f"forktex-bench:{secrets.token_hex(4)}:"
    rows: list[Row] = []
    async with redis_url() as url:
        await cache.init(url, prefix=prefix)
        raw = redis.asyncio.Redis.from_url(url)
        storage = RedisStorage(
            "async+" + url, implementation="redispy", key_prefix=prefix + "limits"
        )
        limiter = MovingWindowRateLimiter(storage)
        try:
            # --- @cached hit vs GET + json.loads -----------------------------------------
            @cache.cached(ttl=600, namespace="bench.profile")
            async def get_profile(user_id: str) -> dict[str, object]:
                return PROFILE

            await get_profile("42")
            raw_key = prefix + "bench:raw:42"
            await raw.set(raw_key, json.dumps(PROFILE))

            async def baseline_get() -> object:
                return json.loads(await raw.get(raw_key))  # type: ignore[arg-type]

            assert await get_profile("42") == await baseline_get()
            for _ in range(200):  # warm both connection pools
                await get_profile("42")
                await baseline_get()
            ours, base = await interleave(
                lambda: per_op_us(lambda: get_profile("42"), n),
                lambda: per_op_us(baseline_get, n),
                runs,
            )
            rows.append(Row("cache", "@cached hit", ours, "µs/op", "redis-py GET+json", base, runs))

            # --- get_json vs GET + json.loads ------------------------------------------------
            await cache.set_json("bench:raw", PROFILE)
            for _ in range(200):
                await cache.get_json("bench:raw")
            ours, base = await interleave(
                lambda: per_op_us(lambda: cache.get_json("bench:raw"), n),
                lambda: per_op_us(baseline_get, n),
                runs,
            )
            rows.append(Row("cache", "get_json", ours, "µs/op", "redis-py GET+json", base, runs))

            # --- tracing: the API calls alone, our code alone -----------------------------------
            rows.extend(
                await _api_rows(
                    {"@cached hit": lambda: get_profile("42"),
                     "get_json": lambda: cache.get_json("bench:raw")},
                    runs,
                    n,
                )
            )  # fmt: skip

            # --- tracing: SDK recording vs API only (each in its own interpreter) ---------------
            rows.extend(await _sdk_rows(url, prefix + "sdk:", runs, n))

            # --- per-command deadlines --------------------------------------------------------
            rows.extend(await _deadline_rows(url, raw_key, runs, n))

            # --- rate_limit vs limits moving window ----------------------------------------
            ips = [f"10.0.{i // 256}.{i % 256}" for i in range(500)]
            item = RateLimitItemPerSecond(20, 1)
            counter = iter(range(10**9))

            async def ours_rl() -> object:
                return await cache.rate_limit(
                    "bench.rl", key=ips[next(counter) % 500], limit=20, window_seconds=1
                )

            async def limits_rl() -> object:
                return await limiter.hit(item, "rl", ips[next(counter) % 500])

            for _ in range(200):
                await ours_rl()
                await limits_rl()
            ours, base = await interleave(
                lambda: per_op_us(ours_rl, n), lambda: per_op_us(limits_rl, n), runs
            )
            admitted_ours = [await _burst_ours(f"b{i}", 17, 200) for i in range(3)]
            admitted_limits = [await _burst_limits(limiter, f"b{i}", 17, 200) for i in range(3)]
            note = (
                f"500 keys, 20/s; burst of 200 at limit 17 admitted: ours {admitted_ours}, "
                f"limits {admitted_limits}"
            )
            rows.append(
                Row("cache", "rate_limit", ours, "µs/op", "limits moving-window", base, runs,
                    note)
            )  # fmt: skip
        finally:
            await cache.delete_pattern("*")
            async for key in raw.scan_iter(match=prefix + "*", count=500):
                await raw.unlink(key)
            await raw.aclose()
            await cache.close()
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        mode, worker_url, worker_prefix, calls = sys.argv[2:6]
        asyncio.run(_worker(mode, worker_url, worker_prefix, int(calls)))
    else:
        main(run)
