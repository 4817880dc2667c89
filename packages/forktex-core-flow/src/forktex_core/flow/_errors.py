# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The exception hierarchy of forktex_core.flow, rooted at :class:`FlowError`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class FlowError(Exception):
    """Base class of every error raised by forktex_core.flow.

    Example::

        try:
            await flow.start("nope")
        except FlowError as exc:
            print(exc)
    """


class InvalidArgument(FlowError, ValueError):
    """A public call got a value it cannot accept; the message names it and what is allowed.

    Example::

        await flow.result(run_id, timeout=-1)  # InvalidArgument: timeout must be ...
    """


class FlowUnavailable(FlowError, ConnectionError):
    """The database cannot be reached, or stopped answering.

    Raised instead of asyncpg's, SQLAlchemy's or the socket's own errors when a connection
    cannot be opened (refused, unknown host, silent past ``connect_timeout``, login refused)
    or an open one is lost or silent past ``command_timeout``; a worker raises it when the
    database stayed unreachable longer than ``max_outage``. The message names the server
    (``host:port``, database, user; never the password) and what failed. ``connecting`` is
    True when no connection could be opened at all; ``silent`` when an open connection gave
    no answer within ``command_timeout`` (the statement may still be running on the server).

    Example::

        try:
            await flow.start("cloud.deploy", input={})
        except FlowUnavailable as exc:
            print(exc)  # cannot connect to PostgreSQL at db:5432 (database 'app', ...): ...
    """

    def __init__(self, message: str, *, connecting: bool = False, silent: bool = False) -> None:
        super().__init__(message)
        self.connecting = connecting
        self.silent = silent

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownWorkflow(FlowError, LookupError):
    """No workflow of that name (and version) is registered on this :class:`Flow`.

    Example::

        await flow.start("cloud.dploy")  # UnknownWorkflow: ... registered: cloud.deploy
    """

    def __init__(self, name: str, registered: Iterable[str], version: int | None = None) -> None:
        names = sorted(set(registered))
        what = f"{name!r}" if version is None else f"{name!r} version {version}"
        listed = ", ".join(names) if names else "(none)"
        super().__init__(
            f"unknown workflow {what}; registered workflows: {listed}. "
            "Register it with @flow.workflow(name=..., version=...) before starting or running it."
        )
        self.name = name
        self.version = version
        self.registered = names


class NonDeterminismError(FlowError):
    """On replay the workflow called a different step at a position than the log recorded.

    The run fails; fix the code (or bump the workflow version) and ``flow.retry`` it.

    ``recorded_kind`` / ``called_kind`` say what each was (``step``, ``transaction``,
    ``sleep``, ``signal``, ``send``, ``now``, ``uuid``, ``state``, ``patch``).

    Example::

        NonDeterminismError: run ... position 2: the log recorded step 'charge' but the
        workflow now calls step 'refund'
    """

    def __init__(
        self,
        run_id: object,
        seq: int,
        recorded: str,
        called: str,
        recorded_kind: str = "step",
        called_kind: str = "step",
    ) -> None:
        super().__init__(
            f"run {run_id} position {seq}: the log recorded {recorded_kind} {recorded!r} but "
            f"the workflow now calls {called_kind} {called!r}. Workflow code must call the same "
            "steps in the same order on replay; bump the workflow version for incompatible "
            "changes."
        )
        self.run_id = run_id
        self.seq = seq
        self.recorded = recorded
        self.called = called
        self.recorded_kind = recorded_kind
        self.called_kind = called_kind


class StepFailed(FlowError):
    """A step failed for good (after its retries); replay re-raises the same error.

    ``error_type`` and ``error_message`` describe the original exception; ``seq`` is the
    step's position in the run's log (``flow.retry`` re-runs the failure that ended a run).

    Example::

        try:
            await charge(ctx, order)
        except StepFailed as exc:
            print(exc.step, exc.error_type, exc.attempts, exc.seq)
    """

    def __init__(
        self, step: str, error_type: str, message: str, attempts: int, seq: int | None = None
    ) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {error_type}: {message}"
        )
        self.step = step
        self.error_type = error_type
        self.error_message = message
        self.attempts = attempts
        self.seq = seq


