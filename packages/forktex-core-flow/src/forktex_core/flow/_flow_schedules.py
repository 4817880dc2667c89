# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The schedules half of the :class:`Flow` facade: declaring schedules in code, creating
them at runtime, listing and controlling them (each a short call into :mod:`._schedules`
and ``store.schedules``; the leader fires their ticks)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ._cron import Cron, zone
from ._defs import storable_text
from ._errors import InvalidSchedule
from ._registry import Registry
from ._schedules import KEY_PREFIX, Schedule, ScheduleInfo, tick_text
from ._serde import encode
from ._settings import Settings
from ._store import Store

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


def _workflow_of(workflow: object) -> tuple[object, str | None]:
    """The name (and default queue) of ``workflow``: a name or a decorated workflow."""
    wdef = getattr(workflow, "__forktex_workflow__", None)
    if wdef is not None:
        return wdef.name, wdef.queue
    return workflow, None


def _options(
    tz: object,
    version: object,
    queue: object,
    catch_up: object,
    max_catch_up: object,
    grace: object,
) -> dict[str, Any]:
    """The options of a definition, by the names :meth:`Schedule.check` takes."""
    return {
        "tz": tz,
        "version": version,
        "queue": queue,
        "catch_up": catch_up,
        "max_catch_up": max_catch_up,
        "grace": grace,
    }


