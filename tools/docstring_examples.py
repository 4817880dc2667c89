# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every public class and function carries a docstring with a short example, stdlib only.

The public names are each public package's ``__all__`` (read like ``tools/api_snapshot.py``
does: with :mod:`ast`, nothing is imported; packages below a private name such as
``flow._sql`` are internal). Each name is followed to where it is defined -- through
``from ._module import Name [as Alias]`` and ``Alias = Name`` inside the workspace -- and
when that is a ``class`` or a ``def`` its docstring must show an example in one of the forms
this repository writes them:

* an ``Example::`` block (also ``Examples::``, ``Example (sync)::``, ``For example::``)
  followed by an indented, non-empty code block;
* a ``>>>`` doctest line;
* a fenced code block (a line starting with three backticks);
* for an exception class only, a one-line example as an inline literal that catches or
  raises it: ``except StorageError: ...`` or ``raise StorageError(...)`` between double
  backquotes.

Names that are neither a class nor a function (constants, type aliases, objects) and names
re-exported from outside the workspace are not checked. A package whose ``__all__`` copies
another package's (an alias such as ``forktex_core.psql``) is checked through that package.

Usage::

    python3 tools/docstring_examples.py [--root DIR]   # exit 1 naming each name without one
"""

from __future__ import annotations

import argparse
import ast
import builtins
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


from api_snapshot import SnapshotError, public_packages  # noqa: E402  (sibling script)
from source_modules import SourceModule, workspace_modules  # noqa: E402

#: Public names allowed to lack an example for now, fully qualified (none today; an entry
#: that has an example by then is reported as stale, without failing, so the list only
#: shrinks).
ALLOWED: frozenset[str] = frozenset()

_EXAMPLE_BLOCK = re.compile(r"\bexamples?\b[^\n]*::\s*$", re.IGNORECASE)
_DEFINITION = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


class DocstringError(Exception):
    """The source cannot be read; the message names the file and line.

    Example: ``except DocstringError as exc: print(exc)``
    """


@dataclass(frozen=True)
class _Found:
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    module: SourceModule


def has_example(doc: str, *, exception: str | None = None) -> bool:
    """Whether a docstring shows an example (see the module's docstring for the forms);
    ``exception`` is the class name when the docstring is an exception class's.

    Example::

        >>> has_example("Add two numbers.\\n\\nExample::\\n\\n    add(1, 2)\\n")
        True
        >>> has_example("Raised by get. Example: ``except Gone: ...``", exception="Gone")
        True
        >>> has_example("Add two numbers.")
        False
    """
    lines = doc.expandtabs().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith((">>>", "```")):
            return True
        if _EXAMPLE_BLOCK.search(line):
            indent = len(line) - len(line.lstrip())
            for following in lines[i + 1 :]:
                if not following.strip():
                    continue
                if len(following) - len(following.lstrip()) > indent:
                    return True
                break
    if exception is not None:
        name = re.escape(exception)
        inline = rf"``[^`]*\b(?:except\b[^`]*\b{name}\b|raise\s+{name}\b)[^`]*``"
        return re.search(inline, doc) is not None
    return False


def _alias_package(tree: ast.Module) -> bool:
    """``__all__ = list(m.__all__)``: the package re-exports another one's names."""
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in ("list", "tuple")
            and value.args
            and isinstance(value.args[0], ast.Attribute)
            and value.args[0].attr == "__all__"
        ):
            return True
    return False


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run at import, flattening ``if`` / ``try`` bodies."""
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            out += _top_level(stmt.body) + _top_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            out += _top_level(stmt.body) + _top_level(stmt.orelse)
        else:
            out.append(stmt)
    return out


class _Resolver:
    """Follows a name from the module that binds it to the ``class`` / ``def`` defining it."""

    def __init__(self, modules: dict[str, SourceModule]) -> None:
        self.modules = modules
        self._trees: dict[str, ast.Module] = {}

    def tree(self, module: SourceModule) -> ast.Module:
        if module.name not in self._trees:
            try:
                text = module.path.read_text(encoding="utf-8")
                self._trees[module.name] = ast.parse(text, filename=module.relpath)
            except SyntaxError as exc:
                raise DocstringError(f"{module.relpath}:{exc.lineno}: cannot parse") from exc
        return self._trees[module.name]

    def _absolute(self, module: SourceModule, stmt: ast.ImportFrom) -> str:
        if not stmt.level:
            return stmt.module or ""
        base = module.package.split(".")
        if stmt.level > 1:
            base = base[: len(base) - (stmt.level - 1)]
        return ".".join([*base, stmt.module] if stmt.module else base)

    def find(self, module: SourceModule, name: str, seen: frozenset[str] = frozenset()) -> object:
        """A :class:`_Found`, ``None`` (not a class or function of the workspace), or
        ``"unbound"`` when ``module`` binds no ``name`` that can be read statically."""
        key = f"{module.name}.{name}"
        if key in seen:
            return None
        seen = seen | {key}
        binding: ast.stmt | None = None
        for stmt in _top_level(self.tree(module).body):
            if isinstance(stmt, _DEFINITION) and stmt.name == name:
                binding = stmt
            elif isinstance(stmt, ast.ImportFrom) and any(
                (a.asname or a.name) == name for a in stmt.names
            ):
                binding = stmt
            elif isinstance(stmt, ast.Import) and any(
                (a.asname or a.name.split(".")[0]) == name for a in stmt.names
            ):
                binding = stmt
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    binding = stmt
        if binding is None:
            return "unbound"
        if isinstance(binding, _DEFINITION):
            return _Found(binding, module)
        if isinstance(binding, ast.ImportFrom):
            source = self._absolute(module, binding)
            original = next(a.name for a in binding.names if (a.asname or a.name) == name)
            if f"{source}.{original}" in self.modules or source not in self.modules:
                return None  # a module, or something from outside the workspace
            found = self.find(self.modules[source], original, seen)
            return None if found == "unbound" else found
        if isinstance(binding, ast.Assign | ast.AnnAssign) and isinstance(binding.value, ast.Name):
            found = self.find(module, binding.value.id, seen)
            return None if found == "unbound" else found
        return None  # a constant, an object, an imported module

    def is_exception(self, found: _Found, seen: frozenset[str] = frozenset()) -> bool:
        """Whether a class derives (as far as the source shows) from ``BaseException``."""
        if not isinstance(found.node, ast.ClassDef):
            return False
        for base in found.node.bases:
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            builtin = getattr(builtins, name, None)
            if isinstance(builtin, type) and issubclass(builtin, BaseException):
                return True
            resolved = self.find(found.module, name) if isinstance(base, ast.Name) else None
            key = f"{found.module.name}.{name}"
            if isinstance(resolved, _Found) and key not in seen:
                if self.is_exception(resolved, seen | {key}):
                    return True
            elif name.endswith(("Error", "Exception", "Warning")):
                return True  # from outside the workspace: go by the name
        return False


@dataclass(frozen=True)
class Definition:
    """The ``class`` or ``def`` a public name is bound to, and its docstring."""

    public: str  # forktex_core.storage.S3Backend
    relpath: str  # where it is defined
    line: int
    kind: str  # "class" or "function"
    doc: str | None
    exception: str | None  # an exception class's own name: a one-line example is enough


@dataclass(frozen=True)
class Missing:
    """A public class or function whose docstring shows no example."""

    definition: Definition
    reason: str  # "has no docstring" / "has no example in its docstring"

    @property
    def public(self) -> str:
        """The public name: ``forktex_core.storage.S3Backend``."""
        return self.definition.public

    def __str__(self) -> str:
        d = self.definition
        return f"{d.relpath}:{d.line}: {d.public} ({d.kind}) {self.reason}"


def definitions(root: Path) -> list[Definition]:
    """Every public name of the workspace that is a class or function, where it is defined.

    Example::

        >>> [d.relpath for d in definitions(ROOT) if d.public.endswith("storage.S3Backend")]
        ['packages/forktex-core-storage/src/forktex_core/storage/_s3.py']
    """
    modules = workspace_modules(root)
    try:
        packages = public_packages(root, modules)
    except SnapshotError as exc:
        raise DocstringError(str(exc)) from exc
    resolver = _Resolver(modules)
    found_definitions: list[Definition] = []
    for package, names in packages.items():
        module = modules[package]
        if _alias_package(resolver.tree(module)):
            continue
        for name in names:
            found = resolver.find(module, name)
            if found == "unbound":
                raise DocstringError(
                    f"{module.relpath}: {package}.{name} is in __all__ but bound nowhere in "
                    "the package that can be read without running it"
                )
            if isinstance(found, _Found):
                node = found.node
                found_definitions.append(
                    Definition(
                        public=f"{package}.{name}",
                        relpath=found.module.relpath,
                        line=node.lineno,
                        kind="class" if isinstance(node, ast.ClassDef) else "function",
                        doc=ast.get_docstring(node),
                        exception=node.name if resolver.is_exception(found) else None,
                    )
                )
    return found_definitions


def missing(root: Path) -> list[Missing]:
    """Every public class or function of the workspace whose docstring shows no example,
    allow-listed ones (:data:`ALLOWED`) included.

    Example::

        >>> [m.public for m in missing(ROOT) if m.public not in ALLOWED]
        []
    """
    found_missing: list[Missing] = []
    for d in definitions(root):
        if d.doc is None:
            reason = "has no docstring"
        elif not has_example(d.doc, exception=d.exception):
            reason = "has no example in its docstring"
        else:
            continue
        found_missing.append(Missing(d, reason))
    return found_missing


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 ok, 1 missing examples, 2 unreadable)."""
    parser = argparse.ArgumentParser(
        prog="tools/docstring_examples.py", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        found = missing(args.root.resolve())
    except (DocstringError, ValueError) as exc:
        print(f"docstring examples: {exc}", file=sys.stderr)
        return 2
    problems = [m for m in found if m.public not in ALLOWED]
    stale = sorted(ALLOWED - {m.public for m in found})
    if stale:
        print(
            "docstring examples: these have an example now; remove them from ALLOWED in "
            "tools/docstring_examples.py: " + ", ".join(stale)
        )
    if problems:
        print(f"docstring examples: {len(problems)} public name(s) without one:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(
            "docstring examples: add an `Example::` block (or a >>> doctest) to each; an "
            "exception class may use a one-line ``except Name: ...``",
            file=sys.stderr,
        )
        return 1
    allowed = len(found) - len(problems)
    print(
        "docstring examples: every public class and function has one"
        + (f" ({allowed} allow-listed)" if allowed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
