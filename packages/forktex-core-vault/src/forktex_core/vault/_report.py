# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What a key rotation did: :class:`RotationReport` and the rows it left, :class:`RotationFailure`.

Plain values with no dependencies, so both :func:`rotate_blobs` and the error it raises when
interrupted (:class:`RotationInterrupted` carries the report) can hold them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RotationFailure:
    """A row :func:`rotate_blobs` left untouched because neither vault opens its value.

    ``pk`` is the primary-key value (a tuple for composite keys); ``reason`` says why.

    Example::

        for failure in report.failed:
            log.error("row %s not rotated: %s", failure.pk, failure.reason)
    """

    pk: Any
    reason: str


@dataclass(frozen=True)
class RotationReport:
    """What :func:`rotate_blobs` did (also handed to the progress callback after each batch).

    * ``scanned`` - non-NULL values read;
    * ``rotated`` - values re-encrypted under ``new``'s primary key;
    * ``skipped_already_new`` - values already on ``new``'s primary key (an earlier, interrupted
      run did them, or a live writer wrote them with the new key);
    * ``failed`` - rows neither vault opens, left untouched, with their primary keys;
    * ``batches`` - committed batches; ``last_pk`` - the keyset cursor after the last committed
      batch (pass it as ``resume_after`` to skip ahead); ``complete`` - the scan reached the end.

    Example::

        report = await rotate_blobs(session, table=Cred, column="payload", old=old, new=new)
        assert report.complete and not report.failed, report
    """

    scanned: int = 0
    rotated: int = 0
    skipped_already_new: int = 0
    failed: tuple[RotationFailure, ...] = ()
    batches: int = 0
    last_pk: Any = None
    complete: bool = False
    elapsed_seconds: float = 0.0

    @property
    def failed_pks(self) -> list[Any]:
        """Primary keys of the rows that were not rotated.

        Example::

            assert report.failed_pks == []
        """
        return [failure.pk for failure in self.failed]
