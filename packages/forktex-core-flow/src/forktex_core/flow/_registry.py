# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a :class:`Flow` knows how to run: workflows, graphs, actions and their fingerprints.

Registration may happen at any time, also while a worker runs (tenant-defined graphs are
created at runtime through an API): every change is announced to the subscribers, so a
running worker claims the new ``(workflow, version)`` pairs at once and publishes them in
``workers.versions``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._defs import WorkflowDef
from ._errors import InvalidArgument

if TYPE_CHECKING:
    from ._graph import Graph, Handler
    from ._hashing import Fingerprint


class Registry:
    """Registered workflows (by name and version), graphs, actions and fingerprints.

    Example::

        registry = Registry()
        registry.add_workflow(wdef, fingerprint(fn))
        registry.subscribe(lambda: print("now serving", registry.keys()))
    """

    def __init__(self) -> None:
        self.workflows: dict[str, dict[int, WorkflowDef]] = {}
        self.graphs: dict[str, dict[int, Graph]] = {}
        self.actions: dict[str, Handler] = {}
        self.fingerprints: dict[tuple[str, int], Fingerprint] = {}
        self._subscribers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_workflow(self, wdef: WorkflowDef, fp: Fingerprint) -> None:
        """Register ``wdef``; the same body may be registered again, another may not."""
        with self._lock:
            versions = self.workflows.setdefault(wdef.name, {})
            existing = versions.get(wdef.version)
            if existing is not None and existing.fn.__qualname__ != wdef.fn.__qualname__:
                raise InvalidArgument(
                    f"workflow {wdef.name!r} version {wdef.version} is already registered "
                    f"({existing.fn.__qualname__}); bump version= for a new body"
                )
            versions[wdef.version] = wdef
            self.fingerprints[(wdef.name, wdef.version)] = fp
        self._announce()

    def add_graph(self, graph: Graph) -> None:
        """Remember ``graph`` (its synthesised workflow is added with :meth:`add_workflow`)."""
        with self._lock:
            self.graphs.setdefault(graph.name, {})[graph.version] = graph

    def workflow(self, name: str, version: int) -> WorkflowDef | None:
        """The registered body of ``name`` version ``version``, if any."""
        return self.workflows.get(name, {}).get(version)

    def keys(self) -> list[str]:
        """Every registered ``name:version``, sorted."""
        with self._lock:
            return sorted(w.key for versions in self.workflows.values() for w in versions.values())

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (from the registering thread) after every new registration.

        Returns a function that unsubscribes.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _announce(self) -> None:
        for callback in list(self._subscribers):
            callback()
