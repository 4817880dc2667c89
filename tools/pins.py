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

Usage::

    python3 tools/pins.py check [--root DIR]

Stdlib only (it runs before any dependency is installed); the PEP 440 subset implemented
here -- versions with pre/post/dev parts, and the ``>= > <= < == != ~= ==X.*`` operators --
is shared with ``tools/release.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


import fsd  # noqa: E402  (a sibling script: tools/ is first on sys.path when run from there)

# --------------------------------------------------------------------------------------
# PEP 440 versions (the subset a release needs)
# --------------------------------------------------------------------------------------

_VERSION = re.compile(
    r"""^\s*v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_n1>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_PRE_LETTER = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "pre": "rc"}
_PRE_ORDER = {"a": 0, "b": 1, "rc": 2}


class InvalidVersion(ValueError):
    """Not a PEP 440 version; the message names the value."""


@dataclass(frozen=True)
class Version:
    """A parsed PEP 440 version, ordered as PEP 440 orders them."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[str, int] | None
    post: int | None
    dev: int | None
    local: str | None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``text`` or raise :class:`InvalidVersion`."""
        match = _VERSION.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidVersion(
                f"{text!r} is not a PEP 440 version (examples: 0.3.1, 0.4.0rc1, 1.0.0.post1)"
            )
        pre = None
        if match["pre_l"]:
            letter = match["pre_l"].lower()
            pre = (_PRE_LETTER.get(letter, letter), int(match["pre_n"] or 0))
        post = None
        if match["post_n1"] is not None:
            post = int(match["post_n1"])
        elif match["post_l"]:
            post = int(match["post_n2"] or 0)
        return cls(
            epoch=int(match["epoch"] or 0),
            release=tuple(int(part) for part in match["release"].split(".")),
            pre=pre,
            post=post,
            dev=int(match["dev_n"] or 0) if match["dev_l"] else None,
            local=match["local"].lower() if match["local"] else None,
        )

    def __str__(self) -> str:
        """The normalised form (``1.0-RC1`` -> ``1.0rc1``)."""
        text = f"{self.epoch}!" if self.epoch else ""
        text += ".".join(map(str, self.release))
        if self.pre:
            text += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            text += f".post{self.post}"
        if self.dev is not None:
            text += f".dev{self.dev}"
        if self.local:
            text += f"+{self.local}"
        return text

    @property
    def is_prerelease(self) -> bool:
        """Pre-releases and dev releases."""
        return self.pre is not None or self.dev is not None

    @property
    def trimmed_release(self) -> tuple[int, ...]:
        """The release segment without trailing zeros (``1.0.0`` == ``1``)."""
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        return tuple(release)

    def key(self) -> tuple[Any, ...]:
        """Sort key implementing PEP 440 ordering (local labels ignored)."""
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple[int, ...] = (-1,)  # 1.0.dev0 sorts before 1.0a0
        elif self.pre is None:
            pre = (3,)
        else:
            pre = (_PRE_ORDER[self.pre[0]], self.pre[1])
        post = (-1,) if self.post is None else (0, self.post)
        dev = (1,) if self.dev is None else (0, self.dev)
        return (self.epoch, self.trimmed_release, pre, post, dev)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def same_as(self, other: Version) -> bool:
        """PEP 440 equality (``1.0`` == ``1.0.0``), local labels ignored."""
        return self.key() == other.key()


# --------------------------------------------------------------------------------------
# specifiers and requirements
# --------------------------------------------------------------------------------------

_CLAUSE = re.compile(r"^\s*(?P<op>~=|==|!=|<=|>=|<|>)\s*(?P<version>[^\s,]+)\s*$")


class InvalidSpecifier(ValueError):
    """A version specifier this tool cannot read; the message names it."""


@dataclass(frozen=True)
class Clause:
    """One ``<op><version>`` clause of a specifier set."""

    op: str
    version: str

    def contains(self, candidate: Version) -> bool:
        """Whether ``candidate`` satisfies this clause (PEP 440 semantics)."""
        if self.op in ("==", "!=") and self.version.endswith(".*"):
            prefix = Version.parse(self.version[:-2])
            padded = candidate.release + (0,) * max(0, len(prefix.release) - len(candidate.release))
            hit = candidate.epoch == prefix.epoch and padded[: len(prefix.release)] == tuple(
                prefix.release
            )
            return hit if self.op == "==" else not hit
        bound = Version.parse(self.version)
        if self.op == "==":
            return candidate.same_as(bound)
        if self.op == "!=":
            return not candidate.same_as(bound)
        if self.op == ">=":
            return candidate >= bound
        if self.op == "<=":
            return candidate <= bound
        if self.op == ">":
            if not candidate > bound:
                return False
            # ">V" does not admit post-releases of V (unless V is one).
            return not (
                bound.post is None
                and candidate.post is not None
                and candidate.trimmed_release == bound.trimmed_release
                and candidate.pre == bound.pre
            )
        if self.op == "<":
            if not candidate < bound:
                return False
            # "<V" does not admit pre-releases of V (unless V is one).
            return not (
                not bound.is_prerelease
                and candidate.is_prerelease
                and (candidate.epoch, candidate.trimmed_release)
                == (bound.epoch, bound.trimmed_release)
            )
        # "~=X.Y.Z" means ">=X.Y.Z, ==X.Y.*"
        if len(bound.release) < 2:
            raise InvalidSpecifier(f"'~={self.version}' needs at least two release numbers")
        stem = ".".join(map(str, bound.release[:-1])) + ".*"
        return candidate >= bound and Clause("==", stem).contains(candidate)


@dataclass(frozen=True)
class Requirement:
    """A PEP 508 requirement string, as far as pins need it."""

    text: str
    name: str  # canonical
    extras: tuple[str, ...]
    clauses: tuple[Clause, ...]
    marker: str | None

    @property
    def specifier(self) -> str:
        """The clauses joined back (``>=0.3,<0.4``)."""
        return ",".join(c.op + c.version for c in self.clauses)

    def contains(self, version: Version) -> bool:
        """Whether ``version`` satisfies every clause."""
        return all(c.contains(version) for c in self.clauses)

    @property
    def bounded(self) -> bool:
        """It has a lower and an upper bound (or is an exact pin)."""
        ops = {c.op for c in self.clauses}
        exact = any(c.op == "==" and not c.version.endswith(".*") for c in self.clauses)
        return exact or "~=" in ops or (bool(ops & {">=", ">"}) and bool(ops & {"<", "<="}))


_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:\[(?P<extras>[^\]]*)\])?\s*(?P<spec>[^;]*?)\s*(?:;(?P<marker>.*))?$"
)


def canonical_name(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> Requirement:
    """Parse a dependency string like ``forktex-core-db>=0.3,<0.4``."""
    match = _REQUIREMENT.match(text)
    if match is None or "@" in (match["spec"] or ""):
        raise InvalidSpecifier(f"cannot read requirement {text!r}")
    spec = (match["spec"] or "").strip()
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1]
    clauses: list[Clause] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        clause = _CLAUSE.match(part)
        if clause is None:
            raise InvalidSpecifier(f"cannot read version clause {part!r} in {text!r}")
        if not clause["version"].endswith(".*"):
            Version.parse(clause["version"])
        clauses.append(Clause(clause["op"], clause["version"]))
    extras = tuple(e.strip() for e in (match["extras"] or "").split(",") if e.strip())
    marker = match["marker"].strip() if match["marker"] else None
    return Requirement(text, canonical_name(match["name"]), extras, tuple(clauses), marker)


def compatible_range(version: Version) -> str:
    """The range the meta-package pins for ``version``: same minor for 0.x, same major after.

    ``0.4.2`` -> ``>=0.4,<0.5``; ``1.2.0`` -> ``>=1.2,<2``; a pre-release is its own lower
    bound (``0.5.0rc1`` -> ``>=0.5.0rc1,<0.6``) so that it satisfies the range.
    """
    major, minor = version.release[0], version.release[1] if len(version.release) > 1 else 0
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
        except (InvalidSpecifier, InvalidVersion) as exc:
            problems.append(f"{where}: {exc}")
            continue
        if req.name not in members:
            if req.name.startswith("forktex-core"):
                problems.append(
                    f"{where} pins {req.name}, which is not a workspace distribution "
                    "(forktex.json): remove the pin"
                )
            continue
        pinned.setdefault(req.name, []).append(text)
        pinned_where.setdefault(req.name, set()).add(extra)
        if not req.bounded:
            member = members[req.name]
            problems.append(
                f"{where}: {text!r} is not a bounded range: pin it as "
                f"'{req.name}{compatible_range(Version.parse(member.version))}'"
            )
    extra_of = {canonical_name(p.name): p.extra for p in manifest.members}
    for name, member in members.items():
        wanted = extra_of[name]
        where = "its optional extra [" + wanted + "]" if wanted else "its dependencies"
        if name not in pinned:
            problems.append(
                f"{member.name} ({member.path}) exists but the meta-package {meta.name} does not "
                f"pin it: add '{member.name}"
                f"{compatible_range(Version.parse(member.version))}' to {where} "
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
            except (InvalidSpecifier, InvalidVersion):
                continue  # reported above for the meta-package; members are not policed
            target = members.get(req.name)
            if target is None:
                continue
            try:
                version = Version.parse(target.version)
                inside = req.contains(version)
            except (InvalidVersion, InvalidSpecifier) as exc:
                problems.append(f"{dependent.path}: {exc}")
                continue
            if not inside:
                fix = (
                    "move the meta-package's range (python3 tools/release.py does this)"
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
