# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a :class:`Flow` knows how to run: workflows, graphs, actions, fingerprints, hooks.

Registration may happen at any time, also while a worker runs (tenant-defined graphs are
created at runtime through an API): every change is announced to the subscribers, so a
running worker claims the new ``(workflow, version)`` pairs at once and publishes them in
``workers.versions``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ._defs import WorkflowDef, positive_int
from ._errors import GraphValidationError, InvalidArgument, InvalidSchedule, UnknownWorkflow
from ._graph import Graph
from ._hashing import Fingerprint
from ._hooks import FlowHooks, HookSet
from ._queues import Queue
from ._schedules import Schedule
from ._states import Handler
from ._walk import build_body


class Registry:
    """Registered workflows (by name and version), graphs, actions, fingerprints and hooks.

    Example::

        registry = Registry()
        registry.add_workflow(wdef, fingerprint(fn))
        registry.subscribe(lambda: print("now serving", registry.keys()))
    """

    def __init__(self, hooks: Iterable[FlowHooks] = ()) -> None:
        self.hooks = HookSet(hooks)
        self._workflows: dict[str, dict[int, WorkflowDef]] = {}
        self._graphs: dict[str, dict[int, Graph]] = {}
        self._actions: dict[str, Handler] = {}
        self._fingerprints: dict[tuple[str, int], Fingerprint] = {}
        self._subscribers: list[Callable[[], None]] = []
        self._queues: dict[str, Queue] = {}
        self._schedules: dict[str, Schedule] = {}
        self._lock = threading.Lock()

    # -- registration -----------------------------------------------------------------------

    def add_workflow(self, wdef: WorkflowDef, fp: Fingerprint) -> None:
        """Register ``wdef``; the same body may be registered again, another may not."""
        with self._lock:
            versions = self._workflows.setdefault(wdef.name, {})
            existing = versions.get(wdef.version)
            if existing is not None and existing.fn.__qualname__ != wdef.fn.__qualname__:
                raise InvalidArgument(
                    f"workflow {wdef.name!r} version {wdef.version} is already registered "
                    f"({existing.fn.__qualname__}); bump version= for a new body"
                )
            versions[wdef.version] = wdef
            self._fingerprints[(wdef.name, wdef.version)] = fp
        self._announce()

    def add_action(self, name: str, handler: Handler) -> None:
        """Register ``handler`` as graph action ``name`` (the same one may be added again)."""
        with self._lock:
            existing = self._actions.get(name)
            if existing is not None and existing is not handler:
                raise InvalidArgument(f"action {name!r} is already registered ({existing!r})")
            self._actions[name] = handler

    def add_graph(self, graph: Graph) -> Graph:
        """Validate ``graph`` and register it as a workflow of the same name and version."""
        if not isinstance(graph, Graph):
            raise InvalidArgument(f"register_graph needs a Graph, got {graph!r}")
        graph.validate()
        states = graph.resolved(self.actions())
        body = build_body(graph, states)
        existing = self.workflow(graph.name, graph.version)
        if existing is not None and not hasattr(existing.fn, "__forktex_graph__"):
            raise GraphValidationError(
                graph.name,
                None,
                f"a @flow.workflow named {graph.name!r} version "
                f"{graph.version} is already registered",
            )
        wdef = WorkflowDef(graph.name, graph.version, body, graph.timeout, True)
        with self._lock:
            self._graphs.setdefault(graph.name, {})[graph.version] = graph
        self.add_workflow(wdef, graph.fingerprint(states))
        return graph

    def add_queue(self, queue: Queue) -> None:
        """Declare ``queue`` (declaring a name again replaces its definition)."""
        with self._lock:
            self._queues[queue.name] = queue

    def queues(self) -> list[Queue]:
        """The queues declared in this process, by name."""
        with self._lock:
            return [self._queues[name] for name in sorted(self._queues)]

    def add_schedule(self, schedule: Schedule) -> None:
        """Declare ``schedule``; another definition under the same name is an error."""
        with self._lock:
            existing = self._schedules.get(schedule.name)
            if existing is not None and existing != schedule:
                raise InvalidSchedule(
                    f"a schedule named {schedule.name!r} is already declared "
                    f"({existing.workflow!r} at {existing.cron.expression!r}); "
                    "give each schedule of a workflow its own name="
                )
            self._schedules[schedule.name] = schedule

    def schedules(self) -> list[Schedule]:
        """The schedules declared in this process, by name."""
        with self._lock:
            return [self._schedules[name] for name in sorted(self._schedules)]

    def add_hooks(self, hooks: FlowHooks) -> None:
        """Register an extension; several compose in order."""
        self.hooks.add(hooks)

    # -- lookup -----------------------------------------------------------------------------

    def workflow(self, name: str, version: int) -> WorkflowDef | None:
        """The registered body of ``name`` version ``version``, if any."""
        return self._workflows.get(name, {}).get(version)

    def lookup(self, workflow: object, version: object) -> WorkflowDef:
        """The workflow to start: by name or decorated function, newest version by default."""
        if callable(workflow) and hasattr(workflow, "__forktex_workflow__"):
            workflow = workflow.__forktex_workflow__.name
        if not isinstance(workflow, str) or not workflow:
            raise InvalidArgument(f"workflow must be a registered workflow name, got {workflow!r}")
        versions = self._workflows.get(workflow)
        if not versions:
            raise UnknownWorkflow(workflow, self._workflows)
        if version is None:
            return versions[max(versions)]
        ver = positive_int(version, "version")
        if ver not in versions:
            raise UnknownWorkflow(workflow, self.keys(), ver)
        return versions[ver]

    def graph(self, name: str, version: int | None = None) -> Graph:
        """A registered graph (the newest version unless ``version`` is given)."""
        versions = self._graphs.get(name)
        if not versions:
            raise UnknownWorkflow(name, [f"{n} (graph)" for n in self._graphs])
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise UnknownWorkflow(
                name, [f"{n}:{v}" for n in self._graphs for v in self._graphs[n]], version
            )
        return versions[version]

    def graph_versions(self) -> dict[str, list[int]]:
        """Registered graph names and their versions, sorted."""
        return {n: sorted(v) for n, v in sorted(self._graphs.items())}

    def actions(self) -> dict[str, Handler]:
        """The registered actions by name (a copy)."""
        return dict(self._actions)

    def fingerprints(self) -> dict[tuple[str, int], Fingerprint]:
        """The fingerprint of every registered ``(name, version)`` (a copy)."""
        return dict(self._fingerprints)

    def keys(self) -> list[str]:
        """Every registered ``name:version`` (the versions a worker serves), sorted."""
        with self._lock:
            return sorted(w.key for versions in self._workflows.values() for w in versions.values())

    # -- announcements ----------------------------------------------------------------------

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
