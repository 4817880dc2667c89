# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""@cached: keys, hits, invalidation, serializers, stampede protection."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import json
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from forktex_core import cache
from forktex_core.cache import (
    InvalidArgument,
    InvalidNamespace,
    SerializationError,
    UnencodableArgument,
    cached,
)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Tenant:
    def __init__(self, tid: str) -> None:
        self.tid = tid

    def __cache_key__(self) -> str:
        return self.tid


async def test_hit_after_miss_and_stored_as_json(
    cache_client: str, raw: redis.asyncio.Redis
) -> None:
    calls = 0

    @cached(ttl=60, namespace="user:profile")
    async def get_profile(user_id: str) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"id": user_id, "n": calls}

    assert await get_profile("42") == {"id": "42", "n": 1}
    assert await get_profile("42") == {"id": "42", "n": 1}
    assert await get_profile(user_id="42") == {"id": "42", "n": 1}
    assert calls == 1
    key = get_profile.key_for("42")
    assert key.startswith(cache_client + "user:profile:")
    assert f"{__name__}.test_hit_after_miss_and_stored_as_json.<locals>.get_profile:{{" in key
    assert json.loads(await raw.get(key)) == {"id": "42", "n": 1}
    assert 59_000 < await raw.pttl(key) <= 60_000
    assert await raw.exists(key + ":lock") == 0  # lock released
    assert await get_profile("43") == {"id": "43", "n": 2}


async def test_positional_calls_with_defaults_key_like_keyword_calls(cache_client: str) -> None:
    # Plain positional-or-keyword parameters take a path that skips Signature.bind; it must
    # give the same key as the bound path for every spelling of the same call.
    @cached(ttl=60, namespace="user.profile")
    async def g(a: int, b: str = "x", c: int = 2) -> None: ...

    k = g.key_for(1)
    assert g.key_for(1, "x") == g.key_for(1, "x", 2) == g.key_for(a=1) == g.key_for(1, c=2) == k
    assert g.key_for(b="x", a=1) == k
    assert len({k, g.key_for(1, "y"), g.key_for(1, "x", 3), g.key_for(2)}) == 4
    with pytest.raises(TypeError, match="missing a required argument: 'a'"):
        g.key_for()
    with pytest.raises(TypeError, match="too many positional arguments"):
        g.key_for(1, "x", 2, 3)


async def test_key_is_stable_across_spellings(cache_client: str) -> None:
    @cached(ttl=60, namespace="user.profile")
    async def f(a: int, b: str = "x", *args: int, c: float = 1.0, **kw: Any) -> None: ...

    k = f.key_for(1)
    assert f.key_for(1, "x") == k
    assert f.key_for(a=1) == k
    assert f.key_for(1, c=1.0) == k
    assert f.key_for(1, "x", c=1.0) == k
    assert f.key_for(1, d=1, e=2) == f.key_for(1, e=2, d=1)
    assert f.key_for(1, z={"p": 1, "q": [1, 2]}) == f.key_for(1, z={"q": [1, 2], "p": 1})
    # Different values or types give different keys.
    distinct = {
        f.key_for(2),
        f.key_for("1"),
        f.key_for(1, "y"),
        f.key_for(1, "x", 5),
        f.key_for(1, c=2.0),
        f.key_for(1, d=[1, 2]),
        f.key_for(1, d=(1, 2)),
        f.key_for(1, d=["1,2"]),
        f.key_for(1, d=True),
        f.key_for(1, d=None),
        k,
    }
    assert len(distinct) == 11

    # "user:profile" and "user.profile" are the same namespace.
    @cached(ttl=60, namespace="user:profile")
    async def g(a: int) -> None: ...

    assert g.key_for(1).split(":")[:-2] == f.key_for(1).split(":")[:-2]


def test_key_digest_is_identical_in_another_process(cache_client: str) -> None:
    # Same code in a fresh interpreter (other hash seed) must give the same digest.
    src = textwrap.dedent(
        """
        import asyncio, datetime, uuid, decimal
        from forktex_core import cache
        async def main():
            await cache.init("redis://127.0.0.1:1/0", verify=False, prefix="p:")
            @cache.cached(ttl=1, namespace="ns")
            async def f(a, b=None): ...
            b = [datetime.date(2026, 1, 2), uuid.UUID(int=5), decimal.Decimal("1.10")]
            print(f.key_for({"x": {1, 2, 3}, "y": ("a", b"b")}, b=b))
            await cache.close()
        asyncio.run(main())
        """
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", src],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin"},
        ).stdout.split(":{")[-1]
        for seed in (1, 2, 3)
    }
    assert len(outs) == 1, outs


