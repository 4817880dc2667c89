# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Check that the meta-package pins every distribution at a range its version satisfies.

The meta-package ``forktex-core`` (``"meta": true`` in ``forktex.json``) depends on every
module distribution with a bounded, compatible range (``forktex-core-db>=0.3,<0.4``). This
tool fails, naming each problem, when

* ``forktex.json`` lists no meta-package;
* a distribution in ``forktex.json`` is not pinned by the meta-package, or has no
  ``[tool.uv.sources]`` workspace entry there. A runtime module must be pinned in its
  ``dependencies`` (``pip install forktex-core`` brings it); a distribution marked
  ``"extra": "<name>"`` in ``forktex.json`` (the test plugin, ``"testing"``) must be pinned
  in that optional extra and nowhere else, so that the plain install never brings it;
* a pin is unbounded (it needs a lower and an upper bound) or names a ``forktex-core-*``
  distribution the workspace does not have;
* a distribution's version leaves the range the meta-package pins -- or the range any
  other workspace member pins it at (``forktex-core-data`` requires ``forktex-core-db``).

Usage (in the workspace environment, which has ``packaging``)::

    uv run --locked --all-packages python tools/pins.py check [--root DIR]

``make pins-check`` runs exactly that. Versions, specifiers and requirements are
:mod:`packaging`'s (PEP 440 / PEP 508); this module adds only what pins need on top --
whether a range is bounded, how the meta-package writes a compatible range -- and
``tools/release.py`` uses the same helpers.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import Specifier
    from packaging.utils import canonicalize_name as canonical_name
    from packaging.version import InvalidVersion, Version
except ModuleNotFoundError as exc:  # run with a bare interpreter instead of the workspace's
    raise SystemExit(
        f"{exc}: tools/pins.py and tools/release.py run in the workspace environment: "
        "uv run --locked --all-packages python tools/<tool>.py ... (make deps installs it)"
    ) from None

ROOT = Path(__file__).resolve().parents[1]


import fsd  # noqa: E402  (a sibling script: tools/ is first on sys.path when run from there)

__all__ = [
    "InvalidRequirement",
    "InvalidVersion",
    "Project",
    "Requirement",
    "Version",
    "canonical_name",
    "check",
    "compatible_range",
    "contains",
    "is_bounded",
    "parse_requirement",
    "parse_version",
    "read_project",
    "specifier_text",
]

# --------------------------------------------------------------------------------------
# PEP 440 / PEP 508 through packaging
# --------------------------------------------------------------------------------------


def parse_version(text: str) -> Version:
    """``text`` as a PEP 440 version, or :class:`InvalidVersion` naming it.

    Example: ``str(parse_version("1.0-RC1")) == "1.0rc1"``.
    """
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        raise InvalidVersion(
            f"{text!r} is not a PEP 440 version (examples: 0.3.1, 0.4.0rc1, 1.0.0.post1)"
        ) from None


def parse_requirement(text: str) -> Requirement:
    """``text`` (``forktex-core-db>=0.3,<0.4``) as a PEP 508 requirement.

    Raises :class:`InvalidRequirement` naming the text and what packaging could not read.
    """
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise InvalidRequirement(f"cannot read requirement {text!r}: {reason}") from None


#: Lower bounds first, then exact and exclusions, then upper bounds: ``>=0.3,<0.4``.
_OPERATOR_ORDER = {">=": 0, ">": 1, "~=": 2, "==": 3, "===": 4, "!=": 5, "<=": 6, "<": 7}


def specifier_text(req: Requirement) -> str:
    """The version range as people write it, lower bound first (``>=0.3,<0.4``)."""
    specs: list[Specifier] = sorted(
        req.specifier,  # type: ignore[arg-type]
        key=lambda s: (_OPERATOR_ORDER.get(s.operator, 9), s.version),
    )
    return ",".join(str(s) for s in specs)


def contains(req: Requirement, version: Version) -> bool:
    """Whether ``version`` is inside ``req``'s range, pre-releases included: a workspace
    member at ``0.5.0rc1`` is in ``>=0.5.0rc1,<0.6`` (and ``<0.4`` still excludes
    ``0.4.0rc1``, as PEP 440 says)."""
    return req.specifier.contains(version, prereleases=True)


def is_bounded(req: Requirement) -> bool:
    """It has a lower and an upper bound, or is an exact or compatible (``~=``) pin."""
    ops = {s.operator for s in req.specifier}
    exact = any(s.operator in ("==", "===") and not s.version.endswith(".*") for s in req.specifier)
    return exact or "~=" in ops or (bool(ops & {">=", ">"}) and bool(ops & {"<", "<="}))


def compatible_range(version: Version) -> str:
    """The range the meta-package pins for ``version``: same minor for 0.x, same major after.

    ``0.4.2`` -> ``>=0.4,<0.5``; ``1.2.0`` -> ``>=1.2,<2``; a pre-release is its own lower
    bound (``0.5.0rc1`` -> ``>=0.5.0rc1,<0.6``) so that it satisfies the range.
    """
    major, minor = version.major, version.minor
    lower = str(version) if version.is_prerelease else f"{major}.{minor}"
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={lower},<{upper}"


