# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Run a command and fail, naming each one, on what it left behind (stdlib only).

``make test`` runs the test suite through this wrapper. It snapshots

* the entries of the temporary directory (``tempfile.gettempdir()``, normally ``/tmp``), and
* ``git status --porcelain --ignored=matching`` of the repository (new untracked or ignored files
  and directories, and tracked files the command modified or deleted) and the empty
  directories in it (which git does not list),

runs the command, snapshots again and reports every entry that is new. Exempt are the
caches Python and pytest keep by design -- ``__pycache__/`` and ``.pytest_cache/`` in the
repository, and pytest's own ``pytest-of-<user>/`` base directory for ``tmp_path`` in the
temporary directory (pytest keeps the last three runs there and prunes older ones).

Anything else a test run creates must be removed by the run (use pytest's ``tmp_path``).
Other processes writing to the temporary directory at the same time show up too: the
report names each entry, so such a coincidence is easy to tell apart.

Usage::

    python3 tools/leftovers.py [--tmp DIR] [--repo DIR] -- COMMAND [ARG ...]

The exit status is the command's when it failed (other than pytest's 5, "no tests
collected"); otherwise 1 when something was left behind, else the command's status.
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Exit status of this wrapper when the command succeeded but left something behind.
LEFT_BEHIND = 1
#: pytest's "no tests were collected": not a failure of the command for ``make test``.
PYTEST_NO_TESTS = 5
#: Repository paths whose last component is one of these are caches kept by design.
REPO_EXEMPT = frozenset({"__pycache__", ".pytest_cache"})


@dataclass(frozen=True)
class Snapshot:
    """What exists before or after the command."""

    tmp: frozenset[str]
    repo: frozenset[str] | None  # None: not a git work tree (the repository is not checked)
    #: ignored directories (``.venv/``, ``dist/``): not searched for empty directories
    ignored_dirs: frozenset[str] = frozenset()


def _tmp_exempt() -> frozenset[str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return frozenset()
    return frozenset({f"pytest-of-{user}"})


def _git_status(repo: Path) -> frozenset[str] | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--ignored=matching", "--untracked-files=normal"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return frozenset(line for line in out.stdout.splitlines() if line.strip())


def _empty_dirs(repo: Path, prune: frozenset[str]) -> frozenset[str]:
    """Empty directories under ``repo`` (git does not list them), outside ``prune``."""
    found: set[str] = set()
    for current, dirs, files in os.walk(repo):
        rel = Path(current).relative_to(repo).as_posix()
        dirs[:] = [
            d
            for d in dirs
            if d != ".git" and (f"{d}/" if rel == "." else f"{rel}/{d}/") not in prune
        ]
        if not dirs and not files and rel != ".":
            found.add(f"empty directory {rel}/")
    return frozenset(found)


def snapshot(tmp: Path, repo: Path, prune: frozenset[str] | None = None) -> Snapshot:
    """List the temporary directory's entries and the repository's git status and empty
    directories (``prune``: ignored directories not to search; default: those git reports
    as ignored now).

    Example::

        before = snapshot(Path("/tmp"), Path("."))
    """
    entries = frozenset(p.name + ("/" if p.is_dir() else "") for p in tmp.iterdir())
    status = _git_status(repo)
    if status is None:
        return Snapshot(entries, None)
    if prune is None:
        prune = frozenset(
            _repo_path(line) for line in status if line.startswith("!! ") and line.endswith("/")
        )
    return Snapshot(entries, status | _empty_dirs(repo, prune), prune)


def _repo_path(entry: str) -> str:
    """The path of a ``git status --porcelain`` line (the new one of a rename) or of an
    ``empty directory <path>/`` entry."""
    path = entry.removeprefix("empty directory ") if entry.startswith("empty ") else entry[3:]
    return path.split(" -> ")[-1].strip('"')


def leftovers(before: Snapshot, after: Snapshot, tmp: Path) -> list[str]:
    """Every entry in ``after`` but not in ``before``, except the exempt caches.

    Example::

        leftovers(before, snapshot(tmp, repo), tmp)   # ['/tmp/stray.py', 'repo: ?? out.txt']
    """
    found: list[str] = []
    exempt = _tmp_exempt()
    for name in sorted(after.tmp - before.tmp):
        if name.rstrip("/") not in exempt:
            found.append(str(tmp / name) + ("/" if name.endswith("/") else ""))
    if before.repo is not None and after.repo is not None:
        for line in sorted(after.repo - before.repo):
            if Path(_repo_path(line).rstrip("/")).name not in REPO_EXEMPT:
                found.append(f"repository: {line}")
    return found


def run(command: list[str], tmp: Path, repo: Path) -> int:
    """Run ``command`` in ``repo``; report leftovers; return the exit status (see module doc)."""
    before = snapshot(tmp, repo)
    if before.repo is None:
        print(f"leftovers: {repo} is not a git work tree: only {tmp} is checked", flush=True)
    try:
        status = subprocess.run(command, cwd=repo, check=False).returncode
    except OSError as exc:
        print(f"leftovers: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    found = leftovers(before, snapshot(tmp, repo, before.ignored_dirs), tmp)
    if found:
        print(
            f"\nleftovers: the run left {len(found)} thing(s) behind that were not there "
            "before (tests must clean up: use pytest's tmp_path):",
            file=sys.stderr,
        )
        for entry in found:
            print(f"  {entry}", file=sys.stderr)
        sys.stderr.flush()
        if status in (0, PYTEST_NO_TESTS):
            return LEFT_BEHIND
    return status


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(prog="tools/leftovers.py", description=__doc__.split("\n")[0])
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run(command, args.tmp, args.repo)


if __name__ == "__main__":
    sys.exit(main())
