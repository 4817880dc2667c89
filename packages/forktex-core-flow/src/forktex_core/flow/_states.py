# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The parts of a graph: states, transitions and handlers (plain data)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from . import _conditions

Handler = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True, slots=True)
class State:
    """One state: its handler (a function or an action name), manual / terminal flags."""

    name: str
    handler: Handler | str | None
    manual: bool = False
    terminal: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """An edge ``source -> target``, taken when ``when`` (a condition, or None) holds."""

    source: str
    target: str
    when: dict[str, Any] | None = None

    def label(self) -> str:
        """The condition in words ("" for an unconditional edge)."""
        return "" if self.when is None else _conditions.describe(self.when)
