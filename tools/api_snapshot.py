# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Keep a reviewed snapshot of every distribution's public names (``__all__``), stdlib only.

``tools/api_snapshot/<distribution>.txt`` lists, one per line and sorted, the fully
qualified public names of every public package the distribution ships (none below a private
name such as ``flow._sql``) -- each ``__init__.py``'s
``__all__``, read with :mod:`ast` (nothing is imported)::

    forktex_core.cache.CacheError
    forktex_core.cache.cached
    forktex_core.redis.CacheError
    ...

A change to any ``__all__`` makes ``check`` fail with a diff until the snapshot is refreshed
with ``--update`` and committed, so every public API change shows up in review as a change
to these files.

``__all__`` must be readable without running the module: a list or tuple of string
literals, ``+`` of those, ``__all__ += [...]``, or -- for an alias package that re-exports
another one -- ``list(<m>.__all__)`` where ``<m> = importlib.import_module("<literal>")``
names a workspace package (``forktex_core.psql`` re-exports ``forktex_core.db``). A package
without ``__all__``, or one written any other way, is an error naming the file and line.

Usage::

    python3 tools/api_snapshot.py [--root DIR]           # check (exit 1 with a diff)
    python3 tools/api_snapshot.py --update [--root DIR]  # rewrite the snapshot files
"""

from __future__ import annotations

import argparse
import ast
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_DIR = "tools/api_snapshot"


from source_modules import SourceModule, workspace_modules  # noqa: E402  (sibling script)


class SnapshotError(Exception):
    """``__all__`` cannot be read statically; the message names the file, line and fix."""


def _where(module: SourceModule, node: ast.AST) -> str:
    return f"{module.relpath}:{getattr(node, 'lineno', 0)}"


def _import_module_name(value: ast.expr | None) -> str | None:
    """``"m"`` for ``importlib.import_module("m")`` (or ``import_module("m")``)."""
    if not (isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords):
        return None
    func, arg = value.func, value.args[0]
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called == "import_module" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def _import_module_aliases(tree: ast.Module) -> dict[str, str]:
    """``name = importlib.import_module("literal")`` bindings at module level."""
    aliases: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        else:
            continue
        imported = _import_module_name(value)
        if imported is not None:
            aliases.update({t.id: imported for t in targets if isinstance(t, ast.Name)})
    return aliases


class _AllReader:
    def __init__(self, modules: dict[str, SourceModule]) -> None:
        self.modules = modules
        self._reading: list[str] = []

    def names(self, package: str) -> list[str]:
        """The names in ``package``'s ``__all__``, in source order."""
        module = self.modules[package]
        if package in self._reading:
            chain = " -> ".join([*self._reading, package])
            raise SnapshotError(f"{module.relpath}: __all__ refers to itself ({chain})")
        self._reading.append(package)
        try:
            return self._names(module)
        finally:
            self._reading.pop()

    def _names(self, module: SourceModule) -> list[str]:
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=module.relpath)
        aliases = _import_module_aliases(tree)
        names: list[str] | None = None
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
            ):
                names = self._value(module, stmt.value, aliases)
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == "__all__"
                and stmt.value is not None
            ):
                names = self._value(module, stmt.value, aliases)
            elif (
                isinstance(stmt, ast.AugAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == "__all__"
                and isinstance(stmt.op, ast.Add)
            ):
                if names is None:
                    raise SnapshotError(f"{_where(module, stmt)}: __all__ += before __all__ =")
                names = names + self._value(module, stmt.value, aliases)
        if names is None:
            raise SnapshotError(
                f"{module.relpath}: package {module.name} has no __all__: declare its public "
                "names (__all__ = [...])"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SnapshotError(
                f"{module.relpath}: __all__ lists {', '.join(duplicates)} more than once"
            )
        return names

    def _value(self, module: SourceModule, node: ast.expr, aliases: dict[str, str]) -> list[str]:
        if isinstance(node, ast.List | ast.Tuple):
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                return [e.value for e in node.elts]  # type: ignore[attr-defined]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._value(module, node.left, aliases) + self._value(
                module, node.right, aliases
            )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("list", "tuple")
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Attribute)
            and node.args[0].attr == "__all__"
            and isinstance(node.args[0].value, ast.Name)
        ):
            source = aliases.get(node.args[0].value.id)
            if source in self.modules and self.modules[source].is_package:
                return self.names(source)
        raise SnapshotError(
            f"{_where(module, node)}: cannot read __all__ without running the module; write "
            "it as a list of string literals (or list(m.__all__) with "
            'm = importlib.import_module("forktex_core.<package>") for an alias package)'
        )


