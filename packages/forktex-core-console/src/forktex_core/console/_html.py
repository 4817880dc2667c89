# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""HTML that escapes by default: :func:`el` builds elements, text is always escaped unless
it is :class:`Safe` (markup this module or :func:`el` produced).

No template engine and no JavaScript framework: pages are plain HTML built in Python, so
nothing a run holds (a workflow name, an input, an error message) can become markup.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


class Safe(str):
    """Markup that is already escaped (made by :func:`el` or :func:`join`)."""


def esc(value: object) -> str:
    """``value`` as escaped text (``None`` is empty)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _render(child: Any) -> str:
    if child is None or child is False:
        return ""
    if isinstance(child, Safe):
        return str(child)
    if isinstance(child, str | int | float):
        return esc(child)
    if isinstance(child, Iterable):
        return "".join(_render(c) for c in child)
    return esc(child)


VOID = frozenset({"br", "hr", "img", "input", "link", "meta"})


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: Any) -> Safe:
    """An element; attribute values and text children are escaped.

    An attribute whose value is ``True`` is written bare, ``None``/``False`` leaves it out.

    Example::

        el("a", {"href": "/runs?x=1&y=2"}, "<runs>")
        # '<a href="/runs?x=1&amp;y=2">&lt;runs&gt;</a>'
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        parts.append(esc(name) if value is True else f'{esc(name)}="{esc(value)}"')
    opening = "<" + " ".join(parts) + ">"
    if tag in VOID:
        return Safe(opening)
    return Safe(opening + _render(children) + f"</{tag}>")


def join(*children: Any) -> Safe:
    """Several children as one piece of markup."""
    return Safe(_render(children))


def when(value: datetime | None) -> Safe:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC) with the full value as a tooltip."""
    if value is None:
        return Safe("")
    return el("time", {"datetime": value.isoformat()}, value.strftime("%Y-%m-%d %H:%M:%S"))


def seconds(value: float | None) -> str:
    """A duration for people: ``12 ms``, ``3.4 s``, ``2 min 5 s``, ``1 h 2 min``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"


def pretty(value: Any) -> str:
    """JSON for a ``<pre>`` block (non-JSON values as their ``repr``)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def short(value: Any, width: int = 80) -> str:
    """One line of JSON, cut at ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= width else text[: width - 1] + "…"


def badge(status: str) -> Safe:
    """A run or step status as a coloured badge."""
    return el("span", {"class": f"badge status-{status}", "data-status": status}, status)


def page(
    *,
    title: str,
    heading: str,
    nav: Iterable[tuple[str, str, bool]],
    css: str,
    script: str,
    body: Any,
    body_attrs: Mapping[str, object] | None = None,
) -> str:
    """A whole page: ``nav`` is (label, href, current) per link of the header."""
    links = [
        el("a", {"href": href, "aria-current": "page" if cur else None}, label)
        for label, href, cur in nav
    ]
    return "<!doctype html>" + el(
        "html",
        {"lang": "en"},
        el(
            "head",
            None,
            el("meta", {"charset": "utf-8"}),
            el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            el("title", None, f"{heading} · {title}"),
            el("link", {"rel": "stylesheet", "href": css}),
            el("script", {"src": script, "defer": True}),
        ),
        el(
            "body",
            body_attrs,
            el("header", None, el("strong", None, title), el("nav", None, links)),
            el("main", None, el("h1", None, heading), body),
        ),
    )
