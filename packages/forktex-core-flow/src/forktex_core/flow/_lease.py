# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""How an execution of a run ends early.

They derive from ``BaseException`` so that workflow code (``except Exception``) cannot
swallow them; the run driver also remembers each, so even ``except BaseException`` in a
workflow does not let an execution carry on after it lost its run.
"""

from __future__ import annotations


class LeaseLost(BaseException):
    """This execution no longer holds the run (cancelled, reaped, settled): stop quietly.

    Example::

        raise LeaseLost()  # the run belongs to someone else now; write nothing more
    """


class GaveUp(LeaseLost):
    """The database stayed unreachable for a whole lease: hand the run back.

    Example::

        raise GaveUp() from ConnectionResetError()
    """


class StaleLog(LeaseLost):
    """The run is still this execution's, but another (zombie) execution wrote the position
    this one was about to write: hand the run back at once so it is replayed from the log.

    Example::

        raise StaleLog()
    """


class DriverError(BaseException):
    """The database refused a write of the run itself: the run fails with ``error``.

    Example::

        raise DriverError(exc)  # e.g. a trigger rejected the checkpoint
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
