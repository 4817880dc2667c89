# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``python -m forktex_core.queue worker app.jobs:queue`` (same as ``forktex-queue``)."""

import sys

from ._cli import main

sys.exit(main())