# --------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """What pins need from one package's ``pyproject.toml``."""

    name: str
    path: str
    version: str
    dependencies: tuple[str, ...]
    extras: dict[str, tuple[str, ...]]
    uv_sources: dict[str, Any]

    def requirements(self) -> list[tuple[str | None, str]]:
        """``(extra or None, requirement text)`` for every dependency it declares."""
        found: list[tuple[str | None, str]] = [(None, d) for d in self.dependencies]
        for extra, deps in self.extras.items():
            found.extend((extra, d) for d in deps)
        return found


def read_project(root: Path, path: str) -> Project:
    """Read ``<root>/<path>/pyproject.toml``; raises ``ValueError`` naming what is missing."""
    pyproject = root / path / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}/pyproject.toml cannot be read: {exc}") from None
    project = data.get("project", {})
    if not isinstance(project.get("name"), str) or not isinstance(project.get("version"), str):
        raise ValueError(f"{path}/pyproject.toml: [project] needs a literal name and version")
    extras = project.get("optional-dependencies", {})
    return Project(
        name=project["name"],
        path=path,
        version=project["version"],
        dependencies=tuple(project.get("dependencies", [])),
        extras={k: tuple(v) for k, v in extras.items()},
        uv_sources=dict(data.get("tool", {}).get("uv", {}).get("sources", {})),
    )


def check(root: Path) -> list[str]:
    """Every pin problem under ``root``; empty when the pins hold."""
    try:
        manifest = fsd.load_manifest(root)
    except fsd.ManifestError as exc:
        return [str(exc)]
    problems: list[str] = []
    projects: dict[str, Project] = {}
    for pkg in manifest.packages:
        try:
            projects[canonical_name(pkg.name)] = read_project(root, pkg.path)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        return problems
    meta_pkg = manifest.meta
    if meta_pkg is None:
        return [
            'forktex.json lists no meta-package: add {"name": "forktex-core", "path": '
            '"packages/forktex-core", "module": null, "meta": true}'
        ]
    meta = projects[canonical_name(meta_pkg.name)]
    members = {canonical_name(p.name): projects[canonical_name(p.name)] for p in manifest.members}

    pinned: dict[str, list[str]] = {}
    pinned_where: dict[str, set[str | None]] = {}
    for extra, text in meta.requirements():
        where = f"{meta.path}/pyproject.toml" + (f" extra [{extra}]" if extra else "")
        try:
            req = parse_requirement(text)
        except InvalidRequirement as exc:
            problems.append(f"{where}: {exc}")
            continue
        name = canonical_name(req.name)
        if name not in members:
            if name.startswith("forktex-core"):
                problems.append(
                    f"{where} pins {name}, which is not a workspace distribution "
                    "(forktex.json): remove the pin"
                )
            continue
        pinned.setdefault(name, []).append(text)
        pinned_where.setdefault(name, set()).add(extra)
        if not is_bounded(req):
            member = members[name]
            problems.append(
                f"{where}: {text!r} is not a bounded range: pin it as "
                f"'{name}{compatible_range(parse_version(member.version))}'"
            )
    extra_of = {canonical_name(p.name): p.extra for p in manifest.members}
    for name, member in members.items():
        wanted = extra_of[name]
        where = "its optional extra [" + wanted + "]" if wanted else "its dependencies"
        if name not in pinned:
            problems.append(
                f"{member.name} ({member.path}) exists but the meta-package {meta.name} does not "
                f"pin it: add '{member.name}"
                f"{compatible_range(parse_version(member.version))}' to {where} "
                "and a [tool.uv.sources] workspace entry"
            )
        elif pinned_where[name] != {wanted}:
            found = ", ".join(
                "dependencies" if e is None else f"extra [{e}]"
                for e in sorted(pinned_where[name], key=lambda e: e or "")
            )
            why = (
                f'it is marked "extra": "{wanted}" in forktex.json: pip install '
                f"{meta.name} must not bring it"
                if wanted
                else "it is a runtime module: pip install " + meta.name + " must bring it"
            )
            problems.append(
                f"{meta.path}/pyproject.toml pins {member.name} in {found}; pin it in "
                f"{where} only ({why})"
            )
        source = {canonical_name(k): v for k, v in meta.uv_sources.items()}.get(name)
        if name in pinned and not (isinstance(source, dict) and source.get("workspace") is True):
            problems.append(
                f"{meta.path}/pyproject.toml: [tool.uv.sources] lacks "
                f"'{member.name} = {{ workspace = true }}'"
            )

    # Every member's version inside every range a workspace package pins it at.
    for dependent in projects.values():
        for extra, text in dependent.requirements():
            try:
                req = parse_requirement(text)
            except InvalidRequirement:
                continue  # reported above for the meta-package; members are not policed
            target = members.get(canonical_name(req.name))
            if target is None:
                continue
            try:
                inside = contains(req, parse_version(target.version))
            except InvalidVersion as exc:
                problems.append(f"{dependent.path}: {exc}")
                continue
            if not inside:
                fix = (
                    "move the meta-package's range (tools/release.py does this)"
                    if dependent is meta
                    else f"widen {dependent.name}'s range and release it"
                )
                problems.append(
                    f"{target.name} is at {target.version}, outside the range "
                    f"{dependent.name} pins ({text!r} in {dependent.path}/pyproject.toml"
                    + (f", extra [{extra}]" if extra else "")
                    + f"): {fix}"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``check``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="tools/pins.py", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["check"])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    problems = check(args.root.resolve())
    if problems:
        print(f"pins check: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("pins check: the meta-package pins every distribution and every version is in range")
    return 0


if __name__ == "__main__":
    sys.exit(main())
