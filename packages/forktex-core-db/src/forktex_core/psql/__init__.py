# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Deprecated alias of :mod:`forktex_core.db` (importable through 0.4).

Re-exports the very same objects and emits one ``DeprecationWarning`` on first import.

Example::

    from forktex_core.db import init_engine  # instead of forktex_core.psql
"""

from __future__ import annotations

import warnings

from forktex_core.db import *  # noqa: F403
from forktex_core.db import __all__ as __all__

warnings.warn(
    "forktex_core.psql is deprecated and will be removed after 0.4; import forktex_core.db "
    "instead (same objects)",
    DeprecationWarning,
    stacklevel=2,
)
