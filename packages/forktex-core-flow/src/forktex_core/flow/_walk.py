# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The synthesised workflow body that walks a graph.

Record the state in the run's log (a ``state`` marker, written together with the next
checkpoint, so it costs no extra round trip), run the state's handler (its steps checkpoint
and replay as usual), wait for the ``advance`` signal if the state is manual, pick the
transition, repeat until a terminal state returns the output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _conditions
from ._context import FlowContext, runtime_of
from ._errors import ConditionError, TransitionError
from ._states import Handler, State, Transition

if TYPE_CHECKING:
    from ._graph import Graph

ADVANCE = "advance"
# A state still busy after this long gets its marker written at once (for pictures).
PREVIEW_AFTER = 0.05


def _keys(payload: Any) -> list[str]:
    return sorted(map(str, payload)) if isinstance(payload, Mapping) else []


def _check(graph: str, state: str, cond: dict[str, Any], payload: Any) -> bool:
    try:
        return _conditions.evaluate(cond, payload)
    except ConditionError as exc:
        raise ConditionError(f"graph {graph!r} state {state!r}: {exc}") from None


def route(graph: str, state: State, outs: list[Transition], payload: Any, wanted: Any) -> str:
    """Pick the one transition out of ``state`` for ``payload`` (or the signal's ``to``)."""
    targets = [t.target for t in outs]
    if wanted is not None:
        if not isinstance(wanted, str) or wanted not in targets:
            raise TransitionError(
                graph,
                state.name,
                f"the advance signal names {wanted!r}, which is not a target of this state",
                targets,
                _keys(payload),
            )
        t = outs[targets.index(wanted)]
        if t.when is not None and not _check(graph, state.name, t.when, payload):
            raise TransitionError(
                graph,
                state.name,
                f"the advance signal names {wanted!r} but its condition "
                f"({t.label()}) does not hold",
                targets,
                _keys(payload),
            )
        return wanted
    matched = [
        t.target for t in outs if t.when is not None and _check(graph, state.name, t.when, payload)
    ]
    if len(matched) == 1:
        return matched[0]
    if matched:
        raise TransitionError(
            graph,
            state.name,
            f"{len(matched)} transition conditions hold ({', '.join(matched)}); exactly one must",
            targets,
            _keys(payload),
        )
    plain = [t.target for t in outs if t.when is None]
    if len(plain) == 1:
        return plain[0]
    if not plain:
        raise TransitionError(
            graph, state.name, "no transition condition holds", targets, _keys(payload)
        )
    raise TransitionError(
        graph,
        state.name,
        "several transitions are possible; the advance signal must name "
        'its target with {"to": ...}',
        targets,
        _keys(payload),
    )


def hand_on(result: Any, signal: Any) -> tuple[Any, Any]:
    """(payload for the next state, requested target) after a manual state's signal.

    No signal payload: the handler's result. Both objects: merged (signal keys win, ``to``
    removed). Otherwise the signal payload (without ``to``).
    """
    if signal is None:
        return result, None
    if isinstance(signal, Mapping):
        wanted = signal.get("to")
        rest = {k: v for k, v in signal.items() if k != "to"}
        if isinstance(result, Mapping):
            return {**result, **rest}, wanted
        return rest, wanted
    return signal, None


def build_body(graph: Graph, states: Mapping[str, State]) -> Handler:
    """The synthesised workflow body that walks ``graph``."""
    name = graph.name
    initial = graph.initial
    assert initial is not None
    table = {
        s.name: (s, s.handler, s.manual, s.terminal, graph.outgoing(s.name))
        for s in states.values()
    }

    async def walk(ctx: FlowContext, payload: Any) -> Any:
        current = initial
        loop = asyncio.get_running_loop()
        runtime = runtime_of(ctx)
        while True:
            st, handler, manual, terminal, outs = table[current]
            if runtime.mark(current, "state"):  # entering the state (not replaying)
                timer = loop.call_later(PREVIEW_AFTER, runtime.preview_marks)
                try:
                    result = await handler(ctx, payload)  # type: ignore[misc,operator]
                finally:
                    timer.cancel()
            else:
                result = await handler(ctx, payload)  # type: ignore[misc,operator]
            if terminal:
                return result
            if manual:
                signal = await ctx.wait_for_signal(ADVANCE)
                payload, wanted = hand_on(result, signal)
                current = route(name, st, outs, payload, wanted)
            else:
                payload = result
                if len(outs) == 1 and outs[0].when is None:
                    current = outs[0].target
                else:
                    current = route(name, st, outs, payload, None)

    walk.__qualname__ = f"graph:{name}:v{graph.version}"
    walk.__forktex_graph__ = graph  # type: ignore[attr-defined]
    return walk
