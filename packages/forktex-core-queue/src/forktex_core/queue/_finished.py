# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a queue reports about its finished jobs: :class:`FinishedJob` (one kept result
record) and :class:`JobCounts` (jobs by status)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ._errors import InvalidJob
from ._job import JobStatus
from ._records import decode_result, is_timestamp_ms


@dataclass(frozen=True)
class FinishedJob:
    """A finished job as its result record keeps it (for the queue's ``keep_result``
    seconds): what ran, how often, when, and for a failure its error and traceback.

    ``started_at`` / ``finished_at`` are ``None`` for a job that never ran (aborted while
    waiting, or not a job at all).

    Example::

        for job in await queue.failed_jobs(limit=20):
            print(job.job_id, job.task, job.error_type, job.message)
    """

    job_id: str
    task: str
    status: JobStatus
    tries: int
    started_at: datetime | None
    finished_at: datetime | None
    error_type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class JobCounts:
    """Jobs of a queue by status: ``queued``, ``deferred`` and ``in_progress`` are exact;
    ``complete``, ``failed`` and ``aborted`` count the results still kept (``keep_result``)
    and are exact when ``exact`` is True - else at most ``scan`` results were read.

    Example::

        counts = await queue.job_counts()
        print(counts.queued, counts.failed, "" if counts.exact else "(at least)")
    """

    queued: int
    deferred: int
    in_progress: int
    complete: int
    failed: int
    aborted: int
    exact: bool

    def by_status(self) -> dict[JobStatus, int]:
        """The counts keyed by :class:`JobStatus`.

        Example::

            (await queue.job_counts()).by_status()[JobStatus.failed]  # 3
        """
        return {
            JobStatus.queued: self.queued,
            JobStatus.deferred: self.deferred,
            JobStatus.in_progress: self.in_progress,
            JobStatus.complete: self.complete,
            JobStatus.failed: self.failed,
            JobStatus.aborted: self.aborted,
        }


def _time(value: object) -> datetime | None:
    if not is_timestamp_ms(value):
        return None
    return datetime.fromtimestamp(float(value) / 1000, UTC)  # type: ignore[arg-type]


def finished_job(job_id: str, raw: bytes) -> FinishedJob | None:
    """The result record ``raw`` of job ``job_id``, or ``None`` when it is not one (another
    program's value under the key: it is skipped, never fails a listing).

    Example::

        finished_job("42", b'{"s":"complete","t":1,"f":"add","r":3}').status  # complete
    """
    try:
        record = decode_result(raw, job_id)
    except InvalidJob:
        return None
    failed = record["s"] != "complete"
    return FinishedJob(
        job_id=job_id,
        task=str(record.get("f") or ""),
        status=JobStatus(record["s"]),
        tries=record["t"],
        started_at=_time(record.get("st")),
        finished_at=_time(record.get("ft")),
        error_type=record.get("e", "") if failed else "",
        message=record.get("m", "") if failed else "",
        traceback=record.get("tb", "") if failed else "",
    )
