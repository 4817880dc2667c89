# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/leftovers.py: a command that leaves files behind fails, naming each of them."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

import leftovers
import pytest

TOOL = Path(__file__).resolve().parents[1] / "leftovers.py"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with one tracked file and an ignore rule, like the real repository."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    (root / "tracked.txt").write_text("v1\n")
    (root / ".gitignore").write_text("ignored-*/\n__pycache__/\n.pytest_cache/\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "init")
    return root


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    """Stands in for /tmp."""
    path = tmp_path / "tmp"
    path.mkdir()
    (path / "already-there.txt").write_text("x")
    return path


def _run(repo: Path, tmp_dir: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` (cwd: the repo; TMP names the fake temp dir) through the tool."""
    script = f"import os, pathlib; TMP = pathlib.Path({str(tmp_dir)!r})\n{code}"
    tool = [sys.executable, str(TOOL), "--tmp", str(tmp_dir), "--repo", str(repo), "--"]
    return subprocess.run(
        [*tool, sys.executable, "-c", script], capture_output=True, text=True, check=False
    )


def test_a_clean_command_passes(repo: Path, tmp_dir: Path) -> None:
    out = _run(repo, tmp_dir, "pass")
    assert out.returncode == 0, out.stderr
    assert "leftovers" not in out.stderr


@pytest.mark.parametrize(
    ("code", "named"),
    [
        ("(TMP / 'stray.py').write_text('x')", "tmp/stray.py"),
        ("(TMP / 'cache-dir').mkdir()", "tmp/cache-dir/"),
        ("open('out.txt', 'w').close()", "repository: ?? out.txt"),
        ("os.makedirs('ignored-work/pg')", "repository: empty directory ignored-work/pg/"),
        ("os.makedirs('ignored-full'); open('ignored-full/f', 'w').close()", "!! ignored-full/"),
        ("os.makedirs('new/empty')", "repository: empty directory new/empty/"),
        ("open('tracked.txt', 'a').write('changed')", "repository:  M tracked.txt"),
        ("os.remove('tracked.txt')", "repository:  D tracked.txt"),
    ],
)
def test_each_kind_of_leftover_fails_and_is_named(
    repo: Path, tmp_dir: Path, code: str, named: str
) -> None:
    out = _run(repo, tmp_dir, code)
    assert out.returncode == leftovers.LEFT_BEHIND
    assert "thing(s) behind" in out.stderr
    lines = [line.strip() for line in out.stderr.splitlines()]
    assert any(line.endswith(named) for line in lines), out.stderr


def test_what_existed_before_and_caches_are_not_reported(repo: Path, tmp_dir: Path) -> None:
    (repo / "ignored-old").mkdir()  # an ignored tree that exists already, like .venv/
    (repo / "ignored-old" / "f").write_text("x")
    code = (
        "(TMP / 'already-there.txt').write_text('rewritten')\n"
        "os.makedirs('ignored-old/more')\n"
        "os.makedirs('pkg/__pycache__'); open('pkg/__pycache__/m.pyc', 'w').close()\n"
        "os.makedirs('.pytest_cache')\n"
        f"(TMP / 'pytest-of-{getpass.getuser()}').mkdir()\n"
    )
    out = _run(repo, tmp_dir, code)
    assert out.returncode == 0, out.stderr


def test_the_command_status_wins_over_leftovers_but_both_are_reported(
    repo: Path, tmp_dir: Path
) -> None:
    out = _run(repo, tmp_dir, "(TMP / 'x').write_text('x'); raise SystemExit(3)")
    assert out.returncode == 3
    assert str(tmp_dir / "x") in out.stderr


def test_no_tests_collected_with_leftovers_is_a_failure(repo: Path, tmp_dir: Path) -> None:
    """pytest's exit 5 counts as success in make test, so leftovers must turn it into 1."""
    out = _run(repo, tmp_dir, "(TMP / 'x').write_text('x'); raise SystemExit(5)")
    assert out.returncode == leftovers.LEFT_BEHIND
    clean = _run(repo, tmp_dir, "raise SystemExit(5)")
    assert clean.returncode == 5


def test_outside_a_git_work_tree_only_the_temp_dir_is_checked(
    tmp_path: Path, tmp_dir: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = _run(plain, tmp_dir, "open('out.txt', 'w').close()")
    assert out.returncode == 0, out.stderr
    assert "is not a git work tree" in out.stdout
    out = _run(plain, tmp_dir, "(TMP / 'x').write_text('x')")
    assert out.returncode == leftovers.LEFT_BEHIND


def test_bad_usage(tmp_dir: Path, repo: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        leftovers.main(["--tmp", str(tmp_dir), "--repo", str(repo), "--"])
    assert exc.value.code == 2
    assert leftovers.main(["--repo", str(repo), "--", "/nonexistent/binary"]) == 127


def test_make_test_runs_the_suite_through_the_check() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "LEFTOVERS = $(PYTHON) tools/leftovers.py --" in makefile
    test_recipe = makefile.split("\ntest: deps\n", 1)[1].split("\n\n", 1)[0]
    assert "$(LEFTOVERS) $(UV_RUN) pytest $(PYTEST_ARGS)" in test_recipe
