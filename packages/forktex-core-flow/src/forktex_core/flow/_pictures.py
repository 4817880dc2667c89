# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Pictures of graphs: Mermaid ``stateDiagram-v2`` and Graphviz DOT.

States are drawn with their names; manual states are marked ``(manual)``, terminal states
end in the final marker (Mermaid ``[*]``) or a double border (DOT). For a run, the
``current`` state and the ``visited`` ones are highlighted, and the edges the run took are
drawn bold.
"""

from __future__ import annotations

import json
from typing import Protocol

from ._states import State, Transition

FORMATS = ("mermaid", "dot")


class Drawable(Protocol):
    """What a picture needs of a graph (a :class:`Graph` is one)."""

    name: str
    version: int
    initial: str | None
    states: dict[str, State]
    transitions: list[Transition]


def _ids(graph: Drawable) -> dict[str, str]:
    return {name: f"s{i}" for i, name in enumerate(graph.states)}


def _mermaid_text(text: str) -> str:
    # Mermaid labels cannot contain these; replace them with look-alikes.
    return text.replace('"', "'").replace(":", "∶").replace(";", "；").replace("\n", " ")


def mermaid(
    graph: Drawable, current: str | None, visited: set[str], path: set[tuple[str, str]]
) -> str:
    """Render ``graph`` as Mermaid."""
    ids = _ids(graph)
    lines = ["stateDiagram-v2", f"    %% {graph.name} v{graph.version}"]
    for name, st in graph.states.items():
        label = name + (" (manual)" if st.manual else "")
        lines.append(f'    state "{_mermaid_text(label)}" as {ids[name]}')
    if graph.initial in ids:
        lines.append(f"    [*] --> {ids[graph.initial]}")
    for t in graph.transitions:
        if t.source not in ids or t.target not in ids:
            continue
        label = t.label()
        suffix = f": {_mermaid_text(label)}" if label else ""
        lines.append(f"    {ids[t.source]} --> {ids[t.target]}{suffix}")
    for name, st in graph.states.items():
        if st.terminal:
            lines.append(f"    {ids[name]} --> [*]")
    done = sorted(ids[v] for v in visited if v in ids and v != current)
    if done or current in ids:
        lines.append("    classDef visited fill:#d8ecff,stroke:#3b7dd8")
        lines.append("    classDef current fill:#ffd27f,stroke:#c77700,stroke-width:3px")
    if done:
        lines.append(f"    class {','.join(done)} visited")
    if current in ids:
        lines.append(f"    class {ids[current]} current")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def dot(graph: Drawable, current: str | None, visited: set[str], path: set[tuple[str, str]]) -> str:
    """Render ``graph`` as Graphviz DOT."""
    lines = [
        f"digraph {_dot_text(f'{graph.name} v{graph.version}')} {{",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    "__start__" [shape=point, width=0.15, label=""];',
    ]
    for name, st in graph.states.items():
        attrs = [f"label={_dot_text(name + (chr(10) + '(manual)' if st.manual else ''))}"]
        if st.terminal:
            attrs.append("peripheries=2")
        if name == current:
            attrs.append('fillcolor="#ffd27f", penwidth=3')
        elif name in visited:
            attrs.append('fillcolor="#d8ecff"')
        lines.append(f"    {_dot_text(name)} [{', '.join(attrs)}];")
    if graph.initial is not None:
        lines.append(f'    "__start__" -> {_dot_text(graph.initial)};')
    for t in graph.transitions:
        attrs = []
        if t.when is not None:
            attrs.append(f"label={_dot_text(t.label())}")
        if (t.source, t.target) in path:
            attrs.append('penwidth=2.5, color="#c77700"')
        tail = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot_text(t.source)} -> {_dot_text(t.target)}{tail};")
    lines.append("}")
    return "\n".join(lines) + "\n"
