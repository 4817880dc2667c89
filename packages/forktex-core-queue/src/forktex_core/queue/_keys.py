# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every Redis key of a queue, the rule on queue names that keeps two queues' keys apart, and
how long a job's keys outlive its run time. Nothing here touches Redis."""

from __future__ import annotations

import re
from dataclasses import dataclass

EXPIRES_EXTRA_MS = 86_400_000
"""A job's payload lives this long past its run time: one not started within a day of it is
dropped."""

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")

ID_KINDS = ("job", "in-progress", "result", "retry", "cron")
"""The key kinds followed by an id (``<name>:<kind>:<id>``). No ``:``-separated part of a
queue name may be one of them: that is what keeps the keys of two queues apart (queue ``a``
with job ``x:queue`` would otherwise write ``a:job:x:queue``, the queue key of queue
``a:job:x``)."""


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue name (``None`` when it can).

    A name is 1-200 letters, digits and ``_.:-``; none of its ``:``-separated parts may be
    one of :data:`ID_KINDS`. Then distinct (queue name, job id) pairs never share a key:
    if the keys of two queues met, one name would be the other plus ``:<kind>...``.

    Example::

        queue_name_problem("app:emails")  # None
        queue_name_problem("a:job:x")     # "its part 'job' is reserved (...)"
    """
    if not isinstance(name, str) or not _QUEUE_NAME.fullmatch(name):
        return "use 1-200 characters of letters, digits and '_.:-'"
    for part in name.split(":"):
        if part in ID_KINDS:
            return (
                f"its part {part!r} is reserved (no ':'-separated part may be "
                f"{', '.join(repr(k) for k in ID_KINDS)}: the queue's keys would overlap "
                "another queue's)"
            )
    return None


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one queue; all of them start with the queue name.

    Example::

        Keys("emails").job("42")  # 'emails:job:42'
    """

    name: str

    @property
    def queue(self) -> str:
        """Sorted set of live job ids, scored by the time (ms) they may run."""
        return f"{self.name}:queue"

    @property
    def abort(self) -> str:
        """Sorted set of abort requests for running jobs, scored by request time (ms)."""
        return f"{self.name}:abort"

    @property
    def running(self) -> str:
        """Sorted set of running job ids, scored by when their lease expires (ms)."""
        return f"{self.name}:running"

    @property
    def workers(self) -> str:
        """Hash of worker id -> JSON health record."""
        return f"{self.name}:workers"

    def job(self, job_id: str) -> str:
        return f"{self.name}:job:{job_id}"

    def in_progress(self, job_id: str) -> str:
        return f"{self.name}:in-progress:{job_id}"

    def result(self, job_id: str) -> str:
        return f"{self.name}:result:{job_id}"

    def retry(self, job_id: str) -> str:
        return f"{self.name}:retry:{job_id}"

    def cron_tick(self, cron: str, tick_ms: int) -> str:
        return f"{self.name}:cron:{cron}:{tick_ms}"

    def of_member(self, member: bytes) -> list[bytes]:
        """The per-job keys (in-progress, job, retry, result) of a queue member that is not
        UTF-8 and so cannot be a ``str`` job id."""
        return [
            f"{self.name}:{kind}:".encode() + member
            for kind in ("in-progress", "job", "retry", "result")
        ]
