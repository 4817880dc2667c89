#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Prepare the release of one distribution: version, changelog, meta-package range, tag.

Usage (in the workspace environment: ``tools/pins.py`` needs ``packaging``)::

    uv run --locked --all-packages python tools/release.py PACKAGE VERSION
        [--note TEXT ...] [--date YYYY-MM-DD] [--no-lock] [--root DIR]

``PACKAGE`` is a distribution from ``forktex.json`` (``forktex-core-cache``; the short form
``cache`` works too; ``forktex-core`` is the meta-package). ``VERSION`` is a normalised
PEP 440 version with three release numbers (``0.3.1``, ``0.4.0rc1``, ``1.0.0.post1``) greater
than the current one. The tool

1. sets ``version`` in the package's ``pyproject.toml``;
2. dates the package's ``CHANGELOG.md``: the top ``unreleased`` section (``## Unreleased``,
   ``## 0.3.1 — unreleased``) becomes ``## VERSION — DATE``; without one, a new dated
   section is added holding the ``--note`` lines (required then, so no release goes out
   undescribed). ``--note`` lines are added to an unreleased section too;
3. when VERSION leaves the range the meta-package pins (``forktex-core-db>=0.3,<0.4`` and
   0.4.0), moves that range to the compatible one (``>=0.4,<0.5``), bumps the meta-package's
   patch version and records it in the meta-package's ``CHANGELOG.md``;
4. runs ``uv lock`` (the lock file records every workspace version; ``--no-lock`` skips it);
5. prints the tag(s) to push, ``<distribution>-v<version>`` -- the release workflow
   publishes exactly the distribution a tag names.

It refuses, writing nothing, an unknown package, a version that is not PEP 440, not
normalised or not greater than the current one, and a version that another workspace
member's pin would exclude (``forktex-core-data`` requires ``forktex-core-db>=0.3,<0.4``:
widen and release that first). The one exception to "greater": releasing exactly the
current version is allowed while the changelog still has it as unreleased (the first
release of a version the package already carries, e.g. ``0.3.0``).

Versions and requirements are read with :mod:`packaging`, through ``tools/pins.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


import pins  # noqa: E402  (a sibling script: tools/ is first on sys.path when run from there)

fsd = pins.fsd

_UNRELEASED = re.compile(r"^##\s+(?P<title>.*\bunreleased\b.*)$", re.IGNORECASE)
_HEADING = re.compile(r"^##\s+")


class ReleaseError(Exception):
    """The release cannot be prepared; the message says why and what to do. Nothing written."""


