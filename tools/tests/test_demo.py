# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/demo.py (``make demo``): runs end to end, exits 0, prints the summary table.

Uses ``FORKTEX_TEST_POSTGRES_URL`` when set, else the embedded PostgreSQL like a fresh
machine would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "demo.py"

pytestmark = pytest.mark.slow


def test_demo_runs_and_every_invariant_holds() -> None:
    env = dict(os.environ)
    env.pop("FORKTEX_DEMO_POSTGRES_URL", None)
    if os.environ.get("FORKTEX_TEST_POSTGRES_URL"):
        env["FORKTEX_DEMO_POSTGRES_URL"] = os.environ["FORKTEX_TEST_POSTGRES_URL"]
    proc = subprocess.run(
        [sys.executable, str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "!! SIGKILL worker A" in out, out
    assert "resumed on worker B" in out, out
    table = re.findall(
        r"^(web|api|db|cache|search|mail)\s+(\w+)\s+(\d)/4\s+(.*?)\s+worker (\w)\s+(\S+(?: s)?)$",
        out,
        re.MULTILINE,
    )
    assert len(table) == 6, out
    for _run, status, steps, executions, finished_by, _recovery in table:
        assert status == "succeeded" and steps == "4" and finished_by == "B", out
        counts = re.findall(r"(\d)(\*?)", executions)
        assert len(counts) == 4
        for n, star in counts:
            assert (n, star) in (("1", ""), ("2", "*")), out  # twice only if interrupted
    if os.geteuid() == 0 and "FORKTEX_DEMO_POSTGRES_URL" not in env:  # embedded, as root
        assert "runs as the system user forktex_pg" in out, out
    assert "6/6 runs succeeded" in out
    assert "All invariants hold" in out