class NotSerialisable(FlowError, TypeError):
    """A value that must be checkpointed could not be encoded as JSON.

    Example::

        NotSerialisable: step 'load' returned a value of type 'set' that cannot be stored as
        JSON; return JSON types or pass Flow(serializer=...) that handles it
    """


class SignalError(FlowError):
    """A signal could not be sent or received.

    Example::

        await flow.send_signal(run_id, "", payload=None)  # SignalError: name must be ...
    """


class SignalTimeout(SignalError, TimeoutError):
    """``ctx.wait_for_signal(name, timeout=...)`` expired before a signal arrived.

    ``seq`` is the wait's position in the run's log.

    Example::

        try:
            approval = await ctx.wait_for_signal("approve", timeout=3600)
        except SignalTimeout:
            ...
    """

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


class RunNotFound(FlowError, LookupError):
    """No run with this id exists (it may have been pruned by retention).

    Example::

        await flow.get_run(uuid.uuid4())  # RunNotFound
    """

    def __init__(self, run_id: object) -> None:
        super().__init__(f"run {run_id} does not exist (never started, or pruned by retention)")
        self.run_id = run_id


class RunFinished(FlowError):
    """The run already finished, so it cannot take this action (signal, cancel, ...).

    Example::

        await flow.send_signal(done_run, "advance")  # RunFinished
    """

    def __init__(self, run_id: object, status: str, action: str) -> None:
        super().__init__(f"run {run_id} is already {status}; cannot {action}")
        self.run_id = run_id
        self.status = status


class RunNotRetryable(FlowError):
    """``flow.retry`` was called on a run that is not failed, dead or cancelled.

    Example::

        await flow.retry(running_run)  # RunNotRetryable
    """


def _detail(error: Any) -> str:
    """``": Type: message"`` of a recorded error document (empty for anything else)."""
    if not isinstance(error, dict):
        return ""
    return f": {error.get('type', 'Error')}: {error.get('message', '')}"


class RunFailed(FlowError):
    """``flow.result`` of a run that ended failed, dead or cancelled.

    ``status`` is the final status and ``error`` the recorded error document.

    Example::

        try:
            await flow.result(run_id)
        except RunFailed as exc:
            print(exc.status, exc.error)
    """

    def __init__(self, run_id: object, status: str, error: Any) -> None:
        super().__init__(f"run {run_id} ended {status}{_detail(error)}")
        self.run_id = run_id
        self.status = status
        self.error = error


class RunCancelled(RunFailed):
    """``flow.result`` of a run that was cancelled.

    Example::

        await flow.cancel(run_id); await flow.result(run_id)  # RunCancelled
    """


class ResultTimeout(FlowError, TimeoutError):
    """``flow.result(run_id, timeout=...)`` gave up before the run finished.

    Example::

        await flow.result(run_id, timeout=0.1)  # ResultTimeout
    """


class WorkflowTimeout(FlowError, TimeoutError):
    """The workflow ran past its ``timeout=``; the run is marked failed with this error.

    Example::

        @flow.workflow(name="x", version=1, timeout=60)
    """


class FlowClosed(FlowError):
    """The :class:`Flow` was closed; create a new one.

    Example::

        await flow.close(); await flow.start("x")  # FlowClosed
    """


class GraphValidationError(FlowError, ValueError):
    """A :class:`Graph` is malformed; ``graph`` and ``state`` name where.

    Raised by ``flow.register_graph``, ``Graph.validate`` and ``Graph.from_dict``.

    Example::

        GraphValidationError: graph 'user.onboarding' v1, state 'verifed': transition
        target is not a state of this graph (states: email_pending, verified)
    """

    def __init__(self, graph: str, state: str | None, message: str) -> None:
        where = f"graph {graph!r}" + (f", state {state!r}" if state is not None else "")
        super().__init__(f"{where}: {message}")
        self.graph = graph
        self.state = state


