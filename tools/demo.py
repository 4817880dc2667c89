# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``make demo``: durable execution surviving a killed worker (filled in with forktex-core-flow).

Until the flow module lands this prints what the demo will do and exits 0.
"""

from __future__ import annotations

import sys

PLAN = """\
forktex-core demo: durable workflows survive a crashed worker  (coming with forktex-core-flow)

What `make demo` will do, on the local Postgres (or the embedded one):
  1. start two worker processes (forktex_core.flow workers sharing one Postgres);
  2. deploy a few multi-step workflows and start a batch of runs;
  3. SIGKILL one worker in the middle of a step;
  4. watch the surviving worker take over the dead worker's runs, replay
     the finished steps from their recorded results and resume the interrupted one;
  5. finish every run exactly once and print a table: run, steps, which worker ran each
     step, and that no completed step ran twice.

forktex-core-flow is not built yet, so nothing runs today. Meanwhile: `make test`.
"""


def main() -> int:
    """Print the demo plan; returns the exit status (0)."""
    sys.stdout.write(PLAN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
