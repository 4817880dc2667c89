# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every Python module each workspace distribution ships, by dotted name (stdlib only).

The distributions come from ``forktex.json`` (``tools/fsd.py``); a distribution's modules are
the ``.py`` files under ``packages/<distribution>/src/``, named by their path below ``src``
(``src/forktex_core/flow/_driver.py`` is ``forktex_core.flow._driver``; a package's
``__init__.py`` carries the package's name). One distribution may ship several packages:
``forktex-core-db`` ships ``forktex_core.db`` and its alias ``forktex_core.psql``.

Example::

    >>> mods = workspace_modules(ROOT)
    >>> mods["forktex_core.flow"].is_package
    True

Used by ``tools/layering.py`` (import cycles, private access) and ``tools/api_snapshot.py``
(the ``__all__`` snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


import fsd  # noqa: E402  (a sibling script: tools/ is first on sys.path when run from there)

SKIP_DIRS = frozenset({"__pycache__", "build", "dist"})


@dataclass(frozen=True)
class SourceModule:
    """One module of a distribution's source tree."""

    name: str  # dotted: forktex_core.flow._driver
    path: Path  # absolute
    relpath: str  # relative to the repository root, for messages
    distribution: str
    is_package: bool  # the module is a package's __init__.py

    @property
    def package(self) -> str:
        """The package the module's relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _module_name(src: Path, path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def workspace_modules(root: Path) -> dict[str, SourceModule]:
    """Every module of every distribution under ``root``, keyed by dotted name.

    Raises :class:`fsd.ManifestError` when ``forktex.json`` cannot be read, and
    ``ValueError`` when two distributions ship a module of the same name.
    """
    manifest = fsd.load_manifest(root)
    found: dict[str, SourceModule] = {}
    for pkg in manifest.members:
        src = root / pkg.path / "src"
        if not src.is_dir():
            continue
        for path in sorted(src.rglob("*.py")):
            rel_parts = path.relative_to(src).parts
            if any(part in SKIP_DIRS or part.startswith(".") for part in rel_parts):
                continue
            name, is_package = _module_name(src, path)
            if not name:
                continue
            relpath = path.relative_to(root).as_posix()
            if name in found:
                raise ValueError(
                    f"{relpath} and {found[name].relpath} are both module {name}: a module "
                    "belongs to exactly one distribution"
                )
            found[name] = SourceModule(name, path, relpath, pkg.name, is_package)
    return found
