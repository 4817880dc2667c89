# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Continue-as-new: a long-lived (entity) workflow starts afresh with a new input.

``ctx.continue_as_new(input)`` ends the current generation of the run: in one fenced
transaction its log and its consumed signals move to a new finished run (the archived
generation: status ``succeeded``, output = the input handed on), and the run itself — same
id, same unconsumed signals — goes back to ``pending`` with the new input and an empty log.
So a wake-up replays only the current generation, however long the entity has lived.
Lineage is in metadata: the run's ``generation`` and ``continued_from`` (the archive), the
archive's ``generation`` and ``continued_into`` (the run).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

GENERATION = "generation"
CONTINUED_FROM = "continued_from"
CONTINUED_INTO = "continued_into"


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new``; the driver settles the run with it.

    A ``BaseException``, so the workflow's ``except Exception`` does not swallow it.
    """

    def __init__(self, text: str) -> None:
        super().__init__("continue as new")
        self.text = text


def lineage(
    run_id: uuid.UUID, archive_id: uuid.UUID
) -> Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]:
    """The metadata function of :meth:`Store.continue_as_new` for ``run_id``.

    Example::

        archived, live = lineage(run_id, archive_id)({"org": "o1"})
    """

    def split(metadata: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        generation = metadata.get(GENERATION, 0)
        if isinstance(generation, bool) or not isinstance(generation, int):
            generation = 0
        base = {k: v for k, v in metadata.items() if k not in (CONTINUED_FROM, GENERATION)}
        archived = {**metadata, GENERATION: generation, CONTINUED_INTO: str(run_id)}
        live = {**base, GENERATION: generation + 1, CONTINUED_FROM: str(archive_id)}
        return archived, live

    return split
