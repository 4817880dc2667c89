# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Deprecated alias of :mod:`forktex_core.cache` (kept through 0.4).

Importing it emits one ``DeprecationWarning``; every public name is the very same object as
in ``forktex_core.cache``. Type checkers see the names as ``Any``: migrate to the new module
to get full types.

Example::

    from forktex_core.redis import cached      # works, warns once
    from forktex_core.cache import cached      # the new spelling
"""

import importlib
import warnings
from typing import Any

# Imported by name, not statically: this module is called ``redis``, and a type checker that
# maps it to the top-level name must not follow it into forktex_core.cache a second time.
_cache = importlib.import_module("forktex_core.cache")

__all__: list[str] = list(_cache.__all__)
globals().update({name: getattr(_cache, name) for name in __all__})


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"module 'forktex_core.redis' has no attribute {name!r} "
        "(it re-exports forktex_core.cache's public names only)"
    )


warnings.warn(
    "forktex_core.redis is deprecated and will be removed after 0.4; "
    "import forktex_core.cache instead (same names, same objects)",
    DeprecationWarning,
    stacklevel=2,  # the importing line (warnings skips importlib's own frames)
)
