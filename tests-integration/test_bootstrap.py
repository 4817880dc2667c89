# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The README's two commands work on a machine with Python 3.11+ and make, and no uv.

A copy of the repository (every file git tracks or would track, committed into a fresh git
repository, like a clone) runs ``make demo`` and then ``make test`` with a tiny test
selection, with a ``PATH`` that holds a plain Python (the standard library only), make, git
and the shell -- no ``uv`` binary and no ``python3 -m uv``. The Makefile must install a
private uv into the copy's ``.uv-bootstrap/`` and nothing user-wide: afterwards the Python
on that ``PATH`` still has no uv module, and ``~/.local/bin/uv`` is as it was. Everything
the run creates lives under ``tmp_path`` (its ``TMPDIR`` too).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

#: Programs the Makefile and the demo need besides Python (found on the current PATH).
TOOLS = ("make", "bash", "sh", "git", "env", "rm", "find", "date", "dirname")


def _copy_repository(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run([*git, *args], cwd=dest, check=True, capture_output=True)


def _bare_path(tmp_path: Path) -> tuple[str, Path]:
    """A PATH with a uv-less ``python3`` and the few programs make needs; that python3.

    ``python3`` is this interpreter's base installation run with ``-S``: the standard
    library only, so no site-packages (where a ``pip install uv`` would live) -- a Python as
    it comes, whatever is installed on this machine. (A virtualenv would not do: uv does
    not create project environments from a virtualenv's interpreter.)
    """
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python3"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(str(base))} -S "$@"\n')
    python.chmod(0o755)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir), python


#: Variables of this test process that must not reach the bare machine: the active
#: virtualenv, interpreter and pytest settings, and what ``uv run`` sets for its children
#: (``UV`` is the path of the running uv, which the Makefile would use).
#: uv's network settings (index, certificates) stay, as on any machine that reaches PyPI.
_UV_NETWORK = ("INDEX", "CERT", "TLS", "PROXY", "OFFLINE")


def _env(tmp_path: Path, path: str) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("UV", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")
        and not name.startswith("PYTEST_")
        and not (name.startswith("UV_") and not any(part in name for part in _UV_NETWORK))
    }
    env.update(PATH=path, TMPDIR=str(tmp))
    if "FORKTEX_TEST_POSTGRES_URL" in os.environ:  # the demo's own variable (see make demo)
        env["FORKTEX_DEMO_POSTGRES_URL"] = os.environ["FORKTEX_TEST_POSTGRES_URL"]
    return env


def test_make_demo_and_make_test_bootstrap_uv_on_a_bare_machine(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _copy_repository(repo)
    path, python = _bare_path(tmp_path)
    env = _env(tmp_path, path)
    user_uv = Path(env["HOME"]) / ".local" / "bin" / "uv"
    user_uv_before = user_uv.exists()

    # The premise: nothing on this PATH provides uv.
    assert shutil.which("uv", path=path) is None
    no_module = subprocess.run(
        ["python3", "-m", "uv", "--version"], env=env, capture_output=True, check=False
    )
    assert no_module.returncode != 0

    demo = subprocess.run(
        ["make", "demo"], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    out = demo.stdout + demo.stderr
    assert demo.returncode == 0, out[-6000:]
    assert "installing a private copy into .uv-bootstrap/" in out, out[-6000:]
    assert "All invariants hold" in out, out[-6000:]
    assert (repo / ".uv-bootstrap" / "bin" / "uv").is_file()
    assert (repo / ".venv").is_dir()

    test = subprocess.run(
        ["make", "test", "PYTEST_ARGS=tools/tests/test_bootstrap_uv.py -q -p no:cacheprovider"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = test.stdout + test.stderr
    assert test.returncode == 0, out[-6000:]
    assert " passed" in out and "failed" not in out, out[-6000:]
    assert "installing a private copy" not in out, "the private uv is installed once"

    # Nothing user- or interpreter-wide: the python on PATH still has no uv.
    still_none = subprocess.run(
        [str(python), "-m", "uv", "--version"], env=env, capture_output=True, check=False
    )
    assert still_none.returncode != 0
    assert user_uv.exists() == user_uv_before