@dataclass
class Plan:
    """Every file change one release makes, computed before anything is written."""

    package: str
    old_version: str
    new_version: str
    writes: dict[Path, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# text edits
# --------------------------------------------------------------------------------------


def set_project_version(text: str, version: str, where: str) -> str:
    """``text`` (a pyproject.toml) with ``[project] version`` set to ``version``."""
    lines = text.splitlines(keepends=True)
    in_project = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            in_project = stripped == "[project]"
            continue
        match = re.match(r'^(\s*version\s*=\s*)(["\'])([^"\']*)\2(.*)$', line, re.DOTALL)
        if in_project and match:
            lines[i] = f"{match[1]}{match[2]}{version}{match[2]}{match[4]}"
            new = "".join(lines)
            if tomllib.loads(new)["project"]["version"] != version:
                raise ReleaseError(f"{where}: could not set the version (edit it by hand)")
            return new
    raise ReleaseError(f"{where}: no literal 'version = \"...\"' line in [project]")


def set_requirement_range(text: str, dist: str, new_range: str, where: str) -> tuple[str, str]:
    """``text`` with the dependency string naming ``dist`` given ``new_range``.

    Returns the new text and the old requirement string.
    """
    hits = []
    for match in re.finditer(r'"([^"\n]*)"', text):
        try:
            req = pins.parse_requirement(match[1])
        except pins.InvalidRequirement:
            continue
        if pins.canonical_name(req.name) == pins.canonical_name(dist) and req.specifier:
            hits.append(match)
    if len(hits) != 1:
        raise ReleaseError(
            f"{where}: expected one requirement on {dist} with a version range, found "
            f"{len(hits)}: fix the pin by hand"
        )
    match = hits[0]
    # Only the range changes: name, extras and marker stay exactly as written (a marker's
    # quotes must stay valid inside this TOML string).
    head = re.match(r"\s*[A-Za-z0-9._-]+\s*(?:\[[^\]]*\])?", match[1])
    assert head is not None
    _, semicolon, marker = match[1].partition(";")
    replacement = f'"{head[0].strip()}{new_range}' + (f"; {marker.strip()}" if semicolon else "")
    return text[: match.start()] + replacement + '"' + text[match.end() :], match[1]


def date_changelog(
    text: str | None, version: str, date: str, notes: list[str], where: str
) -> tuple[str, str]:
    """The changelog with ``version`` released on ``date``, and a one-line description.

    Turns the top ``unreleased`` section into ``## version — date`` (``notes`` added at its
    top), or adds a new dated section holding ``notes``.
    """
    heading = f"## {version} — {date}"
    bullets = [f"- {n.strip()}\n" for n in notes if n.strip()]
    if text is None:
        if not bullets:
            raise ReleaseError(f"{where} does not exist: describe the release with --note")
        return f"# Changelog\n\n{heading}\n{''.join(bullets)}", f"created with {heading}"
    lines = text.splitlines(keepends=True)
    if text and not text.endswith("\n"):
        lines[-1] += "\n"
    for line in lines:
        if re.match(rf"^##\s+\[?{re.escape(version)}\]?\s+(—|-|\()\s*\d{{4}}-", line):
            raise ReleaseError(f"{where} already has a dated entry for {version}: {line.strip()}")
    first = next((i for i, line in enumerate(lines) if _HEADING.match(line)), None)
    if first is not None and _UNRELEASED.match(lines[first].rstrip("\n")):
        old = lines[first].strip()
        lines[first : first + 1] = [heading + "\n", *bullets]
        return "".join(lines), f"'{old}' -> '{heading}'"
    if not bullets:
        raise ReleaseError(
            f"{where} has no unreleased section to date: describe the release with "
            "--note TEXT (repeatable)"
        )
    block = [heading + "\n", *bullets, "\n"]
    if first is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.extend(block[:-1])
    else:
        lines[first:first] = block
    return "".join(lines), f"added '{heading}'"


def _has_unreleased(text: str | None, version: str) -> bool:
    """Whether the top changelog section is ``version`` marked unreleased."""
    if text is None:
        return False
    for line in text.splitlines():
        if _HEADING.match(line):
            match = _UNRELEASED.match(line)
            named = re.search(rf"(?<![\d.]){re.escape(version)}(?![\d.])", line)
            return bool(match) and named is not None
    return False


# --------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------


def _resolve_package(manifest: Any, name: str) -> Any:
    """The manifest entry named ``name`` (or ``forktex-core-<name>``)."""
    packages = manifest.packages
    for pkg in packages:
        if name in (pkg.name, pkg.name.removeprefix("forktex-core-")) and name:
            return pkg
    known = ", ".join(p.name for p in packages)
    raise ReleaseError(f"unknown package {name!r}: known distributions are {known}")


def _check_version(text: str) -> pins.Version:
    """``text`` parsed, or :class:`ReleaseError` when it cannot be a release version."""
    try:
        version = pins.parse_version(text)
    except pins.InvalidVersion as exc:
        raise ReleaseError(str(exc)) from None
    if version.local or version.epoch:
        raise ReleaseError(f"{text!r}: local versions (+...) and epochs (N!) cannot be released")
    if len(version.release) != 3:
        raise ReleaseError(
            f"{text!r} must have three release numbers, MAJOR.MINOR.PATCH (e.g. 0.3.1): "
            "release tags are <distribution>-vMAJOR.MINOR.PATCH"
        )
    if str(version) != text:
        raise ReleaseError(f"{text!r} is not normalised PEP 440: write it as {str(version)!r}")
    return version


def plan_release(root: Path, package: str, version_text: str, date: str, notes: list[str]) -> Plan:
    """Compute every change releasing ``package`` at ``version_text`` makes (writes none)."""
    try:
        manifest = fsd.load_manifest(root)
    except fsd.ManifestError as exc:
        raise ReleaseError(str(exc)) from None
    pkg = _resolve_package(manifest, package)
    new = _check_version(version_text)
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise ReleaseError(f"--date {date!r} is not an ISO date (YYYY-MM-DD)") from None

    path = root / pkg.path
    name: str = pkg.name
    pyproject = path / "pyproject.toml"
    project = pins.read_project(root, pkg.path)
    current = pins.parse_version(project.version)
    changelog = path / "CHANGELOG.md"
    log_text = changelog.read_text(encoding="utf-8") if changelog.is_file() else None

    def rel(p: Path) -> str:
        return str(p.relative_to(root))

    first_release = new == current and _has_unreleased(log_text, version_text)
    if not (new > current or first_release):
        raise ReleaseError(
            f"{name} is at {project.version}: the new version must be greater, got "
            f"{version_text}"
            + (" (it is the current version, but the changelog has no unreleased "
               f"{version_text} section)" if new == current else "")
        )  # fmt: skip

    plan = Plan(name, project.version, version_text)
    if not first_release:
        plan.writes[pyproject] = set_project_version(
            pyproject.read_text(encoding="utf-8"), version_text, rel(pyproject)
        )
        plan.summary.append(f"{rel(pyproject)}: version {project.version} -> {version_text}")
    plan.writes[changelog], what = date_changelog(
        log_text, version_text, date, notes, rel(changelog)
    )
    plan.summary.append(f"{rel(changelog)}: {what}")
    plan.tags.append(f"{name}-v{version_text}")

    if pkg.meta:
        return plan

    # Other members pinning this one: refuse rather than publish a broken combination.
    blocked = []
    for other in manifest.members:
        if other.name == name:
            continue
        for _extra, text in pins.read_project(root, other.path).requirements():
            req = pins.parse_requirement(text)
            if pins.canonical_name(req.name) == pins.canonical_name(name) and not pins.contains(
                req, new
            ):
                blocked.append(f"{other.name} requires {text!r}")
    if blocked:
        raise ReleaseError(
            f"{name} {version_text} would leave the range other distributions pin: "
            + "; ".join(blocked)
            + f". Widen those ranges (and release them) first, then release {name}."
        )

    meta_pkg = manifest.meta
    if meta_pkg is None:
        return plan
    meta = pins.read_project(root, meta_pkg.path)
    pinned = [
        pins.parse_requirement(t)
        for _, t in meta.requirements()
        if pins.canonical_name(pins.parse_requirement(t).name) == pins.canonical_name(name)
    ]
    if pinned and all(pins.contains(r, new) for r in pinned):
        plan.summary.append(
            f"{meta.name}: range {pins.specifier_text(pinned[0])} already holds {new}"
        )
        return plan

    meta_dir = root / meta_pkg.path
    meta_py = meta_dir / "pyproject.toml"
    new_range = pins.compatible_range(new)
    meta_text, old_req = set_requirement_range(
        meta_py.read_text(encoding="utf-8"), name, new_range, rel(meta_py)
    )
    meta_version = pins.parse_version(meta.version)
    major, minor, patch = meta_version.release[:3]
    meta_new = f"{major}.{minor}.{patch + 1}"
    meta_text = set_project_version(meta_text, meta_new, rel(meta_py))
    plan.writes[meta_py] = meta_text
    old_spec = pins.specifier_text(pins.parse_requirement(old_req))
    plan.summary.append(
        f"{rel(meta_py)}: {name} {old_spec} -> {new_range}; version {meta.version} -> {meta_new}"
    )
    meta_log = meta_dir / "CHANGELOG.md"
    meta_log_text = meta_log.read_text(encoding="utf-8") if meta_log.is_file() else None
    note = f"Pins `{name}{new_range}` (was `{old_spec}`), for {name} {version_text}."
    plan.writes[meta_log], what = date_changelog(
        meta_log_text, meta_new, date, [note], rel(meta_log)
    )
    plan.summary.append(f"{rel(meta_log)}: {what}")
    plan.tags.append(f"{meta.name}-v{meta_new}")
    return plan


def apply(plan: Plan) -> None:
    """Write every planned file."""
    for path, text in plan.writes.items():
        path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="tools/release.py", description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument("package", help="distribution (forktex-core-cache) or short name (cache)")
    parser.add_argument("version", help="new version, normalised PEP 440 (e.g. 0.3.1)")
    parser.add_argument("--note", action="append", default=[], help="changelog line (repeat)")
    parser.add_argument("--date", default=dt.date.today().isoformat(), help="release date")
    parser.add_argument("--no-lock", action="store_true", help="do not run `uv lock`")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        plan = plan_release(root, args.package, args.version, args.date, args.note)
    except ReleaseError as exc:
        print(f"release refused: {exc}", file=sys.stderr)
        return 1
    apply(plan)
    print(f"{plan.package} {plan.old_version} -> {plan.new_version}")
    for line in plan.summary:
        print(f"  {line}")
    problems = pins.check(root)
    if problems:  # not expected: plan_release refuses what would break the pins
        print("pins check after the edit found problems:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if (root / "uv.lock").is_file() and not args.no_lock:
        uv = shutil.which("uv")
        locked = uv is not None and subprocess.run([uv, "lock"], cwd=root).returncode == 0
        if not locked:
            print("`uv lock` failed or uv is missing: run it before committing", file=sys.stderr)
            return 1
        print("  uv.lock: updated")
    paths = " ".join(sorted(str(p.relative_to(root)) for p in plan.writes))
    lock = " uv.lock" if (root / "uv.lock").is_file() else ""
    print("\nnext: make release-check, then commit and push the tag(s):")
    print(f"  git commit -m 'Release {plan.tags[0]}' -- {paths}{lock}")
    for tag in plan.tags:
        print(f"  git tag {tag} && git push origin {tag}")
    print("\ntag(s) to push:")
    for tag in plan.tags:
        print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