def public_packages(
    root: Path, modules: dict[str, SourceModule] | None = None
) -> dict[str, list[str]]:
    """Every public package's ``__all__`` (in source order), keyed by package, sorted.

    A package below a private name (``flow._sql``) is internal: not public API, not listed.
    ``modules`` (from :func:`source_modules.workspace_modules`) saves reading the tree twice.

    Example::

        >>> "CacheError" in public_packages(ROOT)["forktex_core.cache"]
        True
    """
    modules = workspace_modules(root) if modules is None else modules
    reader = _AllReader(modules)
    return {
        name: reader.names(name)
        for name, module in sorted(modules.items())
        if module.is_package and not any(part.startswith("_") for part in name.split("."))
    }


def snapshots(root: Path) -> dict[str, str]:
    """The snapshot text of every distribution that ships a package, keyed by distribution."""
    modules = workspace_modules(root)
    lines: dict[str, list[str]] = {}
    for name, names in public_packages(root, modules).items():
        qualified = (f"{name}.{public}" for public in names)
        lines.setdefault(modules[name].distribution, []).extend(qualified)
    return {
        dist: f"# {dist}: the __all__ of every package it ships (python3 tools/api_snapshot.py "
        "--update)\n" + "".join(f"{n}\n" for n in sorted(names))
        for dist, names in lines.items()
    }


def check(root: Path) -> list[str]:
    """Every difference between the sources and the committed snapshot, with a diff."""
    problems: list[str] = []
    directory = root / SNAPSHOT_DIR
    expected = snapshots(root)
    for dist, text in expected.items():
        path = directory / f"{dist}.txt"
        if not path.is_file():
            problems.append(f"{SNAPSHOT_DIR}/{dist}.txt is missing")
            continue
        current = path.read_text(encoding="utf-8")
        if current != text:
            diff = difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{SNAPSHOT_DIR}/{dist}.txt (committed)",
                f"{dist} (__all__ in the source)",
                lineterm="",
            )
            problems.append(
                f"the public API of {dist} changed:\n" + "\n".join("    " + d for d in diff)
            )
    if directory.is_dir():
        for path in sorted(directory.glob("*.txt")):
            if path.stem not in expected:
                problems.append(
                    f"{SNAPSHOT_DIR}/{path.name} belongs to no distribution that ships a "
                    "package: delete it"
                )
    return problems


def update(root: Path) -> list[str]:
    """Rewrite the snapshot files; returns the ones that changed (relative paths)."""
    directory = root / SNAPSHOT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    expected = snapshots(root)
    changed = []
    for dist, text in expected.items():
        path = directory / f"{dist}.txt"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(f"{SNAPSHOT_DIR}/{path.name}")
    for path in sorted(directory.glob("*.txt")):
        if path.stem not in expected:
            path.unlink()
            changed.append(f"{SNAPSHOT_DIR}/{path.name} (deleted)")
    return changed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 ok, 1 changed, 2 cannot read)."""
    parser = argparse.ArgumentParser(
        prog="tools/api_snapshot.py", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot files")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        if args.update:
            changed = update(root)
            print("api snapshot: " + (", ".join(changed) if changed else "already up to date"))
            return 0
        problems = check(root)
    except (SnapshotError, SyntaxError, ValueError) as exc:
        print(f"api snapshot: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"api snapshot: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print(
            "api snapshot: if the change is intended, run `python3 tools/api_snapshot.py "
            "--update` (make api-snapshot) and commit tools/api_snapshot/",
            file=sys.stderr,
        )
        return 1
    print("api snapshot: every __all__ matches tools/api_snapshot/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
