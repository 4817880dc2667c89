# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/api_snapshot.py: every distribution's ``__all__``, snapshotted for review."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent


import api_snapshot  # noqa: E402  (tools/ is on pytest's pythonpath)

#: the ``workspace`` fixture (conftest.py): distribution -> {path below src/forktex_core/: code}
Workspace = Callable[[dict[str, dict[str, str]]], Path]


def one(workspace: Workspace, files: dict[str, str]) -> Path:
    """A workspace of one distribution, forktex-core-m (package forktex_core.m)."""
    return workspace({"forktex-core-m": files})


def snapshot_file(root: Path, dist: str = "forktex-core-m") -> Path:
    return root / api_snapshot.SNAPSHOT_DIR / f"{dist}.txt"


def names_in(root: Path, dist: str = "forktex-core-m") -> list[str]:
    lines = snapshot_file(root, dist).read_text().splitlines()
    return [line for line in lines if not line.startswith("#")]


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / "api_snapshot.py"), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
    )


# -- this repository ------------------------------------------------------------------


def test_this_repository_matches_its_api_snapshot() -> None:
    problems = api_snapshot.check(REPO)
    assert problems == [], "\n".join(problems)


def test_the_static_reading_agrees_with_the_imported_modules() -> None:
    """What ast reads is what Python sees: each snapshot line is a name in the imported
    package's __all__, and nothing is missing (the aliases re-export their module)."""
    snapshotted = set()
    for path in (REPO / api_snapshot.SNAPSHOT_DIR).glob("*.txt"):
        snapshotted |= {line for line in path.read_text().splitlines() if line[:1] != "#"}
    packages = sorted({name.rpartition(".")[0] for name in snapshotted})
    assert {"forktex_core.psql", "forktex_core.redis", "forktex_core.db"} <= set(packages)
    imported = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the two alias packages warn
        for package in packages:
            module = importlib.import_module(package)
            imported |= {f"{package}.{name}" for name in module.__all__}
    assert snapshotted == imported


# -- a generated workspace -------------------------------------------------------------


def test_update_then_check_and_a_changed_all_fails_with_a_diff(workspace: Workspace) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._a import A, B\n\n__all__ = ['B', 'A']\n",
            "m/_a.py": "A = B = C = 1\n",
            "m/sub/__init__.py": "__all__ = ('S',)\nS = 1\n",
            # a package below a private name is internal, whatever its __all__ says
            "m/_internal/__init__.py": "__all__ = ['HIDDEN']\nHIDDEN = 1\n",
        },
    )
    assert api_snapshot.update(root) == ["tools/api_snapshot/forktex-core-m.txt"]
    assert names_in(root) == ["forktex_core.m.A", "forktex_core.m.B", "forktex_core.m.sub.S"]
    assert api_snapshot.check(root) == []
    assert api_snapshot.update(root) == []  # stable

    init = root / "packages/forktex-core-m/src/forktex_core/m/__init__.py"
    init.write_text("from ._a import A, C\n\n__all__ = ['A', 'C']\n")
    problems = api_snapshot.check(root)
    assert len(problems) == 1
    assert problems[0].startswith("the public API of forktex-core-m changed:")
    assert "    -forktex_core.m.B" in problems[0]
    assert "    +forktex_core.m.C" in problems[0]
    result = run(root)
    assert result.returncode == 1
    assert "-forktex_core.m.B" in result.stderr
    assert "python3 tools/api_snapshot.py --update" in result.stderr

    updated = run(root, "--update")
    assert updated.returncode == 0, updated.stderr
    assert "tools/api_snapshot/forktex-core-m.txt" in updated.stdout
    assert names_in(root) == ["forktex_core.m.A", "forktex_core.m.C", "forktex_core.m.sub.S"]
    assert run(root).returncode == 0


def test_an_alias_package_re_exports_its_target(workspace: Workspace) -> None:
    root = workspace(
        {
            "forktex-core-m": {
                "m/__init__.py": "__all__ = ['A'] + ['B']\n__all__ += ['C']\n",
                "old/__init__.py": "import importlib\nfrom typing import Any\n\n"
                '_m: Any = importlib.import_module("forktex_core.m")\n'
                "__all__: list[str] = list(_m.__all__)\n",
            }
        },
    )
    api_snapshot.update(root)
    assert names_in(root) == [
        "forktex_core.m.A",
        "forktex_core.m.B",
        "forktex_core.m.C",
        "forktex_core.old.A",
        "forktex_core.old.B",
        "forktex_core.old.C",
    ]


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("A = 1\n", "package forktex_core.m has no __all__: declare its public names"),
        ("__all__ = [n for n in dir()]\n", "__init__.py:1: cannot read __all__ without running"),
        ("__all__ = sorted(['A'])\n", "__init__.py:1: cannot read __all__ without running"),
        ("names = ['A']\n__all__ = names\n", "__init__.py:2: cannot read __all__ without"),
        ("__all__ = list(x.__all__)\n", "__init__.py:1: cannot read __all__ without running"),
        ("__all__ = ['A', 'A']\n", "__all__ lists A more than once"),
        ("__all__ += ['A']\n", "__init__.py:1: __all__ += before __all__ ="),
    ],
    ids=["missing", "comprehension", "call", "variable", "unknown-alias", "duplicate", "augment"],
)
def test_an_all_that_cannot_be_read_statically_is_named(
    workspace: Workspace, init: str, message: str
) -> None:
    root = one(workspace, {"m/__init__.py": init})
    with pytest.raises(api_snapshot.SnapshotError, match="forktex_core/m/"):
        api_snapshot.snapshots(root)
    result = run(root)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_missing_or_stray_snapshot_file_is_a_problem(workspace: Workspace) -> None:
    root = one(workspace, {"m/__init__.py": "__all__ = ['A']\n"})
    assert api_snapshot.check(root) == ["tools/api_snapshot/forktex-core-m.txt is missing"]
    api_snapshot.update(root)
    stray = snapshot_file(root, "forktex-core-gone")
    stray.write_text("forktex_core.gone.X\n")
    assert api_snapshot.check(root) == [
        "tools/api_snapshot/forktex-core-gone.txt belongs to no distribution that ships a "
        "package: delete it"
    ]
    assert api_snapshot.update(root) == ["tools/api_snapshot/forktex-core-gone.txt (deleted)"]
    assert not stray.exists()
