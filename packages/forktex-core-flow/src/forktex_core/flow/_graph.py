# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Declarative state-machine graphs: building, validation, serialisation, pictures.

``flow.register_graph(g)`` validates ``g`` and registers a workflow (same name and version)
whose body (:mod:`._walk`) walks the machine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from . import _conditions
from ._defs import check_async, positional_count, positive_number
from ._errors import ConditionError, GraphValidationError, InvalidArgument
from ._hashing import Fingerprint, composite, fingerprint
from ._pictures import dot, mermaid
from ._states import Handler, State, Transition

H = TypeVar("H", bound=Handler)

FORMAT = 1


def action_name(handler: object) -> str | None:
    """The ``@flow.action`` name of a handler, if it is one."""
    name = getattr(handler, "__forktex_action__", None)
    return name if isinstance(name, str) else None


def _name(value: object, what: str, graph: str, state: str | None = None) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise GraphValidationError(
            graph,
            state,
            f"{what} must be a non-empty string of at most 200 characters, got {value!r}",
        )
    return value


class Graph:
    """A declarative state machine that runs durably as a workflow.

    States have an ``async def handler(ctx, payload)`` whose return value is the payload of
    the next state. A ``manual=True`` state runs its handler, then waits durably for an
    ``advance`` signal (``flow.send_signal(run_id, "advance", payload=...)``); a
    ``terminal=True`` state ends the run with its handler's return value as the output.
    Transitions may carry a condition (JSON data, see :mod:`forktex_core.flow` README), or
    the ``advance`` signal may name its target with ``{"to": "state"}``; exactly one must
    match. Loops are allowed.

    Example::

        g = Graph(name="user.onboarding", version=1, initial="email_pending")

        @g.state("email_pending", manual=True)
        async def email_pending(ctx, payload):
            await send_verification_email_step(ctx, payload["email"])
            return payload

        @g.state("verified", terminal=True)
        async def verified(ctx, payload):
            return payload

        g.transition("email_pending", "verified")
        flow.register_graph(g)
        run_id = await flow.start("user.onboarding", input={"email": "a@example.com"})
        await flow.send_signal(run_id, "advance", payload={"code": "abc"})
    """

    def __init__(
        self,
        name: str,
        version: int = 1,
        initial: str | None = None,
        *,
        timeout: float | None = None,
        description: str | None = None,
    ) -> None:
        self.name = _name(name, "graph name", str(name))
        if ":" in name:
            raise GraphValidationError(name, None, "graph name must not contain ':'")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise GraphValidationError(name, None, f"version must be an int >= 1, got {version!r}")
        self.version = version
        self.initial = None if initial is None else _name(initial, "initial", name)
        try:
            self.timeout = positive_number(timeout, "timeout", allow_none=True)
        except InvalidArgument as exc:
            raise GraphValidationError(name, None, str(exc)) from None
        self.description = description
        self.states: dict[str, State] = {}
        self.transitions: list[Transition] = []

    def __repr__(self) -> str:
        return (
            f"Graph({self.name!r}, version={self.version}, states={list(self.states)}, "
            f"transitions={len(self.transitions)})"
        )

    # -- building ---------------------------------------------------------------------------

    def state(self, name: str, *, manual: bool = False, terminal: bool = False) -> Callable[[H], H]:
        """Decorator: make an ``async def (ctx, payload)`` the handler of state ``name``.

        Example::

            @g.state("review", manual=True)
            async def review(ctx, payload):
                return payload
        """

        def decorate(fn: H) -> H:
            self.add_state(name, fn, manual=manual, terminal=terminal)
            return fn

        return decorate

    def add_state(
        self,
        name: str,
        handler: Handler | str | None,
        *,
        manual: bool = False,
        terminal: bool = False,
    ) -> None:
        """Add state ``name`` with a handler function, or the name of a ``@flow.action``.

        Example::

            g.add_state("notify", "send_verification_email")
        """
        _name(name, "state name", self.name)
        if name in self.states:
            raise GraphValidationError(self.name, name, "state is defined twice")
        if callable(handler):
            sdef = getattr(handler, "__forktex_step__", None)
            inner = handler if sdef is None else sdef.fn
            try:
                check_async(inner, f"the handler of state {name!r}")
            except Exception as exc:
                raise GraphValidationError(self.name, name, str(exc)) from None
            if positional_count(inner) < 2:
                raise GraphValidationError(self.name, name, "a handler must accept (ctx, payload)")
        elif handler is not None and not isinstance(handler, str):
            raise GraphValidationError(
                self.name,
                name,
                f"handler must be an async function or an action name, got {handler!r}",
            )
        self.states[name] = State(name, handler, bool(manual), bool(terminal))
        if self.initial is None:
            self.initial = name

    def transition(self, source: str, target: str, *, when: Any = None) -> None:
        """Add an edge; ``when`` is a condition over the payload (JSON data) or None.

        Example::

            g.transition("review", "approved", when={"field": "score", "op": ">=", "value": 7})
            g.transition("review", "rejected")      # the default when no condition holds
        """
        _name(source, "transition source", self.name)
        _name(target, "transition target", self.name, source)
        cond = None
        if when is not None:
            try:
                cond = _conditions.validate(when, f"transition {source!r} -> {target!r}")
            except ConditionError as exc:
                raise ConditionError(f"graph {self.name!r}: {exc}") from None
        self.transitions.append(Transition(source, target, cond))

    # -- validation -------------------------------------------------------------------------

    def outgoing(self, state: str) -> list[Transition]:
        """The transitions leaving ``state``, in the order they were added."""
        return [t for t in self.transitions if t.source == state]

    def validate(self) -> None:
        """Check the structure; raise :class:`GraphValidationError` naming graph and state.

        Example::

            g.validate()
        """
        name = self.name
        if not self.states:
            raise GraphValidationError(name, None, "the graph has no states")
        if self.initial not in self.states:
            raise GraphValidationError(
                name,
                self.initial,
                "the initial state is not a state of this graph "
                f"(states: {', '.join(self.states)})",
            )
        for st in self.states.values():
            if st.handler is None:
                raise GraphValidationError(
                    name,
                    st.name,
                    "the state has no handler; decorate one with "
                    "@g.state(...) or name a @flow.action",
                )
            if st.terminal and st.manual:
                raise GraphValidationError(name, st.name, "a terminal state cannot be manual")
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            for end, role in ((t.source, "source"), (t.target, "target")):
                if end not in self.states:
                    raise GraphValidationError(
                        name,
                        end,
                        f"transition {t.source!r} -> {t.target!r}: {role} is not "
                        f"a state of this graph (states: {', '.join(self.states)})",
                    )
            if (t.source, t.target) in seen:
                raise GraphValidationError(
                    name,
                    t.source,
                    f"duplicate transition {t.source!r} -> {t.target!r}; "
                    "combine the conditions with 'or'",
                )
            seen.add((t.source, t.target))
        for st in self.states.values():
            outs = self.outgoing(st.name)
            if st.terminal and outs:
                raise GraphValidationError(
                    name,
                    st.name,
                    "a terminal state cannot have outgoing transitions "
                    f"(to {', '.join(t.target for t in outs)})",
                )
            if not st.terminal and not outs:
                raise GraphValidationError(
                    name, st.name, "the state is not terminal and has no outgoing transition"
                )
            plain = [t.target for t in outs if t.when is None]
            if not st.manual and len(plain) > 1:
                raise GraphValidationError(
                    name,
                    st.name,
                    f"{len(plain)} unconditional transitions ({', '.join(plain)}) "
                    "from a non-manual state; give all but one a condition, or make the "
                    "state manual so the advance signal names its target",
                )
        reachable = self._closure([self.initial], forward=True)
        for sname in self.states:
            if sname not in reachable:
                raise GraphValidationError(
                    name, sname, f"the state is unreachable from the initial state {self.initial!r}"
                )
        terminals = [s.name for s in self.states.values() if s.terminal]
        if not terminals:
            raise GraphValidationError(name, None, "no terminal state is reachable")
        finishing = self._closure(terminals, forward=False)
        for sname in self.states:
            if sname not in finishing:
                raise GraphValidationError(
                    name, sname, "no terminal state is reachable from this state"
                )

    def _closure(self, start: Iterable[str | None], *, forward: bool) -> set[str]:
        found = {s for s in start if s is not None}
        todo = list(found)
        while todo:
            cur = todo.pop()
            for t in self.transitions:
                a, b = (t.source, t.target) if forward else (t.target, t.source)
                if a == cur and b not in found:
                    found.add(b)
                    todo.append(b)
        return found

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description; handlers must be ``@flow.action`` functions or names.

        Example::

            data = g.to_dict(); json.dumps(data)
            same = Graph.from_dict(data, actions=flow)
        """
        states = []
        for st in self.states.values():
            act = st.handler if isinstance(st.handler, str) else action_name(st.handler)
            if act is None:
                raise GraphValidationError(
                    self.name,
                    st.name,
                    'only handlers registered with @flow.action("name") '
                    "can be serialised; register this handler as an action",
                )
            states.append(
                {"name": st.name, "action": act, "manual": st.manual, "terminal": st.terminal}
            )
        return {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "initial": self.initial,
            "timeout": self.timeout,
            "description": self.description,
            "states": states,
            "transitions": [
                {"from": t.source, "to": t.target, "when": t.when} for t in self.transitions
            ],
        }

    @classmethod
    def from_dict(cls, data: Any, actions: Any = None) -> Graph:
        """Build a graph from :meth:`to_dict` output (e.g. stored by an API); never evals.

        ``actions`` (a ``Flow`` or a mapping of name to handler) resolves action names now;
        otherwise ``flow.register_graph`` resolves them. Unknown actions and malformed
        conditions raise clear errors.

        Example::

            g = Graph.from_dict(json.loads(body), actions=flow)
            flow.register_graph(g)
        """
        if not isinstance(data, Mapping):
            raise GraphValidationError("?", None, f"a graph must be an object, got {data!r}")
        gname = data.get("name")
        label = gname if isinstance(gname, str) else "?"
        allowed = {
            "format",
            "name",
            "version",
            "initial",
            "timeout",
            "description",
            "states",
            "transitions",
        }
        extra = set(data) - allowed
        if extra:
            raise GraphValidationError(label, None, f"unknown keys {sorted(map(str, extra))}")
        if data.get("format", FORMAT) != FORMAT:
            raise GraphValidationError(label, None, f"unsupported format {data.get('format')!r}")
        graph = cls(
            gname,  # type: ignore[arg-type]
            data.get("version", 1),
            data.get("initial"),
            timeout=data.get("timeout"),
            description=data.get("description"),
        )
        states = data.get("states")
        if not isinstance(states, list):
            raise GraphValidationError(label, None, "'states' must be a list")
        table = _action_table(actions)
        for item in states:
            if not isinstance(item, Mapping) or not set(item) <= {
                "name",
                "action",
                "manual",
                "terminal",
            }:
                raise GraphValidationError(
                    label,
                    None,
                    "each state must be an object with name, action, manual, "
                    f"terminal; got {item!r}",
                )
            sname = item.get("name")
            act = item.get("action")
            if not isinstance(act, str) or not act:
                raise GraphValidationError(label, str(sname), "'action' must name an action")
            for flag in ("manual", "terminal"):
                if not isinstance(item.get(flag, False), bool):
                    raise GraphValidationError(label, str(sname), f"{flag!r} must be true/false")
            handler: Handler | str = act
            if table is not None:
                handler = resolve_action(table, act, label, str(sname))
            graph.add_state(
                sname,  # type: ignore[arg-type]
                handler,
                manual=bool(item.get("manual", False)),
                terminal=bool(item.get("terminal", False)),
            )
        transitions = data.get("transitions", [])
        if not isinstance(transitions, list):
            raise GraphValidationError(label, None, "'transitions' must be a list")
        for item in transitions:
            if (
                not isinstance(item, Mapping)
                or not {"from", "to"} <= set(item)
                or not set(item) <= {"from", "to", "when"}
            ):
                raise GraphValidationError(
                    label, None, f"each transition must be {{from, to, when?}}, got {item!r}"
                )
            graph.transition(item["from"], item["to"], when=item.get("when"))
        if graph.initial is None:
            raise GraphValidationError(label, None, "the graph has no states")
        return graph

    def resolved(self, actions: Mapping[str, Handler]) -> dict[str, State]:
        """States with action names replaced by the registered handlers."""
        out: dict[str, State] = {}
        for st in self.states.values():
            handler = st.handler
            if isinstance(handler, str):
                handler = resolve_action(actions, handler, self.name, st.name)
            out[st.name] = State(st.name, handler, st.manual, st.terminal)
        return out

    # -- fingerprint and pictures -----------------------------------------------------------

    def fingerprint(self, states: Mapping[str, State]) -> Fingerprint:
        """Hash of the structure and every handler body (for the versioning gate)."""
        structure = {
            "initial": self.initial,
            "states": [[s.name, s.manual, s.terminal] for s in states.values()],
            "transitions": [[t.source, t.target, t.when] for t in self.transitions],
        }
        parts: list[tuple[str, str | Fingerprint]] = [
            ("structure", json.dumps(structure, sort_keys=True))
        ]
        for st in states.values():
            assert st.handler is not None and not isinstance(st.handler, str)
            parts.append((f"state:{st.name}", fingerprint(st.handler)))
        return composite(parts)

    def to_mermaid(
        self,
        *,
        current: str | None = None,
        visited: Iterable[str] = (),
        path: Iterable[tuple[str, str]] = (),
    ) -> str:
        """A Mermaid ``stateDiagram-v2``; ``current``/``visited`` states are highlighted.

        Example::

            print(g.to_mermaid())
        """
        return mermaid(self, current, set(visited), set(path))

    def to_dot(
        self,
        *,
        current: str | None = None,
        visited: Iterable[str] = (),
        path: Iterable[tuple[str, str]] = (),
    ) -> str:
        """A Graphviz DOT digraph; ``current``/``visited`` states are highlighted.

        Example::

            Path("onboarding.dot").write_text(g.to_dot())
        """
        return dot(self, current, set(visited), set(path))


def _action_table(actions: Any) -> Mapping[str, Handler] | None:
    if actions is None:
        return None
    table = getattr(actions, "actions", actions)
    if not isinstance(table, Mapping):
        raise GraphValidationError(
            "?", None, f"actions must be a Flow or a mapping, got {actions!r}"
        )
    return table


def resolve_action(actions: Mapping[str, Handler], name: str, graph: str, state: str) -> Handler:
    """The handler registered as action ``name``, or a GraphValidationError."""
    handler = actions.get(name)
    if handler is None:
        known = ", ".join(sorted(actions)) or "(none)"
        raise GraphValidationError(
            graph,
            state,
            f"unknown action {name!r}; registered actions: {known}. "
            "Register it with @flow.action(name)",
        )
    return handler