async def test_many_argument_types_are_encodable(cache_client: str) -> None:
    @cached(ttl=60, namespace="types")
    async def f(v: Any) -> str:
        return "ok"

    values = [
        None,
        True,
        3,
        2.5,
        "s",
        b"b",
        [1, "a"],
        (1,),
        {"k": [1]},
        {1, 2},
        frozenset({"a"}),
        dt.datetime(2026, 1, 1, 12),
        dt.date(2026, 1, 1),
        dt.time(1, 2),
        dt.timedelta(seconds=3),
        Decimal("1.5"),
        uuid.uuid4(),
        Color.RED,
        Point(1, 2),
        Tenant("t1"),
    ]
    keys = {f.key_for(v) for v in values}
    assert len(keys) == len(values)
    for v in values:
        assert await f(v) == "ok"
    assert f.key_for(Tenant("t1")) == f.key_for(Tenant("t1"))
    assert f.key_for(Point(1, 2)) != f.key_for(Point(2, 1))


async def test_unencodable_argument_names_the_parameter(cache_client: str) -> None:
    calls = 0

    @cached(ttl=60, namespace="x")
    async def f(user_id: int, session: object) -> int:
        nonlocal calls
        calls += 1
        return user_id

    with pytest.raises(UnencodableArgument, match=r"'session'.*ignore=\('session',\)"):
        await f(1, object())
    with pytest.raises(UnencodableArgument, match="'session'"):
        f.key_for(1, [object()])
    assert calls == 0

    @cached(ttl=60, namespace="x", ignore=("session",))
    async def g(user_id: int, session: object) -> int:
        nonlocal calls
        calls += 1
        return user_id

    assert await g(1, object()) == 1
    assert await g(1, object()) == 1
    assert calls == 1
    with pytest.raises(TypeError, match="missing"):
        await g()  # type: ignore[call-arg]


async def test_methods_bind_self(cache_client: str) -> None:
    class Repo:
        calls = 0

        @cached(ttl=60, namespace="repo", ignore=("self",))
        async def get(self, x: int) -> int:
            Repo.calls += 1
            return x * 2

    a, b = Repo(), Repo()
    assert await a.get(2) == 4
    assert await b.get(2) == 4
    assert Repo.calls == 1
    assert a.get.key_for(2) == b.get.key_for(2)
    assert await a.get.invalidate(2) is True
    assert await b.get(2) == 4
    assert Repo.calls == 2


async def test_none_is_cached_only_when_asked(cache_client: str) -> None:
    calls = {"plain": 0, "none": 0}

    @cached(ttl=60, namespace="n")
    async def plain() -> None:
        calls["plain"] += 1

    @cached(ttl=60, namespace="n", cache_none=True)
    async def none() -> None:
        calls["none"] += 1

    for _ in range(3):
        assert await plain() is None
        assert await none() is None
    assert calls == {"plain": 3, "none": 1}


