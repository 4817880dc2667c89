# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Deprecated alias of :mod:`forktex_core.db` (importable through 0.4).

Re-exports the very same objects and emits one ``DeprecationWarning`` on first import.
Type checkers see the alias's names as ``Any``: import from ``forktex_core.db`` for types.

Example::

    from forktex_core.db import init_engine  # instead of forktex_core.psql
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

# Imported dynamically on purpose: a static import would make mypy (run over the
# workspace's src directories with explicit package bases) see forktex_core/db twice.
_db: Any = importlib.import_module("forktex_core.db")

__all__: list[str] = list(_db.__all__)
globals().update({_name: getattr(_db, _name) for _name in __all__})


def __getattr__(name: str) -> Any:
    """Anything else is looked up on :mod:`forktex_core.db`."""
    return getattr(_db, name)


warnings.warn(
    "forktex_core.psql is deprecated and will be removed after 0.4; import forktex_core.db "
    "instead (same objects)",
    DeprecationWarning,
    stacklevel=2,
)
