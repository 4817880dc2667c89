# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A graph's picture as SVG, laid out in pure Python (no Graphviz, no browser library).

A small layered layout, left to right like ``rankdir=LR`` in the DOT export: edges that
close a cycle are found by a depth-first walk from the initial state and drawn as arcs
below the boxes; every other edge goes from a lower rank to a higher one, where a state's
rank is the longest path to it from the initial state. Inside a rank, states are ordered
by a few barycentre sweeps (fewer crossings). Graph pictures are small (tens of states),
so this is instant; the run's current state, the visited ones and the edges it took are
highlighted with the colours of the Mermaid and DOT exports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._html import esc

CHAR_W = 7.2  # average advance of the 13 px sans-serif label font
NODE_H = 40.0
MANUAL_H = 52.0
GAP_X = 70.0
GAP_Y = 28.0
MARGIN = 24.0
START_W = 36.0

VISITED_FILL, VISITED_STROKE = "#d8ecff", "#3b7dd8"
CURRENT_FILL, CURRENT_STROKE = "#ffd27f", "#c77700"
PLAIN_FILL, PLAIN_STROKE = "#ffffff", "#5b6573"


class _State(Protocol):
    manual: bool
    terminal: bool


class _Transition(Protocol):
    source: str
    target: str

    def label(self) -> str: ...


class Drawable(Protocol):
    """What the picture needs of a graph (a ``forktex_core.flow.Graph`` is one)."""

    name: str
    version: int
    initial: str | None

    @property
    def states(self) -> Mapping[str, Any]: ...

    @property
    def transitions(self) -> Sequence[Any]: ...


@dataclass
class _Box:
    name: str
    rank: int
    order: float
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


