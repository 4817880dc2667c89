# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The console's exception: a configuration it refuses, with what to do instead."""

from __future__ import annotations


class ConsoleError(Exception):
    """The console cannot be built or served as asked (the message says what to change).

    Example::

        try:
            app = flow_console(flow)          # no authenticate=
        except ConsoleError as exc:
            print(exc)  # flow_console needs authenticate=...
    """
