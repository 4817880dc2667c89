# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/bootstrap_uv.py: a private uv for the checkout, or a message that says what to do.

Installing uv for real (from the package index, with no uv on PATH) is proven end to end by
tests-integration/test_bootstrap.py through ``make demo`` and ``make test``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bootstrap_uv
import pytest

TOOL = Path(__file__).resolve().parents[1] / "bootstrap_uv.py"


def _fake_uv(directory: Path, status: int) -> Path:
    binary = bootstrap_uv.uv_binary(directory)
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!/bin/sh\necho 'uv 0.13.9'\nexit {status}\n")
    binary.chmod(0o755)
    return binary


def test_a_working_private_uv_is_used_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = _fake_uv(tmp_path / "boot", 0)
    assert bootstrap_uv.ensure_uv(tmp_path / "boot") == binary
    assert capsys.readouterr().out == ""  # nothing installed, nothing said


@pytest.mark.parametrize("version", [(3, 10, 14), (3, 9, 0), (2, 7, 18)])
def test_python_older_than_3_11_is_refused_with_what_to_do(version: tuple[int, int, int]) -> None:
    with pytest.raises(bootstrap_uv.BootstrapError) as exc:
        bootstrap_uv.check_python(version)
    shown = ".".join(map(str, version))
    assert f"is {shown}" in str(exc.value) and "PYTHON=" in str(exc.value)


@pytest.mark.parametrize("version", [(3, 11, 0), (3, 12, 1), (4, 0, 0)])
def test_python_3_11_and_newer_is_accepted(version: tuple[int, int, int]) -> None:
    bootstrap_uv.check_python(version)


def test_a_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = subprocess.run(
        [sys.executable, str(TOOL), str(blocker / "boot")], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "cannot create a virtualenv" in out.stderr
    assert "docs.astral.sh/uv" in out.stderr


def test_an_unreachable_package_index_is_a_clear_error(tmp_path: Path) -> None:
    """A broken private copy is replaced; when pip cannot fetch uv the message says so."""
    _fake_uv(tmp_path / "boot", 1)  # present but broken: must be reinstalled, not trusted
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / "boot")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "installing a private copy into" in out.stdout
    assert "pip could not install 'uv>=0.13,<1'" in out.stderr
    assert "is the package index reachable?" in out.stderr
