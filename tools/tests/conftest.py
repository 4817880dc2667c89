# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared fixtures for the tools' tests."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent


def copy_repo_shape(dest: Path) -> Path:
    """A copy of this repository with everything fsd, pins and release look at, but no code:
    manifest, root pyproject, legal files, Makefile, the stdlib tools, and per package its
    pyproject.toml, README.md, CHANGELOG.md, LICENSE, NOTICE, tests/ and module py.typed."""
    for name in ("forktex.json", "pyproject.toml", "LICENSE", "NOTICE", "Makefile"):
        shutil.copy(REPO / name, dest / name)
    (dest / "tools").mkdir()
    for tool in ("fsd.py", "pins.py", "release.py"):
        shutil.copy(TOOLS / tool, dest / "tools" / tool)
    manifest = json.loads((REPO / "forktex.json").read_text())
    for pkg in manifest["packages"]:
        src, dst = REPO / pkg["path"], dest / pkg["path"]
        (dst / "tests").mkdir(parents=True)
        for name in ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", "NOTICE"):
            if (src / name).exists():
                shutil.copy(src / name, dst / name)
        if pkg["module"]:
            module_dir = dst / "src" / Path(*pkg["module"].split("."))
            module_dir.mkdir(parents=True)
            (module_dir / "py.typed").write_text("")
    return normalise_versions(dest)


def normalise_versions(root: Path) -> Path:
    """Put the copy in one fixed release state whatever the real repository is at: every
    distribution at 0.3.0 with an unreleased 0.3.0 changelog section on top, every pin between
    them at ``>=0.3,<0.4`` -- so the tools' tests keep their expectations across releases."""
    for pyproject in root.glob("packages/*/pyproject.toml"):
        text = pyproject.read_text()
        text = re.sub(r'(?m)^version = "[^"]+"', 'version = "0.3.0"', text)
        text = re.sub(r'(forktex-core-[a-z]+)>=[0-9.]+,<[0-9.]+"', r'\1>=0.3,<0.4"', text)
        pyproject.write_text(text)
    for changelog in root.glob("packages/*/CHANGELOG.md"):
        text = changelog.read_text()
        start = text.find("## 0.3.0")
        if start > 0:
            head = text[: text.find("\n## ") + 1]
            changelog.write_text(head + text[start:])
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fresh copy of the repository's shape (see :func:`copy_repo_shape`)."""
    root = tmp_path / "repo"
    root.mkdir()
    return copy_repo_shape(root)


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[dict[str, dict[str, str]]], Path]:
    """Writes a minimal workspace into ``tmp_path`` and returns its root: ``forktex.json``
    listing each distribution, and its source files.

    ``packages`` maps a distribution to ``{path below src/forktex_core/: code}`` (code is
    dedented); the first path's top directory names the distribution's module.
    """

    def build(packages: dict[str, dict[str, str]]) -> Path:
        manifest = {
            "name": "forktex-core",
            "profile": "workspace/python-monorepo",
            "target_maturity": "L3",
            "packages": [
                {
                    "name": dist,
                    "path": f"packages/{dist}",
                    "module": "forktex_core." + next(iter(files)).split("/")[0],
                }
                for dist, files in packages.items()
            ],
        }
        (tmp_path / "forktex.json").write_text(json.dumps(manifest))
        for dist, files in packages.items():
            for rel, text in files.items():
                path = tmp_path / "packages" / dist / "src" / "forktex_core" / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(textwrap.dedent(text))
        return tmp_path

    return build