async def test_invalidate_and_invalidate_all(cache_client: str, raw: redis.asyncio.Redis) -> None:
    calls = 0

    @cached(ttl=60, namespace="inv")
    async def f(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    for x in range(5):
        await f(x)
    assert calls == 5
    assert await f.invalidate(0) is True
    assert await f.invalidate(0) is False
    await f(0)
    assert calls == 6
    assert await f.invalidate_all() == 5
    await f(1)
    assert calls == 7


async def test_custom_serializer_and_errors(cache_client: str, raw: redis.asyncio.Redis) -> None:
    class Upper:
        def dumps(self, value: Any) -> bytes:
            return str(value).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode() + "!"

    @cached(ttl=60, namespace="ser", serializer=Upper())
    async def f(x: str) -> str:
        return x

    assert await f("ab") == "ab"
    assert await raw.get(f.key_for("ab")) == b"AB"
    assert await f("ab") == "AB!"

    @cached(ttl=60, namespace="ser")
    async def g() -> object:
        return {1, 2}

    with pytest.raises(SerializationError, match="set"):
        await g()
    assert await raw.exists(g.key_for() + ":lock") == 0


async def test_corrupt_entry_is_recomputed(cache_client: str, raw: redis.asyncio.Redis) -> None:
    @cached(ttl=60, namespace="c")
    async def f() -> int:
        return 7

    await raw.set(f.key_for(), b"{not json")
    assert await f() == 7
    assert await raw.get(f.key_for()) == b"7"


async def test_exception_is_propagated_not_cached(
    cache_client: str, raw: redis.asyncio.Redis
) -> None:
    calls = 0

    @cached(ttl=60, namespace="e")
    async def f() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    results = await asyncio.gather(*[f() for _ in range(5)], return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert calls == 1
    assert await raw.exists(f.key_for(), f.key_for() + ":lock") == 0
    with pytest.raises(RuntimeError):
        await f()
    assert calls == 2


async def test_stampede_50_concurrent_misses_run_once(cache_client: str) -> None:
    calls = 0

    @cached(ttl=60, namespace="stampede")
    async def slow(x: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return {"x": x}

    results = await asyncio.gather(*[slow(1) for _ in range(50)])
    assert calls == 1
    assert results == [{"x": 1}] * 50


async def test_cancelled_leader_does_not_strand_waiters(cache_client: str) -> None:
    calls = 0

    @cached(ttl=60, namespace="cancel")
    async def slow() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return calls

    leader = asyncio.create_task(slow())
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await waiter == 2
    assert leader.cancelled()


async def test_dead_lock_holder_expires(cache_client: str, raw: redis.asyncio.Redis) -> None:
    calls = 0

    @cached(ttl=60, namespace="dead", lock_ttl=0.4)
    async def f() -> str:
        nonlocal calls
        calls += 1
        return "fresh"

    # Another process took the lock and died without releasing it.
    await raw.set(f.key_for() + ":lock", b"dead-process", px=400)
    start = time.monotonic()
    assert await f() == "fresh"
    waited = time.monotonic() - start
    assert 0.3 < waited < 2.0
    assert calls == 1


async def test_waiter_picks_up_value_from_other_process(
    cache_client: str, raw: redis.asyncio.Redis
) -> None:
    calls = 0

    @cached(ttl=60, namespace="wait", lock_ttl=5)
    async def f() -> str:
        nonlocal calls
        calls += 1
        return "mine"

    key = f.key_for()
    await raw.set(key + ":lock", b"other", px=5000)

    async def other_process_finishes() -> None:
        await asyncio.sleep(0.2)
        await raw.set(key, b'"theirs"', px=60000)
        await raw.delete(key + ":lock")

    helper = asyncio.create_task(other_process_finishes())
    assert await f() == "theirs"
    await helper
    assert calls == 0


STAMPEDE_WORKER = """
import asyncio, json, sys, time
from forktex_core import cache

async def main(url, prefix, start_at):
    await cache.init(url, prefix=prefix)
    counter = cache.full_key("runs")

    @cache.cached(ttl=60, namespace="xproc")
    async def expensive(x):
        await cache.get_client().incr(counter)
        await asyncio.sleep(0.3)
        return {"x": x}

    await asyncio.sleep(max(0, start_at - time.time()))
    results = await asyncio.gather(*[expensive(5) for _ in range(10)])
    print(json.dumps(results))
    await cache.close()

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def test_stampede_across_processes_runs_once(
    cache_client: str, forktex_redis: Any, tmp_path: Path
) -> None:
    script = tmp_path / "stampede_worker.py"
    script.write_text(STAMPEDE_WORKER)
    start_at = time.time() + 2.0
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            forktex_redis.url,
            cache_client,
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    for out, _ in outs:
        assert json.loads(out) == [{"x": 5}] * 10
    assert await cache.get_json("runs") == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ttl": 0}, InvalidArgument, "ttl"),
        ({"ttl": -5}, InvalidArgument, "ttl"),
        ({"ttl": float("inf")}, InvalidArgument, "ttl"),
        ({"ttl": "60"}, InvalidArgument, "ttl"),
        ({"ttl": True}, InvalidArgument, "ttl"),
        ({"ttl": dt.timedelta(0)}, InvalidArgument, "ttl"),
        ({"ttl": 1, "lock_ttl": 0}, InvalidArgument, "lock_ttl"),
        ({"ttl": 1, "namespace": "bad name"}, InvalidNamespace, "allowed"),
        ({"ttl": 1, "namespace": ""}, InvalidNamespace, "allowed"),
        ({"ttl": 1, "serializer": object()}, InvalidArgument, "serializer"),
        ({"ttl": 1, "cache_none": "no"}, InvalidArgument, "cache_none"),
        ({"ttl": 1, "single_flight": 1}, InvalidArgument, "single_flight"),
        ({"ttl": 1, "ignore": "self"}, InvalidArgument, "ignore"),
    ],
)
def test_cached_rejects_bad_configuration(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        cached(**kwargs)


def test_cached_rejects_sync_functions_and_unknown_ignores() -> None:
    def sync(x: int) -> int:
        return x

    with pytest.raises(InvalidArgument, match="async"):
        cached(ttl=1)(sync)  # type: ignore[arg-type]

    async def f(x: int) -> int:
        return x

    with pytest.raises(InvalidArgument, match=r"names no parameter.*\['x'\]"):
        cached(ttl=1, ignore=("y",))(f)


async def test_without_single_flight(cache_client: str) -> None:
    calls = 0

    @cached(ttl=60, namespace="nosf", single_flight=False)
    async def f() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 1

    await asyncio.gather(*[f() for _ in range(5)])
    assert calls == 1  # in-process coalescing still applies
    assert await f() == 1
    assert calls == 1


async def test_str_arguments_holding_lone_surrogates_get_their_own_entries(
    cache_client: str,
) -> None:
    calls: list[str] = []

    @cached(ttl=60, namespace="surrogates")
    async def echo(text: str) -> int:
        calls.append(text)
        return len(calls)

    assert await echo("\ud800") == 1
    assert await echo("\ud800") == 1  # a hit
    assert await echo("\udc00") == 2 and await echo("\ud800\udc00") == 3
    assert await echo("\U00010000") == 4  # the valid character is not the surrogate pair
    assert len({echo.key_for(t) for t in ["\ud800", "\udc00", "\ud800\udc00", "\U00010000"]}) == 4
