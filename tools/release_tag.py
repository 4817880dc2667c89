#!/usr/bin/env python3
# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Resolve a release tag ``<distribution>-v<version>`` to one workspace distribution.

Prints ``distribution=...``, ``version=...`` and ``path=...`` lines (the GitHub Actions
output format) and exits 1 when the tag names no distribution or its version differs from
the package's ``pyproject.toml``.

Example::

    $ python3 tools/release_tag.py forktex-core-cache-v0.3.0
    distribution=forktex-core-cache
    version=0.3.0
    path=packages/forktex-core-cache
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = re.compile(r"^(?P<dist>forktex-core(?:-[a-z]+)*)-v(?P<version>\d+\.\d+\.\d+\S*)$")


class TagError(ValueError):
    """The tag cannot be released; the message says why."""


def resolve(tag: str, root: Path = ROOT) -> dict[str, str]:
    """Return distribution, version and path for ``tag``, or raise :class:`TagError`."""
    match = TAG.match(tag)
    if match is None:
        raise TagError(f"tag {tag!r} is not of the form <distribution>-v<major.minor.patch>")
    dist, version = match["dist"], match["version"]
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        if project["name"] == dist:
            if project["version"] != version:
                raise TagError(
                    f"tag {tag!r} says {version} but {pyproject.relative_to(root)} has "
                    f"version {project['version']}: bump the package (tools/release) or fix the tag"
                )
            return {
                "distribution": dist,
                "version": version,
                "path": str(pyproject.parent.relative_to(root)),
            }
    known = sorted(
        tomllib.loads(p.read_text())["project"]["name"]
        for p in root.glob("packages/*/pyproject.toml")
    )
    raise TagError(f"tag {tag!r} names no distribution; known: {', '.join(known)}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: release_tag.py <distribution>-v<version>", file=sys.stderr)
        return 2
    try:
        resolved = resolve(argv[0])
    except TagError as exc:
        print(f"release refused: {exc}", file=sys.stderr)
        return 1
    for key, value in resolved.items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
