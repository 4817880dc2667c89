# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The GitHub workflows: CI covers every supported Python, and the tools run in the workspace
environment (uv.lock), never with a bare interpreter."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
SUPPORTED = ["3.11", "3.12", "3.13"]
#: .ci/run: build .venv, refuse a Python other than the matrix entry's, then make ci
STEPS = ("make deps", '"$CI_PYTHON" ]', "make ci")


def workflow(name: str) -> str:
    return (WORKFLOWS / name).read_text(encoding="utf-8")


def test_ci_runs_every_supported_python() -> None:
    text = workflow("ci.yml")
    matrix = re.search(r"(?m)^\s+python-version: (\[.*\])\s*$", text)
    assert matrix is not None, "ci.yml has no python-version matrix"
    assert json.loads(matrix[1]) == SUPPORTED
    assert "python-version: ${{ matrix.python-version }}" in text
    # uv builds .venv with the matrix interpreter, and .ci/run checks that it did
    assert "UV_PYTHON: ${{ steps.python.outputs.python-path }}" in text
    assert "CI_PYTHON: ${{ matrix.python-version }}" in text
    assert "run: bash .ci/run" in text
    ci_run = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci_run.splitlines() if not line.lstrip().startswith("#")]
    step = {c: next(i for i, line in enumerate(commands) if c in line) for c in STEPS}
    assert step["make deps"] < step['"$CI_PYTHON" ]'] < step["make ci"], "check after deps"


def test_the_matrix_starts_at_every_distributions_lowest_python() -> None:
    lowest = set()
    for pyproject in sorted(REPO.glob("packages/*/pyproject.toml")):
        requires = tomllib.loads(pyproject.read_text())["project"]["requires-python"]
        lowest.add(requires.removeprefix(">="))
    assert lowest == {SUPPORTED[0]}


def test_workflows_run_the_tools_in_the_workspace_environment() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            where = f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            if re.search(r"tools/\S+\.py", code):
                assert "uv run --locked --all-packages python tools/" in code, where
            assert not re.search(r"\buvx\b", code), f"{where} (unpinned tool: use uv run)"


def test_release_workflow_checks_pins_and_twine_from_the_lock() -> None:
    text = workflow("release.yml")
    assert "uv sync --all-packages --locked" in text
    assert "uv run --locked --all-packages python tools/pins.py check" in text
    assert "uv run --locked --all-packages python tools/release_tag.py" in text
    assert "uv run --locked --all-packages twine check dist/*" in text