def _moment(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidSchedule(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


class ScheduleCalls:
    """Cron schedules created at runtime, listed and controlled (also on a
    :class:`FlowClient`); the leader fires them. Pause, resume, trigger, backfill and delete
    first ask the ``FlowHooks.authorize_schedule`` hooks (a refusal writes nothing)."""

    _registry: Registry
    _settings: Settings
    _store: Store

    async def create_schedule(
        self,
        name: str,
        workflow: object,
        cron: str,
        *,
        tz: str = "UTC",
        input: Any = None,
        version: int | None = None,
        queue: str | None = None,
        catch_up: str = "latest",
        max_catch_up: int = 10,
        grace: float | timedelta = 60.0,
    ) -> ScheduleInfo:
        """Create a schedule at runtime (a tenant's): stored in Postgres, fired by the leader
        from its next tick on; the options are those of :meth:`schedule`. The same
        definition again is a no-op; another under an existing name raises
        :class:`InvalidSchedule`, and so does any bad value (naming it).

        Example::

            await flow.create_schedule(
                f"tenant-{tid}.digest", "digest.send", "0 8 * * mon-fri",
                tz="Europe/Vienna", input={"tenant": tid}, catch_up="skip",
            )
        """
        self._store.check_open()
        options = _options(tz, version, queue, catch_up, max_catch_up, grace)
        checked = self._definition(name, workflow, cron, input, options)
        await self._store.schedules.create(checked)
        return await self.get_schedule(checked.name)

    def _definition(
        self, name: object, workflow: object, cron: object, input: Any, options: dict[str, Any]
    ) -> Schedule:
        """The checked definition (``name`` None: the workflow's name; the queue defaults to
        the workflow's own)."""
        wname, default_queue = _workflow_of(workflow)
        sname = wname if name is None else name
        if options["queue"] is None:
            options = {**options, "queue": default_queue}
        text = encode(self._settings.serializer, input, f"the input of schedule {sname!r}")
        return Schedule.check(sname, wname, cron, input=text, **options)

    async def _declared(self) -> None:
        self._store.check_open()
        await self._store.schedules.declare(self._registry.schedules())

    def _info(self, row: Mapping[str, Any]) -> ScheduleInfo:
        return ScheduleInfo(
            row["name"],
            row["workflow"],
            row["version"],
            row["cron"],
            row["tz"],
            self._settings.serializer.loads(row["input"]),
            row["queue"],
            row["catch_up"],
            row["max_catch_up"],
            row["grace"],
            row["paused"],
            row["next_at"],
            row["last_tick"],
            row["declared"],
            row["created_at"],
        )

    async def _allowed(self, name: str, action: str) -> Mapping[str, Any] | None:
        """Let the ``authorize_schedule`` hooks refuse ``action`` on schedule ``name``
        before anything is written; the schedule's row when it was read for them (an
        unknown name raises :class:`ScheduleNotFound` then)."""
        hooks = self._registry.hooks
        if not hooks.has("authorize_schedule"):
            return None
        row: Mapping[str, Any] = await self._store.schedules.get(name)
        await hooks.authorize("authorize_schedule", self._info(row), action)
        return row

    async def schedules(self) -> list[ScheduleInfo]:
        """Every stored schedule, by name: definition, next and last tick, paused.

        Example::

            for s in await flow.schedules():
                print(s.name, s.cron, s.next_tick, "paused" if s.paused else "")
        """
        await self._declared()
        return [self._info(row) for row in await self._store.schedules.all()]

    async def get_schedule(self, name: str) -> ScheduleInfo:
        """The stored schedule ``name``; :class:`ScheduleNotFound` if there is none.

        Example::

            print((await flow.get_schedule("reports.refresh")).next_tick)
        """
        await self._declared()
        return self._info(await self._store.schedules.get(storable_text(name, "schedule name")))

    async def pause_schedule(self, name: str) -> None:
        """Stop firing ``name``'s ticks (runs already started go on).

        Example::

            await flow.pause_schedule("reports.refresh")
        """
        await self._declared()
        sname = storable_text(name, "schedule name")
        await self._allowed(sname, "pause")
        await self._store.schedules.pause(sname)

    async def resume_schedule(self, name: str) -> None:
        """Fire ``name``'s ticks again, from the next one on (ticks that passed while it was
        paused do not run; :meth:`backfill_schedule` runs them on purpose).

        Example::

            await flow.resume_schedule("reports.refresh")
        """
        await self._declared()
        sname = storable_text(name, "schedule name")
        await self._allowed(sname, "resume")
        await self._store.schedules.resume(sname)

    async def trigger_schedule(self, name: str) -> uuid.UUID:
        """Start a run of ``name`` now, outside its ticks (also while paused); its id.

        Example::

            run_id = await flow.trigger_schedule("reports.refresh")
        """
        await self._declared()
        sname = storable_text(name, "schedule name")
        if await self._allowed(sname, "trigger") is None:
            await self._store.schedules.get(sname)  # ScheduleNotFound
        now = await self._store.schedules.now()
        key = f"{KEY_PREFIX}{sname}:trigger:{tick_text(now)}:{uuid.uuid4().hex[:8]}"
        ids = await self._store.schedules.start(sname, [now], trigger=key)
        return ids[0]

    async def backfill_schedule(self, name: str, start: datetime, end: datetime) -> list[uuid.UUID]:
        """Start the run of every tick of ``name`` with ``start <= tick < end`` (at most
        10,000); the ids of the runs started. Ticks that already ran start nothing (each is
        keyed by its tick), so a backfill may be repeated or overlap the live ticks.

        Example::

            await flow.backfill_schedule("reports.refresh",
                                         datetime(2026, 1, 1, tzinfo=UTC),
                                         datetime(2026, 1, 2, tzinfo=UTC))
        """
        await self._declared()
        first, last = _moment(start, "start"), _moment(end, "end")
        if first >= last:
            raise InvalidSchedule(f"start must be before end, got {start!r} .. {end!r}")
        sname = storable_text(name, "schedule name")
        row = await self._allowed(sname, "backfill") or await self._store.schedules.get(sname)
        ticks = Schedule.from_row(row).ticks(first, last)
        if not ticks:
            return []
        return await self._store.schedules.start(row["name"], ticks)

    async def delete_schedule(self, name: str) -> None:
        """Delete schedule ``name`` (its runs stay; one declared in code comes back at the
        next worker start unless its ``@flow.schedule`` is removed).

        Example::

            await flow.delete_schedule(f"tenant-{tid}.digest")
        """
        await self._declared()
        sname = storable_text(name, "schedule name")
        await self._allowed(sname, "delete")
        await self._store.schedules.delete(sname)


class ScheduleDeclarations(ScheduleCalls):
    """Schedules declared in code (:meth:`schedule`), on top of the runtime calls."""

    def schedule(
        self,
        cron: str,
        *,
        workflow: object = None,
        name: str | None = None,
        tz: str = "UTC",
        input: Any = None,
        version: int | None = None,
        queue: str | None = None,
        catch_up: str = "latest",
        max_catch_up: int = 10,
        grace: float | timedelta = 60.0,
    ) -> Callable[[F], F]:
        """Run a workflow at every tick of ``cron`` (stored in Postgres when a worker starts).

        Stack it above ``@flow.workflow``, or give ``workflow=`` (a name) and call it as a
        statement. ``cron`` has 5 fields (minute hour day-of-month month day-of-week) or 6
        (a leading second); ``tz`` is an IANA zone (ticks follow its wall clock across DST:
        a time skipped by spring-forward fires at the end of the gap, a time that occurs
        twice fires once). Each tick starts one run with ``input``, keyed
        ``schedule:NAME:TICK`` (exactly once across workers and leader failovers). A tick
        overdue by more than ``grace`` seconds is *missed* (every worker was down);
        ``catch_up`` decides which missed ticks still run: ``"skip"`` none, ``"latest"`` the
        most recent one, ``"all"`` each, at most ``max_catch_up``. ``name`` defaults to the
        workflow's name; ``version`` None runs the newest version.

        Example::

            @flow.schedule("*/5 * * * *", tz="Europe/Vienna", catch_up="skip")
            @flow.workflow(name="reports.refresh")
            async def refresh(ctx: FlowContext) -> None: ...

            flow.schedule("0 3 * * *", workflow="backups.nightly")
        """

        options = _options(tz, version, queue, catch_up, max_catch_up, grace)

        def declare(target: object) -> None:
            self._registry.add_schedule(self._definition(name, target, cron, input, options))

        if workflow is not None:
            declare(workflow)

            def unchanged(func: F) -> F:
                return func

            return unchanged

        def decorate(func: F) -> F:
            if getattr(func, "__forktex_workflow__", None) is None:
                raise InvalidSchedule(
                    f"@flow.schedule({cron!r}) must be stacked above @flow.workflow "
                    f"(got {getattr(func, '__qualname__', func)!r}), or give workflow="
                )
            declare(func)
            return func

        Cron.parse(cron), zone(tz)  # a bad expression fails at its line, not at first use
        return decorate
