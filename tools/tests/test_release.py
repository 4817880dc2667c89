# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/release.py on a copied repository tree: version, changelog, meta range, tag."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]


import release  # noqa: E402  (tools/ is on pytest's pythonpath)
import release_tag  # noqa: E402

pins = release.pins

DATE = "2026-05-04"


def version_of(root: Path, dist: str) -> str:
    data = tomllib.loads((root / "packages" / dist / "pyproject.toml").read_text())
    return str(data["project"]["version"])


def meta_deps(root: Path) -> list[str]:
    data = tomllib.loads((root / "packages/forktex-core/pyproject.toml").read_text())
    return list(data["project"]["dependencies"])


def changelog(root: Path, dist: str) -> str:
    return (root / "packages" / dist / "CHANGELOG.md").read_text()


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "release.py"), "--root", str(root), "--no-lock",
         "--date", DATE, *args],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_patch_release_inside_the_range(tree: Path) -> None:
    before_meta = (tree / "packages/forktex-core/pyproject.toml").read_text()
    result = run(tree, "forktex-core-cache", "0.3.1")
    assert result.returncode == 0, result.stderr
    assert version_of(tree, "forktex-core-cache") == "0.3.1"
    log = changelog(tree, "forktex-core-cache")
    assert "## 0.3.1 — 2026-05-04\n- First release of forktex-core-cache" in log
    assert "unreleased" not in log
    # the range >=0.3,<0.4 still holds 0.3.1: meta-package untouched
    assert (tree / "packages/forktex-core/pyproject.toml").read_text() == before_meta
    assert result.stdout.strip().splitlines()[-1] == "forktex-core-cache-v0.3.1"
    assert pins.check(tree) == []
    # the printed tag is one the release workflow accepts
    assert release_tag.resolve("forktex-core-cache-v0.3.1", tree)["version"] == "0.3.1"


def test_short_name_and_minor_release_move_the_meta_range(tree: Path) -> None:
    result = run(tree, "vault", "0.4.0", "--note", "KEK rotation resumes from a checkpoint.")
    assert result.returncode == 0, result.stderr
    assert version_of(tree, "forktex-core-vault") == "0.4.0"
    assert "forktex-core-vault>=0.4,<0.5" in meta_deps(tree)
    assert "forktex-core-vault>=0.3,<0.4" not in meta_deps(tree)
    assert "forktex-core-db>=0.3,<0.4" in meta_deps(tree)  # others untouched
    assert version_of(tree, "forktex-core") == "0.3.1"
    meta_log = changelog(tree, "forktex-core")
    assert "## 0.3.1 — 2026-05-04\n- Pins `forktex-core-vault>=0.4,<0.5` (was `>=0.3,<0.4`)" in (
        meta_log
    )
    vault_log = changelog(tree, "forktex-core-vault")
    assert "## 0.4.0 — 2026-05-04\n- KEK rotation resumes from a checkpoint.\n" in vault_log
    tags = result.stdout.split("tag(s) to push:\n")[1].split()
    assert tags == ["forktex-core-vault-v0.4.0", "forktex-core-v0.3.1"]
    assert pins.check(tree) == []
    for tag in tags:
        release_tag.resolve(tag, tree)


def test_second_release_adds_a_new_section_from_notes(tree: Path) -> None:
    assert run(tree, "forktex-core-queue", "0.3.1").returncode == 0
    refused = run(tree, "forktex-core-queue", "0.3.2")
    assert refused.returncode == 1
    assert "no unreleased section to date: describe the release with --note" in refused.stderr
    assert version_of(tree, "forktex-core-queue") == "0.3.1"  # nothing written
    ok = run(tree, "forktex-core-queue", "0.3.2", "--note", "Fix A.", "--note", "Fix B.")
    assert ok.returncode == 0, ok.stderr
    log = changelog(tree, "forktex-core-queue")
    assert log.index("## 0.3.2 — 2026-05-04\n- Fix A.\n- Fix B.\n\n## 0.3.1 — 2026-05-04") > 0


def test_unreleased_heading_forms(tree: Path) -> None:
    path = tree / "packages/forktex-core-storage/CHANGELOG.md"
    path.write_text("# Changelog\n\n## Unreleased\n- New thing.\n\n## 0.3.0 — 2026-01-01\n- Old.\n")
    assert run(tree, "storage", "0.3.1").returncode == 0
    assert path.read_text() == (
        "# Changelog\n\n## 0.3.1 — 2026-05-04\n- New thing.\n\n## 0.3.0 — 2026-01-01\n- Old.\n"
    )


