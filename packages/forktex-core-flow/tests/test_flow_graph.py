# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Graphs: the spec's onboarding sample, branching, loops, validation, dict round trip,
conditions and pictures — against real Postgres."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from forktex_core.flow import (
    ConditionError,
    Flow,
    FlowContext,
    Graph,
    GraphValidationError,
    RunFailed,
    RunStatus,
)
from forktex_core.flow._conditions import describe, evaluate, validate


async def test_spec_onboarding_sample_runs_as_written(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    sent: list[str] = []

    @flow.step
    async def send_verification_email_step(ctx: FlowContext, email: str) -> str:
        sent.append(email)
        return f"sent to {email}"

    # --- the spec's sample, verbatim ---------------------------------------------------
    g = Graph(name="user.onboarding", version=1, initial="email_pending")

    @g.state("email_pending", manual=True)
    async def email_pending(ctx, payload):  # type: ignore[no-untyped-def]
        await send_verification_email_step(ctx, payload["email"])
        return payload

    @g.state("verified", terminal=True)
    async def verified(ctx, payload):  # type: ignore[no-untyped-def]
        return payload

    g.transition("email_pending", "verified")
    flow.register_graph(g)
    # ------------------------------------------------------------------------------------
    async with h.running(flow):
        run_id = await flow.start("user.onboarding", input={"email": "a@example.com"})

        async def waiting() -> bool:
            return (await flow.get_run(run_id)).status is RunStatus.WAITING

        await h.wait_until(waiting)
        await flow.send_signal(run_id, "advance", payload={"code": "abc"})
        out = await flow.result(run_id, timeout=30)
    # the handler's payload and the signal's payload are handed on together, printed as the
    # README shows it (key order kept through the stored output)
    assert repr(out) == "{'email': 'a@example.com', 'code': 'abc'}"
    assert sent == ["a@example.com"]  # the manual state's step ran once, not on replay
    history = await flow.history(run_id)
    assert [(s.kind, s.name) for s in history] == [
        ("state", "email_pending"),
        ("step", send_verification_email_step.__qualname__),
        ("signal", "signal:advance"),
        ("state", "verified"),
    ]
    picture = await flow.picture(run_id)
    assert "class s0 visited" in picture and "class s1 current" in picture


def _review_graph(flow: Flow, name: str = "doc.review") -> Graph:
    @flow.step
    async def score(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "score": len(payload["text"])}

    g = Graph(name=name, version=1, initial="scoring")

    @g.state("scoring")
    async def scoring(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return await score(ctx, payload)

    @g.state("auto_approved", terminal=True)
    async def auto(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "result": "auto"}

    @g.state("review", manual=True)
    async def review(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @g.state("approved", terminal=True)
    async def approved(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "result": "approved"}

    @g.state("rejected", terminal=True)
    async def rejected(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "result": "rejected"}

    g.transition("scoring", "auto_approved", when={"field": "score", "op": "<=", "value": 5})
    g.transition("scoring", "review")  # default
    g.transition("review", "approved")
    g.transition("review", "rejected")
    flow.register_graph(g)
    return g


async def _wait_status(flow: Flow, h: Any, run_id: Any, status: RunStatus) -> None:
    async def check() -> bool:
        return (await flow.get_run(run_id)).status is status

    await h.wait_until(check)


async def test_branching_by_condition_and_by_signal(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    _review_graph(flow)
    async with h.running(flow):
        short = await flow.start("doc.review", input={"text": "hi"})
        assert (await flow.result(short, timeout=30))["result"] == "auto"

        a = await flow.start("doc.review", input={"text": "a long document"})
        b = await flow.start("doc.review", input={"text": "another long one"})
        await _wait_status(flow, h, a, RunStatus.WAITING)
        await _wait_status(flow, h, b, RunStatus.WAITING)
        await flow.send_signal(a, "advance", payload={"to": "approved", "by": "ann"})
        await flow.send_signal(b, "advance", payload={"to": "rejected", "by": "bob"})
        out_a = await flow.result(a, timeout=30)
        out_b = await flow.result(b, timeout=30)
    assert out_a["result"] == "approved" and out_a["by"] == "ann" and "to" not in out_a
    assert out_b["result"] == "rejected" and out_b["score"] == 16
    states_a = [s.name for s in await flow.history(a) if s.kind == "state"]
    assert states_a == ["scoring", "review", "approved"]


async def test_ambiguous_or_unknown_target_fails_naming_state_candidates_and_keys(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    _review_graph(flow)
    async with h.running(flow):
        a = await flow.start("doc.review", input={"text": "a long document"})
        b = await flow.start("doc.review", input={"text": "a long document"})
        await _wait_status(flow, h, a, RunStatus.WAITING)
        await _wait_status(flow, h, b, RunStatus.WAITING)
        await flow.send_signal(a, "advance", payload={"by": "ann"})  # no "to": ambiguous
        await flow.send_signal(b, "advance", payload={"to": "shredded"})
        with pytest.raises(RunFailed) as exc_a:
            await flow.result(a, timeout=30)
        with pytest.raises(RunFailed) as exc_b:
            await flow.result(b, timeout=30)
    err = exc_a.value.error
    assert err["type"] == "TransitionError"
    for part in ("'review'", "approved", "rejected", "by", "score", "text"):
        assert part in err["message"]
    assert "'shredded'" in exc_b.value.error["message"]
    # the failed run's picture shows where it stopped
    assert "class s2 current" in await flow.picture(b)


async def test_no_condition_holds_fails(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    g = Graph("strict", 1, "start")

    @g.state("start")
    async def start(ctx: FlowContext, payload: Any) -> Any:
        return payload

    @g.state("big", terminal=True)
    async def big(ctx: FlowContext, payload: Any) -> Any:
        return "big"

    @g.state("small", terminal=True)
    async def small(ctx: FlowContext, payload: Any) -> Any:
        return "small"

    g.transition("start", "big", when={"field": "n", "op": ">", "value": 10})
    g.transition("start", "small", when={"field": "n", "op": "<", "value": 3})
    flow.register_graph(g)
    async with h.running(flow):
        ok = await flow.start("strict", input={"n": 20})
        bad = await flow.start("strict", input={"n": 5})
        assert await flow.result(ok, timeout=30) == "big"
        with pytest.raises(RunFailed) as exc:
            await flow.result(bad, timeout=30)
    msg = exc.value.error["message"]
    assert "no transition condition holds" in msg and "'start'" in msg and "big, small" in msg
    assert "payload keys: n" in msg


async def test_loops_back_to_an_earlier_state(make_flow: Callable[..., Flow], h: Any) -> None:
    flow = make_flow()
    calls: list[int] = []

    @flow.step
    async def bump(ctx: FlowContext, n: int) -> int:
        calls.append(n)
        return n + 1

    g = Graph("counter", 1, "inc")

    @g.state("inc")
    async def inc(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        return {"n": await bump(ctx, payload["n"])}

    @g.state("check")
    async def check(ctx: FlowContext, payload: dict[str, int]) -> dict[str, int]:
        return payload

    @g.state("done", terminal=True)
    async def done(ctx: FlowContext, payload: dict[str, int]) -> int:
        return payload["n"]

    g.transition("inc", "check")
    g.transition("check", "inc", when={"field": "n", "op": "<", "value": 4})
    g.transition("check", "done")
    flow.register_graph(g)
    async with h.running(flow):
        assert await flow.result(await flow.start("counter", input={"n": 0}), timeout=30) == 4
    assert calls == [0, 1, 2, 3]


async def _noop(ctx: FlowContext, payload: Any) -> Any:
    return payload


def _base() -> Graph:
    g = Graph("bad", 1, "a")
    g.add_state("a", _noop)
    g.add_state("z", _noop, terminal=True)
    g.transition("a", "z")
    return g


def _unknown_target(g: Graph) -> None:
    g.transition("a", "nowhere")


def _unreachable(g: Graph) -> None:
    g.add_state("island", _noop, terminal=True)


def _no_terminal(g: Graph) -> None:
    g.states["z"] = g.states["z"].__class__("z", _noop, False, False)
    g.transition("z", "a")


def _terminal_outgoing(g: Graph) -> None:
    g.add_state("b", _noop, terminal=True)
    g.transition("z", "b")


def _two_unconditional(g: Graph) -> None:
    g.add_state("y", _noop, terminal=True)
    g.transition("a", "y")


def _missing_handler(g: Graph) -> None:
    g.add_state("m", None, terminal=True)
    g.transition("a", "m", when={"field": "x", "op": "exists"})


def _trap(g: Graph) -> None:
    g.add_state("loop", _noop)
    g.transition("a", "loop", when={"field": "x", "op": "exists"})
    g.transition("loop", "loop")


def _unknown_initial(g: Graph) -> None:
    g.initial = "ghost"


def _dead_end(g: Graph) -> None:
    g.add_state("stuck", _noop)
    g.transition("a", "stuck", when={"field": "x", "op": "exists"})


@pytest.mark.parametrize(
    ("mutate", "state", "fragment"),
    [
        (_unknown_target, "nowhere", "target is not a state"),
        (_unreachable, "island", "unreachable"),
        (_no_terminal, None, "no terminal state is reachable"),
        (_terminal_outgoing, "z", "terminal state cannot have outgoing"),
        (_two_unconditional, "a", "2 unconditional transitions"),
        (_missing_handler, "m", "no handler"),
        (_trap, "loop", "no terminal state is reachable from this state"),
        (_unknown_initial, "ghost", "initial state is not a state"),
        (_dead_end, "stuck", "not terminal and has no outgoing"),
    ],
)
def test_validation_errors_name_graph_and_state(
    mutate: Callable[[Graph], None], state: str | None, fragment: str
) -> None:
    g = _base()
    g.validate()
    mutate(g)
    flow = Flow(database_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(GraphValidationError) as exc:
        flow.register_graph(g)
    assert exc.value.graph == "bad"
    assert exc.value.state == state
    assert fragment in str(exc.value) and "graph 'bad'" in str(exc.value)


def test_validation_of_definitions() -> None:
    g = Graph("defs", 1)
    g.add_state("a", _noop)
    with pytest.raises(GraphValidationError, match="defined twice"):
        g.add_state("a", _noop)
    with pytest.raises(GraphValidationError, match="async"):
        g.add_state("sync", lambda ctx, p: p)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConditionError, match="op must be one of"):
        g.transition("a", "b", when={"field": "x", "op": "~", "value": 1})
    g.add_state("t", _noop, terminal=True, manual=True)
    g.transition("a", "t")
    with pytest.raises(GraphValidationError, match="terminal state cannot be manual"):
        g.validate()
    with pytest.raises(GraphValidationError, match="no states"):
        Graph("empty", 1).validate()


def test_conditions_language() -> None:
    payload = {"amount": 250, "tier": "gold", "tags": ["a"], "customer": {"country": "DE"}}
    cases = [
        ({"field": "amount", "op": ">", "value": 100}, True),
        ({"field": "amount", "op": "<=", "value": 100}, False),
        ({"field": "tier", "op": "in", "value": ["gold", "staff"]}, True),
        ({"field": "tier", "op": "not in", "value": ["gold"]}, False),
        ({"field": "customer.country", "op": "==", "value": "DE"}, True),
        ({"field": "missing", "op": "!=", "value": 1}, False),
        ({"field": "missing", "op": "exists"}, False),
        ({"not": {"field": "missing", "op": "exists"}}, True),
        (
            {
                "and": [
                    {"field": "amount", "op": ">=", "value": 250},
                    {
                        "or": [
                            {"field": "tier", "op": "==", "value": "x"},
                            {"field": "tags", "op": "exists"},
                        ]
                    },
                ]
            },
            True,
        ),
    ]
    for cond, expected in cases:
        assert evaluate(validate(cond), payload) is expected, cond
    assert describe(cases[-1][0]) == 'amount >= 250 and (tier == "x" or tags exists)'
    for bad, fragment in [
        ("amount > 1", "must be an object"),
        ({"and": []}, "non-empty list"),
        ({"field": "a", "op": "in", "value": 3}, "needs a list"),
        ({"field": "a", "op": ">", "value": [1]}, "number or string"),
        ({"field": "a", "op": "=="}, "exactly 'field', 'op' and 'value'"),
        ({"field": "", "op": "exists"}, "dotted name"),
        ({"lambda": "x"}, "expected 'and'"),
        ({"field": "a", "op": "==", "value": float("nan")}, "not JSON"),
    ]:
        with pytest.raises(ConditionError, match=fragment):
            validate(bad)
    with pytest.raises(ConditionError, match="ordering needs two numbers or two strings"):
        evaluate(validate({"field": "amount", "op": ">", "value": "x"}), payload)


async def test_to_dict_from_dict_round_trip_runs_the_same(
    make_flow: Callable[..., Flow], h: Any
) -> None:
    flow = make_flow()
    log: list[str] = []

    @flow.step
    async def note(ctx: FlowContext, text: str) -> str:
        log.append(text)
        return text

    @flow.action("classify")
    async def classify(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        await note(ctx, f"classify {payload['amount']}")
        return payload

    @flow.action("finish")
    async def finish(ctx: FlowContext, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "done": True}

    g = Graph("tenant.flow", 1, "classify")
    g.add_state("classify", classify)
    g.add_state("big", "finish", terminal=True)
    g.add_state("small", finish, terminal=True)
    g.transition("classify", "big", when={"field": "amount", "op": ">", "value": 100})
    g.transition("classify", "small")
    data = json.loads(json.dumps(g.to_dict()))
    assert data["states"][0] == {
        "name": "classify",
        "action": "classify",
        "manual": False,
        "terminal": False,
    }
    copy = Graph.from_dict(data, actions=flow)
    assert copy.to_dict() == data
    copy.name = "tenant.flow.copy"
    flow.register_graph(g)
    flow.register_graph(copy)
    async with h.running(flow):
        outs = {}
        for name in ("tenant.flow", "tenant.flow.copy"):
            for amount in (50, 500):
                rid = await flow.start(name, input={"amount": amount})
                outs[(name, amount)] = (
                    await flow.result(rid, timeout=30),
                    [s.name for s in await flow.history(rid) if s.kind == "state"],
                )
    assert outs[("tenant.flow", 50)] == outs[("tenant.flow.copy", 50)]
    assert outs[("tenant.flow", 500)] == outs[("tenant.flow.copy", 500)]
    assert outs[("tenant.flow", 500)][1] == ["classify", "big"]
    assert (
        flow.fingerprints()[("tenant.flow", 1)].hash
        == flow.fingerprints()[("tenant.flow.copy", 1)].hash
    )

    bad = dict(data, states=[*data["states"][:2], dict(data["states"][2], action="nope")])
    with pytest.raises(GraphValidationError, match=r"unknown action 'nope'.*classify, finish"):
        Graph.from_dict(bad, actions=flow)
    unresolved = Graph.from_dict(bad)
    with pytest.raises(GraphValidationError, match="state 'small': unknown action 'nope'"):
        flow.register_graph(unresolved)
    malformed = dict(data, transitions=[{"from": "classify", "to": "big", "when": {"field": 1}}])
    with pytest.raises(ConditionError, match=r"'tenant\.flow'"):
        Graph.from_dict(malformed, actions=flow)
    with pytest.raises(GraphValidationError, match="unknown keys"):
        Graph.from_dict(dict(data, code="import os"), actions=flow)

    def plain(ctx: Any, payload: Any) -> Any:  # not an action: cannot be serialised
        return payload

    g2 = Graph("local", 1)

    async def handler(ctx: FlowContext, payload: Any) -> Any:
        return payload

    g2.add_state("only", handler, terminal=True)
    with pytest.raises(GraphValidationError, match=r"@flow\.action"):
        g2.to_dict()


def test_pictures_have_expected_nodes_and_edges() -> None:
    flow = Flow(database_url="postgresql://nobody@127.0.0.1:1/none")
    g = _review_graph(flow)
    mermaid = g.to_mermaid()
    assert mermaid.startswith("stateDiagram-v2\n")
    for line in (
        'state "scoring" as s0',
        'state "review (manual)" as s2',
        "[*] --> s0",
        "s0 --> s1: score <= 5",
        "s0 --> s2\n",
        "s2 --> s3",
        "s2 --> s4",
        "s1 --> [*]",
        "s3 --> [*]",
    ):
        assert line in mermaid, line
    assert "classDef" not in mermaid
    dot = g.to_dot()
    assert dot.startswith('digraph "doc.review v1" {')
    for line in (
        '"__start__" -> "scoring";',
        '"scoring" -> "auto_approved" [label="score <= 5"];',
        '"scoring" -> "review";',
        '"review" -> "approved";',
        '"review" -> "rejected";',
        '"approved" [label="approved", peripheries=2];',
        '"review" [label="review\\n(manual)"];',
    ):
        assert line in dot, line
    marked = g.to_dot(current="review", visited=["scoring", "review"], path=[("scoring", "review")])
    assert '"review" [label="review\\n(manual)", fillcolor="#ffd27f", penwidth=3];' in marked
    assert '"scoring" [label="scoring", fillcolor="#d8ecff"];' in marked
    assert '"scoring" -> "review" [penwidth=2.5, color="#c77700"];' in marked
    marked_m = g.to_mermaid(current="review", visited=["scoring", "review"])
    assert "class s0 visited" in marked_m and "class s2 current" in marked_m
