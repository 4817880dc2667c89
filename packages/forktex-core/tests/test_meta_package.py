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


def test_declares_every_member_runtime_or_testing_extra() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(d) for d in project["dependencies"]}
    testing = {_name(d) for d in project["optional-dependencies"]["testing"]}
    assert runtime | testing == set(_members())
    assert testing == {"forktex-core-testing"}, "only the pytest plugin is opt-in"


def test_installed_metadata_matches_and_every_module_imports() -> None:
    requires = md.requires("forktex-core") or []
    assert {_name(r) for r in requires} == set(_members())
    testing = [r for r in requires if _name(r) == "forktex-core-testing"]
    assert len(testing) == 1 and re.search(r"extra == ['\"]testing['\"]", testing[0])
    for module in _members().values():
        importlib.import_module(module)


def test_ships_no_code() -> None:
    assert not (PACKAGE / "src").exists()