def test_first_release_of_the_current_version_dates_it(tree: Path) -> None:
    """0.3.0 is in pyproject but its changelog says unreleased: releasing 0.3.0 dates it."""
    result = run(tree, "forktex-core", "0.3.0")
    assert result.returncode == 0, result.stderr
    assert "## 0.3.0 — 2026-05-04" in changelog(tree, "forktex-core")
    assert result.stdout.strip().splitlines()[-1] == "forktex-core-v0.3.0"
    # ... but only once
    again = run(tree, "forktex-core", "0.3.0")
    assert again.returncode == 1
    assert "the new version must be greater" in again.stderr


def test_meta_package_release(tree: Path) -> None:
    result = run(tree, "forktex-core", "0.3.1")
    assert result.returncode == 0, result.stderr
    assert version_of(tree, "forktex-core") == "0.3.1"
    assert result.stdout.strip().splitlines()[-1] == "forktex-core-v0.3.1"
    # forktex-core-v... and forktex-core-db-v... resolve to different packages
    assert release_tag.resolve("forktex-core-v0.3.1", tree)["path"] == "packages/forktex-core"
    assert release_tag.resolve("forktex-core-db-v0.3.0", tree)["path"] == "packages/forktex-core-db"


def test_pre_release_range(tree: Path) -> None:
    result = run(tree, "cache", "0.5.0rc1", "--note", "Preview.")
    assert result.returncode == 0, result.stderr
    assert "forktex-core-cache>=0.5.0rc1,<0.6" in meta_deps(tree)
    assert pins.check(tree) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("forktex-core-nope", "0.3.1"), "unknown package 'forktex-core-nope': known"),
        (("cache", "latest"), "'latest' is not a PEP 440 version"),
        (("cache", "0.3"), "must have three release numbers"),
        (("cache", "0.3.1-RC1"), "not normalised PEP 440: write it as '0.3.1rc1'"),
        (("cache", "0.3.1+local"), "local versions"),
        (("cache", "0.2.9"), "forktex-core-cache is at 0.3.0: the new version must be greater"),
        (("cache", "0.3.0rc1"), "the new version must be greater"),
        (("cache", "0.3.0"), "changelog has no unreleased 0.3.0 section"),
        (("cache", "0.3.1", "--date", "May 4th"), "is not an ISO date"),
        (("db", "0.4.0"), "forktex-core-flow requires 'forktex-core-db>=0.3,<0.4'"),
    ],
)
def test_refuses_bad_input_and_writes_nothing(
    tree: Path, args: tuple[str, ...], message: str
) -> None:
    if args == ("cache", "0.3.0"):  # the current version, already dated
        log = tree / "packages/forktex-core-cache/CHANGELOG.md"
        log.write_text(log.read_text().replace("0.3.0 — unreleased", "0.3.0 — 2026-04-01"))
    snapshot = {p: p.read_text() for p in tree.rglob("*") if p.is_file()}
    result = run(tree, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("release refused: ")
    assert message in result.stderr
    assert {p: p.read_text() for p in tree.rglob("*") if p.is_file()} == snapshot


def test_dated_entry_for_the_version_is_refused(tree: Path) -> None:
    log = tree / "packages/forktex-core-cache/CHANGELOG.md"
    log.write_text("# Changelog\n\n## Unreleased\n- x\n\n## 0.3.1 — 2026-01-01\n- y\n")
    result = run(tree, "cache", "0.3.1")
    assert result.returncode == 1
    assert "already has a dated entry for 0.3.1" in result.stderr


def test_set_requirement_range_keeps_extras_and_markers() -> None:
    text = "dependencies = [\n  \"forktex-core-db[x]>=0.3,<0.4 ; python_version >= '3.11'\",\n]\n"
    new, old = release.set_requirement_range(text, "forktex-core-db", ">=0.4,<0.5", "f")
    assert old == "forktex-core-db[x]>=0.3,<0.4 ; python_version >= '3.11'"
    assert "\"forktex-core-db[x]>=0.4,<0.5; python_version >= '3.11'\"" in new
    with pytest.raises(release.ReleaseError, match="expected one requirement"):
        release.set_requirement_range(text, "forktex-core-cache", ">=0.4,<0.5", "f")
