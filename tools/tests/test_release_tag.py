# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
from __future__ import annotations

import re
from pathlib import Path

import pytest
import release_tag  # tools/ is on pytest's pythonpath

REPO = Path(__file__).resolve().parents[2]


def _workspace(tmp_path: Path, name: str, version: str) -> Path:
    pkg = tmp_path / "packages" / name
    pkg.mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "{version}"\n')
    return tmp_path


def test_resolves_matching_tag(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "forktex-core-cache", "0.3.1")
    assert release_tag.resolve("forktex-core-cache-v0.3.1", root) == {
        "distribution": "forktex-core-cache",
        "version": "0.3.1",
        "path": "packages/forktex-core-cache",
    }


def test_refuses_version_mismatch(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "forktex-core-cache", "0.3.1")
    with pytest.raises(release_tag.TagError, match=r"says 0\.3\.2 .* has version 0\.3\.1"):
        release_tag.resolve("forktex-core-cache-v0.3.2", root)


@pytest.mark.parametrize("tag", ["v0.3.1", "forktex-core-cache-0.3.1", "cache-v1.0.0", ""])
def test_refuses_malformed_tag(tmp_path: Path, tag: str) -> None:
    with pytest.raises(release_tag.TagError, match="not of the form"):
        release_tag.resolve(tag, _workspace(tmp_path, "forktex-core-cache", "0.3.1"))


def test_refuses_unknown_distribution(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "forktex-core-cache", "0.3.1")
    with pytest.raises(release_tag.TagError, match="known: forktex-core-cache"):
        release_tag.resolve("forktex-core-nope-v0.3.1", root)


def _real_version(path: str) -> str:
    text = (REPO / path / "pyproject.toml").read_text()
    match = re.search(r'(?m)^version = "([^"]+)"', text)
    assert match is not None
    return match[1]


def test_real_workspace_tags_resolve() -> None:
    version = _real_version("packages/forktex-core-testing")
    out = release_tag.resolve(f"forktex-core-testing-v{version}")
    assert out["path"] == "packages/forktex-core-testing"
    assert release_tag.main(["forktex-core-testing-v9.9.9"]) == 1
    assert release_tag.main([]) == 2


def test_meta_package_tag_is_not_confused_with_a_module_tag(tmp_path: Path) -> None:
    _workspace(tmp_path, "forktex-core", "0.3.1")
    _workspace(tmp_path, "forktex-core-db", "0.3.0")
    assert release_tag.resolve("forktex-core-v0.3.1", tmp_path)["path"] == "packages/forktex-core"
    assert release_tag.resolve("forktex-core-db-v0.3.0", tmp_path)["distribution"] == (
        "forktex-core-db"
    )
    with pytest.raises(release_tag.TagError, match=r"says 0\.3\.0 .* has version 0\.3\.1"):
        release_tag.resolve("forktex-core-v0.3.0", tmp_path)


def test_real_workspace_meta_package_tag() -> None:
    version = _real_version("packages/forktex-core")
    out = release_tag.resolve(f"forktex-core-v{version}")
    assert out == {
        "distribution": "forktex-core",
        "version": version,
        "path": "packages/forktex-core",
    }