class ConditionError(FlowError, ValueError):
    """A transition condition is malformed, or cannot be evaluated on a payload.

    Example::

        g.transition("review", "approved", when={"field": "amount", "op": "~", "value": 1})
        # ConditionError: condition: op must be one of ['==', '!=', ...], got '~'
    """


class TransitionError(FlowError):
    """A graph run could not pick the next state: none or several transitions matched.

    The run fails with this error; ``state``, ``candidates`` and ``payload_keys`` say why.

    Example::

        TransitionError: graph 'review' state 'review': 2 transitions match (approved,
        rejected); payload keys: amount, to
    """

    def __init__(
        self, graph: str, state: str, reason: str, candidates: list[str], keys: list[str]
    ) -> None:
        super().__init__(
            f"graph {graph!r} state {state!r}: {reason}; candidates: "
            f"{', '.join(candidates) or '(none)'}; payload keys: {', '.join(keys) or '(none)'}"
        )
        self.graph = graph
        self.state = state
        self.candidates = candidates
        self.payload_keys = keys


class VersionGateError(FlowError):
    """A workflow body changed without a version bump (see ``forktex-flow audit``).

    Example::

        VersionGateError: workflow 'cloud.deploy' version 1 changed without a version= bump
    """


class HookDenied(FlowError, PermissionError):
    """Raised by a :class:`FlowHooks` method to refuse ``start``/``send_signal``/``cancel``.

    Any exception a hook raises propagates to the caller unchanged; this one is provided so
    hosts need no exception type of their own.

    Example::

        async def authorize_signal(self, run, name, payload):
            if run.metadata.get("org_id") != current_org():
                raise HookDenied("not your organisation's run")
    """


class EventNotSet(FlowError, LookupError):
    """``flow.get_event`` found no value: the run finished without setting the event, or
    ``timeout`` passed first. ``run_id``, ``key`` and ``finished`` (True in the first case)
    say which.

    Example::

        await flow.get_event(run_id, "progress", timeout=0.1)  # EventNotSet
    """

    def __init__(self, run_id: object, key: str, finished: bool, detail: str) -> None:
        super().__init__(f"event {key!r} of run {run_id} is not set: {detail}")
        self.run_id = run_id
        self.key = key
        self.finished = finished


class UnknownQueue(FlowError, LookupError):
    """A start named a queue that no process has declared (``flow.queue(...)``).

    Example::

        try:
            await flow.start("send.email", queue="emails")
        except UnknownQueue as exc:
            print(exc)  # names the queue and how to declare it
    """

    def __init__(self, name: str) -> None:
        super().__init__(
            f"queue {name!r} is not declared: declare it with flow.queue({name!r}, ...) in "
            "this process or in a worker that has started"
        )
        self.name = name


class InvalidSchedule(InvalidArgument):
    """A schedule definition cannot be used: a bad cron expression (the message names the
    expression and the field), time zone, catch-up policy or time range.

    Example::

        flow.schedule("*/0 * * * *")
        # InvalidSchedule: invalid cron expression '*/0 * * * *': minute field '*/0':
        #   step must be at least 1
    """


class ScheduleNotFound(FlowError, LookupError):
    """No schedule of that name is stored.

    Example::

        await flow.pause_schedule("nope")  # ScheduleNotFound: no schedule named 'nope'
    """

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r}; list them with flow.schedules()")
        self.name = name


class ChildFailed(FlowError):
    """A child workflow awaited by its parent ended failed, cancelled or dead.

    ``run_id`` is the child's run id, ``workflow`` its workflow, ``status`` how it ended and
    ``error`` its recorded error document (``type``, ``message``). Raised by
    ``handle.result()`` / ``ctx.run_child`` in the parent, which may catch it.

    Example::

        try:
            receipt = await ctx.run_child("billing.charge", order)
        except ChildFailed as exc:
            print(exc.run_id, exc.workflow, exc.status, exc.error)
    """

    def __init__(self, run_id: object, workflow: str, status: str, error: Any) -> None:
        super().__init__(
            f"child run {run_id} of workflow {workflow!r} ended {status}{_detail(error)}"
        )
        self.run_id = run_id
        self.workflow = workflow
        self.status = status
        self.error = error
