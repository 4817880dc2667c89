# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The function that replaces a ``@flow.step``-decorated coroutine function."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from . import _replay as replay
from ._context import CURRENT, FlowContext, runtime_of
from ._defs import StepDef
from ._runtime import IN_STEP

PlainTx = Callable[[StepDef, tuple[Any, ...], dict[str, Any]], Coroutine[Any, Any, Any]]


def make_step_wrapper(sdef: StepDef, plain_tx: PlainTx) -> Callable[..., Coroutine[Any, Any, Any]]:
    """Wrap ``sdef`` so that in a workflow it replays or executes as a checkpointed step.

    The position in the log is taken synchronously at call time, before the coroutine is
    first awaited, so ``asyncio.gather(a(ctx), b(ctx))`` numbers ``a`` then ``b`` on every
    execution. Outside a workflow (or inside another step) it is a plain coroutine; a
    transactional one then runs in a transaction of its own (``plain_tx``).

    Example::

        wrapper = make_step_wrapper(StepDef("charge", charge, 1, 1.0, 60.0, (Exception,),
                                            None, False), plain_tx)
    """
    fn = sdef.fn

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        ctx = CURRENT.get()
        if args and isinstance(args[0], FlowContext):
            ctx = args[0]
        if ctx is None or IN_STEP.get():
            if sdef.transactional:
                return plain_tx(sdef, args, kwargs)
            return sdef.fn(*args, **kwargs)
        return replay.step(runtime_of(ctx), sdef, args, kwargs)

    wrapper.__forktex_step__ = sdef  # type: ignore[attr-defined]
    return wrapper