def _back_edges(names: list[str], initial: str | None, edges: list[tuple[str, str]]) -> set[int]:
    """Indexes of the edges that close a cycle (target on the DFS stack)."""
    out: dict[str, list[int]] = {n: [] for n in names}
    for i, (s, _) in enumerate(edges):
        out[s].append(i)
    state: dict[str, int] = {}  # 1 on stack, 2 done
    back: set[int] = set()
    roots = ([initial] if initial in out else []) + names
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, k = stack[-1]
            if k < len(out[node]):
                stack[-1] = (node, k + 1)
                i = out[node][k]
                target = edges[i][1]
                if state.get(target) == 1:
                    back.add(i)
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def _ranks(names: list[str], forward: list[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a source over the forward (acyclic) edges."""
    indeg = {n: 0 for n in names}
    out: dict[str, list[str]] = {n: [] for n in names}
    for s, t in forward:
        if s != t:
            out[s].append(t)
            indeg[t] += 1
    rank = {n: 0 for n in names}
    ready = [n for n in names if indeg[n] == 0]
    while ready:
        node = ready.pop(0)
        for t in out[node]:
            rank[t] = max(rank[t], rank[node] + 1)
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return rank


def layout(
    graph: Drawable,
) -> tuple[dict[str, _Box], list[tuple[str, str, str, bool]], float, float]:
    """Boxes by state, edges (source, target, label, is_back) and the picture's size."""
    names = list(graph.states)
    edges = [
        (t.source, t.target, t.label())
        for t in graph.transitions
        if t.source in graph.states and t.target in graph.states
    ]
    pairs = [(s, t) for s, t, _ in edges]
    back = _back_edges(names, graph.initial, pairs)
    forward = [p for i, p in enumerate(pairs) if i not in back]
    rank = _ranks(names, forward)
    boxes: dict[str, _Box] = {}
    for i, name in enumerate(names):
        st = graph.states[name]
        label_w = max(len(name), 8 if st.manual else 0) * CHAR_W
        boxes[name] = _Box(
            name,
            rank[name],
            float(i),
            w=max(96.0, label_w + 28),
            h=MANUAL_H if st.manual else NODE_H,
        )
    layers: dict[int, list[_Box]] = {}
    for box in boxes.values():
        layers.setdefault(box.rank, []).append(box)
    preds: dict[str, list[str]] = {n: [] for n in names}
    succs: dict[str, list[str]] = {n: [] for n in names}
    for s, t in forward:
        preds[t].append(s)
        succs[s].append(t)
    for _ in range(4):  # barycentre sweeps, down then up
        for r in sorted(layers)[1:]:
            _sweep(layers[r], preds, boxes)
        for r in sorted(layers, reverse=True)[1:]:
            _sweep(layers[r], succs, boxes)
    col_w = {r: max(b.w for b in layer) for r, layer in layers.items()}
    col_h = {r: sum(b.h for b in layer) + GAP_Y * (len(layer) - 1) for r, layer in layers.items()}
    height = max(col_h.values(), default=NODE_H)
    x = MARGIN + START_W
    for r in sorted(layers):
        y = MARGIN + (height - col_h[r]) / 2
        for box in sorted(layers[r], key=lambda b: b.order):
            box.x, box.y = x + (col_w[r] - box.w) / 2, y
            y += box.h + GAP_Y
        x += col_w[r] + GAP_X
    has_back = bool(back)
    total_h = MARGIN * 2 + height + (40.0 + 14.0 * len(back) if has_back else 0.0)
    drawn = [(s, t, label, i in back) for i, (s, t, label) in enumerate(edges)]
    return boxes, drawn, x - GAP_X + MARGIN, total_h


def _sweep(layer: list[_Box], neighbours: dict[str, list[str]], boxes: dict[str, _Box]) -> None:
    for box in layer:
        near = [boxes[n].order for n in neighbours[box.name]]
        if near:
            box.order = sum(near) / len(near)
    for i, box in enumerate(sorted(layer, key=lambda b: b.order)):
        box.order = float(i)


def render(
    graph: Drawable,
    *,
    current: str | None = None,
    visited: Iterable[str] = (),
    path: Iterable[tuple[str, str]] = (),
) -> str:
    """The SVG document of ``graph``, with ``current``, ``visited`` and ``path`` marked.

    Example::

        svg = render(flow.graph("user.onboarding"), current="review", visited={"email_pending"})
    """
    seen = set(visited)
    taken = set(path)
    boxes, edges, width, height = layout(graph)
    body: list[str] = []
    body.append(
        "<defs>"
        + "".join(
            f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerUnits="userSpaceOnUse" markerWidth="9" '
            f'markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
            for k, colour in (("plain", PLAIN_STROKE), ("taken", CURRENT_STROKE))
        )
        + "</defs>"
    )
    if graph.initial in boxes:
        first = boxes[graph.initial]
        cy = first.y + first.h / 2
        body.append(
            f'<circle class="start" cx="{MARGIN + 6:.1f}" cy="{cy:.1f}" r="6" fill="#333"/>'
        )
        body.append(
            f'<path d="M{MARGIN + 12:.1f},{cy:.1f} L{first.x - 2:.1f},{cy:.1f}" '
            f'stroke="{PLAIN_STROKE}" stroke-width="1.4" fill="none" '
            'marker-end="url(#arrow-plain)"/>'
        )
    bottom = max((b.y + b.h for b in boxes.values()), default=0.0)
    lane = 0
    for source, target, label, is_back in edges:
        a, b = boxes[source], boxes[target]
        hot = (source, target) in taken
        colour, width_px = (CURRENT_STROKE, 2.5) if hot else (PLAIN_STROKE, 1.4)
        marker = "taken" if hot else "plain"
        if source == target:
            x0, y0 = a.x + a.w * 0.35, a.y
            x1 = a.x + a.w * 0.65
            top = y0 - 34
            d = f"M{x0:.1f},{y0:.1f} C{x0:.1f},{top:.1f} {x1:.1f},{top:.1f} {x1:.1f},{y0:.1f}"
            lx, ly = (x0 + x1) / 2, y0 - 30
        elif is_back or b.rank <= a.rank:
            lane += 1
            depth = bottom + 18 + 14 * lane
            x0, y0 = a.x + a.w / 2, a.y + a.h
            x1, y1 = b.x + b.w / 2, b.y + b.h
            d = f"M{x0:.1f},{y0:.1f} C{x0:.1f},{depth:.1f} {x1:.1f},{depth:.1f} {x1:.1f},{y1:.1f}"
            lx, ly = (x0 + x1) / 2, depth - 4
        else:
            x0, y0 = a.x + a.w, a.y + a.h / 2
            x1, y1 = b.x, b.y + b.h / 2
            mid = (x0 + x1) / 2
            d = f"M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1 - 2:.1f},{y1:.1f}"
            lx, ly = mid, (y0 + y1) / 2 - 6
        cls = "edge taken" if hot else "edge"
        body.append(
            f'<path class="{cls}" data-from="{esc(source)}" data-to="{esc(target)}" d="{d}" '
            f'stroke="{colour}" stroke-width="{width_px}" fill="none" '
            f'marker-end="url(#arrow-{marker})"><title>{esc(source)} → {esc(target)}'
            f"{esc(': ' + label) if label else ''}</title></path>"
        )
        if label:
            body.append(
                f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="middle" font-size="10" '
                f'fill="#444">{esc(label if len(label) <= 40 else label[:39] + "…")}</text>'
            )
    for name, box in boxes.items():
        st = graph.states[name]
        if name == current:
            fill, stroke, sw, cls = CURRENT_FILL, CURRENT_STROKE, 3.0, "state current"
        elif name in seen:
            fill, stroke, sw, cls = VISITED_FILL, VISITED_STROKE, 1.6, "state visited"
        else:
            fill, stroke, sw, cls = PLAIN_FILL, PLAIN_STROKE, 1.2, "state"
        parts = [
            f'<g class="{cls}" data-state="{esc(name)}"><title>{esc(name)}'
            f"{' (manual)' if st.manual else ''}{' (terminal)' if st.terminal else ''}</title>",
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>',
        ]
        if st.terminal:
            parts.append(
                f'<rect x="{box.x + 4:.1f}" y="{box.y + 4:.1f}" width="{box.w - 8:.1f}" '
                f'height="{box.h - 8:.1f}" rx="6" fill="none" stroke="{stroke}" stroke-width="1"/>'
            )
        cx = box.x + box.w / 2
        if st.manual:
            parts.append(
                f'<text x="{cx:.1f}" y="{box.y + 22:.1f}" text-anchor="middle" font-size="13">'
                f"{esc(name)}</text>"
                f'<text x="{cx:.1f}" y="{box.y + 39:.1f}" text-anchor="middle" font-size="10" '
                f'fill="#555">(manual)</text>'
            )
        else:
            parts.append(
                f'<text x="{cx:.1f}" y="{box.y + box.h / 2 + 4.5:.1f}" text-anchor="middle" '
                f'font-size="13">{esc(name)}</text>'
            )
        parts.append("</g>")
        body.append("".join(parts))
    title = f"{graph.name} v{graph.version}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" role="img" aria-label="{esc(title)}" '
        f'font-family="Helvetica, Arial, sans-serif"><title>{esc(title)}</title>'
        + "".join(body)
        + "</svg>"
    )
