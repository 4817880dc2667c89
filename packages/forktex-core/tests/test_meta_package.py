# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The meta-package as the workspace sees it: it pins every runtime module distribution, and
the opt-in ones (the test plugin, the operator console) only through the extra forktex.json
names for each (``"extra"``)."""

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


def _members() -> dict[str, tuple[str, str | None]]:
    """Distribution name -> (import module, meta-package extra or None) per module
    distribution in forktex.json."""
    manifest = json.loads((ROOT / "forktex.json").read_text(encoding="utf-8"))
    return {
        p["name"]: (p["module"], p.get("extra")) for p in manifest["packages"] if not p.get("meta")
    }


def _runtime() -> set[str]:
    return {name for name, (_, extra) in _members().items() if extra is None}


def _extras() -> dict[str, set[str]]:
    """Meta-package extra -> the distributions forktex.json puts behind it."""
    out: dict[str, set[str]] = {}
    for name, (_, extra) in _members().items():
        if extra is not None:
            out.setdefault(extra, set()).add(name)
    return out


def test_declares_runtime_modules_and_opt_in_ones_only_as_extras() -> None:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {_name(d) for d in project["dependencies"]} == _runtime()
    # The test stack and the web stack never come with a plain install.
    assert "forktex-core-testing" not in _runtime()
    assert "forktex-core-console" not in _runtime()
    # The span helpers every traced module shares are runtime, never behind an extra.
    assert "forktex-core-telemetry" in _runtime()
    assert _extras()["testing"] == {"forktex-core-testing"}
    assert _extras()["console"] == {"forktex-core-console"}
    extras = project["optional-dependencies"]
    assert {k: {_name(d) for d in v} for k, v in extras.items()} == _extras()


def test_installed_metadata_matches_and_every_module_imports() -> None:
    requires = md.requires("forktex-core") or []
    plain = {_name(r) for r in requires if "extra ==" not in r}
    assert plain == _runtime()
    for extra, names in _extras().items():
        marker = re.compile(rf"""extra == ["']{extra}["']""")
        assert {_name(r) for r in requires if marker.search(r)} == names, extra
    assert sorted(md.metadata("forktex-core").get_all("Provides-Extra")) == sorted(_extras())
    for module, _extra in _members().values():
        importlib.import_module(module)


def test_ships_no_code() -> None:
    assert not (PACKAGE / "src").exists()
