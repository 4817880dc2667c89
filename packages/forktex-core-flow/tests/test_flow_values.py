# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every value is checked before it reaches Postgres, and stored values keep their key order."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from forktex_core.flow import (
    Flow,
    FlowContext,
    Graph,
    GraphValidationError,
    InvalidArgument,
    JsonSerializer,
    NotSerialisable,
    RunFailed,
    RunStatus,
)

NOWHERE = "postgresql://app:secret@127.0.0.1:1/none"

# durations that are not a finite number of seconds Postgres can add to now()
BAD_SECONDS: list[Any] = [float("inf"), float("-inf"), float("nan"), -1, 1e13, "1", True]

# text Postgres cannot store: lone surrogates (raw or escaped by the serializer), NUL
UNSTORABLE: list[Any] = ["\ud800", {"k": "\udfff"}, ["ok", "\ud83d"], {"\udc00": 1}, "a\x00b"]


async def test_durations_inside_a_workflow_are_checked(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    def outcome(call: Callable[[], Any]) -> str:
        try:
            call().close()  # the coroutine is never awaited: validation happens at the call
        except InvalidArgument:
            return "InvalidArgument"
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            return type(exc).__name__
        return "accepted"

    @flow.workflow(name="values.durations", version=1)
    async def wf(ctx: FlowContext) -> dict[str, list[str]]:
        return {
            "sleep": [outcome(lambda v=v: ctx.sleep(v)) for v in [*BAD_SECONDS, None]],
            "signal timeout": [
                outcome(lambda v=v: ctx.wait_for_signal("x", timeout=v)) for v in BAD_SECONDS
            ],
        }

    async with h.running(flow):
        out = await flow.result(await flow.start("values.durations"), timeout=20)
    assert out == {
        "sleep": ["InvalidArgument"] * (len(BAD_SECONDS) + 1),
        "signal timeout": ["InvalidArgument"] * len(BAD_SECONDS),
    }


@pytest.mark.parametrize("value", [*BAD_SECONDS, 0], ids=repr)
def test_durations_of_settings_and_definitions_are_checked(value: Any) -> None:
    settings = ["lease", "heartbeat", "reaper_interval", "poll_interval", "retention"]
    for name in settings:
        with pytest.raises(InvalidArgument, match=name):
            Flow(database_url=NOWHERE, **{name: value})
    if value != 0:
        with pytest.raises(InvalidArgument, match="shutdown_grace"):
            Flow(database_url=NOWHERE, shutdown_grace=value)
    flow = Flow(database_url=NOWHERE)
    for option in ("timeout", "backoff", "max_backoff"):
        with pytest.raises(InvalidArgument, match=option):
            flow.step(**{option: value})
        with pytest.raises(InvalidArgument, match=option):
            flow.transaction(**{option: value})
    with pytest.raises(InvalidArgument, match="timeout"):
        flow.workflow(name="w", timeout=value)
    with pytest.raises(GraphValidationError, match="timeout"):
        Graph(name="g", timeout=value)


async def test_a_run_with_an_unstorable_sleep_or_result_fails_instead_of_hanging(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.workflow(name="values.far_sleep", version=1)
    async def far(ctx: FlowContext) -> None:
        await ctx.sleep(1e13)  # beyond the last timestamp Postgres can store

    @flow.workflow(name="values.bad_output", version=1)
    async def bad(ctx: FlowContext) -> str:
        return "\ud800"

    async with h.running(flow):
        far_id = await flow.start("values.far_sleep")
        bad_id = await flow.start("values.bad_output")
        with pytest.raises(RunFailed) as far_err:
            await flow.result(far_id, timeout=20)
        with pytest.raises(RunFailed) as bad_err:
            await flow.result(bad_id, timeout=20)
    assert far_err.value.error["type"] == "InvalidArgument"
    assert "sleep" in far_err.value.error["message"]
    assert bad_err.value.error["type"] == "NotSerialisable"
    assert "surrogate" in bad_err.value.error["message"]


@pytest.mark.parametrize("escaped", [False, True], ids=["raw", "escaped"])
async def test_unstorable_text_is_not_serialisable_everywhere(
    make_flow: Callable[..., Flow], h: Any, escaped: bool
) -> None:
    serializer: Any = JsonSerializer()
    if escaped:  # a serializer that escapes non-ASCII: "\ud800" becomes the text \ud800

        class Ascii:
            def dumps(self, v: Any) -> str:
                return json.dumps(v, allow_nan=False)

            def loads(self, text: str) -> Any:
                return json.loads(text)

        serializer = Ascii()
    flow = make_flow(serializer=serializer)

    @flow.step
    async def produce(ctx: FlowContext, i: int) -> Any:
        return UNSTORABLE[i]

    @flow.workflow(name="values.unstorable", version=1)
    async def wf(ctx: FlowContext, _: Any) -> list[str]:
        out = []
        for i in range(len(UNSTORABLE)):
            try:
                await produce(ctx, i)
            except NotSerialisable as exc:
                out.append(f"NotSerialisable: {exc}"[:35])
            else:
                out.append("stored")
        return out

    @flow.workflow(name="values.waits", version=1)
    async def waits(ctx: FlowContext) -> Any:
        return await ctx.wait_for_signal("never")

    waiting = await flow.start("values.waits")
    for value in UNSTORABLE:
        with pytest.raises(NotSerialisable):
            await flow.start("values.unstorable", input=value)
        with pytest.raises(NotSerialisable):
            await flow.start("values.unstorable", metadata={"m": value})
        with pytest.raises(NotSerialisable):
            await flow.send_signal(waiting, "x", payload=value)
    async with h.running(flow):
        out = await flow.result(await flow.start("values.unstorable"), timeout=20)
    assert out == ["NotSerialisable: the result of step"] * len(UNSTORABLE)


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", ""], ids=repr)
async def test_unstorable_names_are_invalid_arguments(
    make_flow: Callable[..., Flow], text: str
) -> None:
    flow = make_flow()

    @flow.workflow(name="values.named", version=1)
    async def wf(ctx: FlowContext) -> None:
        return None

    run_id = await flow.start("values.named")
    with pytest.raises(InvalidArgument, match="signal name"):
        await flow.send_signal(run_id, text)
    with pytest.raises(InvalidArgument, match="idempotency_key"):
        await flow.start("values.named", idempotency_key=text)
    with pytest.raises(InvalidArgument, match="step name"):
        flow.step(name=text)
    with pytest.raises(InvalidArgument, match="workflow name"):
        flow.workflow(name=text)
    with pytest.raises(InvalidArgument, match="action name"):
        flow.action(text)
    with pytest.raises(InvalidArgument, match="worker_id"):
        Flow(database_url=NOWHERE, worker_id=text)


async def test_key_order_is_kept_for_input_output_signals_and_steps(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()

    @flow.step
    async def shape(ctx: FlowContext) -> dict[str, int]:
        return {"zz": 1, "a": 2, "mmm": 3}

    @flow.workflow(name="values.order", version=1)
    async def wf(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        signal = await ctx.wait_for_signal("go")
        return {"zeta": payload, "alpha": signal, "step": await shape(ctx), "b": 0}

    async with h.running(flow):
        run_id = await flow.start("values.order", input={"z": 1, "a": 2, "mm": 3})

        async def waiting() -> bool:
            return (await flow.get_run(run_id)).status is RunStatus.WAITING

        await h.wait_until(waiting)
        await flow.send_signal(run_id, "go", payload={"yy": 1, "b": 2})
        out = await flow.result(run_id, timeout=20)
    info = await flow.get_run(run_id)
    for value in (out, info.output):
        assert list(value) == ["zeta", "alpha", "step", "b"]
        assert list(value["zeta"]) == ["z", "a", "mm"]
        assert list(value["alpha"]) == ["yy", "b"]
        assert list(value["step"]) == ["zz", "a", "mmm"]
    assert list(info.input) == ["z", "a", "mm"]


async def test_non_determinism_names_the_kinds_when_only_the_kind_changed(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    flip = {"tx": False}

    @flow.step(name="one")
    async def as_step(ctx: FlowContext) -> int:
        return 1

    @flow.transaction(name="one")
    async def as_tx(ctx: FlowContext, session: Any) -> int:
        return 1

    @flow.workflow(name="values.kinds", version=1)
    async def wf(ctx: FlowContext) -> int:
        out = await (as_tx(ctx) if flip["tx"] else as_step(ctx))
        await ctx.wait_for_signal("go")
        return out

    async with h.running(flow):
        run_id = await flow.start("values.kinds")

        async def waiting() -> bool:
            return (await flow.get_run(run_id)).status is RunStatus.WAITING

        await h.wait_until(waiting)
        flip["tx"] = True
        await flow.send_signal(run_id, "go")
        with pytest.raises(RunFailed) as err:
            await flow.result(run_id, timeout=20)
    message = err.value.error["message"]
    assert "step 'one'" in message and "transaction 'one'" in message
