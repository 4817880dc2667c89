# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The meta-package as the workspace sees it: it pins every module distribution."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "packages" / "forktex-core"


def _name(requirement: str) -> str:
    """The distribution name at the start of a requirement string."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0)


def _members() -> dict[str, str]:
    """Distribution name -> import module of every module distribution in forktex.json."""
    manifest = json.loads((ROOT / "forktex.json").read_text(encoding="utf-8"))
    return {p["name"]: p["module"] for p in manifest["packages"] if not p.get("meta")}


def test_declares_every_member_with_no_extras() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    assert runtime == set(_members())
    assert "optional-dependencies" not in project, "pip install forktex-core gives every module"


def test_installed_metadata_matches_and_every_module_imports() -> None:
    requires = md.requires("forktex-core") or []
    assert {_name(r) for r in requires} == set(_members())
    assert not [r for r in requires if "extra" in r], requires
    for module in _members().values():
        importlib.import_module(module)


def test_ships_no_code() -> None:
    assert not (PACKAGE / "src").exists()
