# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The one error of this package: a helper was given something it cannot use."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A telemetry helper was given a value it cannot use (an empty scope, a non-class).

    The message names the argument, describes the value's type and says what is allowed.

    Example::

        try:
            Tracing("", "forktex-core-cache")
        except InvalidArgument as exc:
            print(exc)  # scope must be a non-empty dotted name such as 'forktex_core.cache'
    """
