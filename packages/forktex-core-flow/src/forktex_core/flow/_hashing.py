# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""AST fingerprints of workflow bodies for the versioning gate.

A body is normalised as ``ast.parse`` → docstrings removed → decorators and the function's
own name dropped → ``ast.dump`` without line/column attributes, then SHA-256'd. Comments,
docstrings, blank lines, quoting and line wrapping therefore never change the hash; any
change to what the code does does.

``ctx.patched("fix-name")`` branches are found too, so the audit can tell "only added a
patched branch" apart from any other edit: :meth:`Fingerprint.hash_without` hashes the body
as it was before the given patches (``if ctx.patched(p): new else: old`` becomes ``old``).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    sdef = getattr(fn, "__forktex_step__", None)
    if sdef is not None:
        inner: Callable[..., Any] = sdef.fn
        return inner
    return fn


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (*_FUNCS, ast.ClassDef, ast.Module)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]


def _patch_name(node: ast.AST) -> str | None:
    """``"x"`` when ``node`` is a call ``<anything>.patched("x")``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "patched"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


class _Unpatch(ast.NodeTransformer):
    """Rewrite the body as it was before the given patches were added."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_If(self, node: ast.If) -> Any:
        name = _patch_name(node.test)
        if name in self.names:
            return [self.visit(n) for n in node.orelse]
        return self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        name = _patch_name(node.test)
        if name in self.names:
            return self.visit(node.orelse)
        return self.generic_visit(node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for attr in ("body", "orelse", "finalbody"):
            value = getattr(node, attr, None)
            if isinstance(value, list) and not value and attr == "body":
                setattr(node, attr, [ast.Pass()])
        return node


@dataclass(frozen=True)
class Fingerprint:
    """The normalised AST of one body: its hash and the ``ctx.patched`` names it uses."""

    hash: str | None
    patches: tuple[str, ...] = ()
    tree: ast.AST | None = field(default=None, compare=False, repr=False)
    error: str | None = None
    parts: tuple[tuple[str, str | Fingerprint], ...] = field(default=(), compare=False, repr=False)

    def hash_without(self, patches: Iterable[str]) -> str | None:
        """The hash of this body with the given patches' branches reverted."""
        names = set(patches) & set(self.patches)
        if not names:
            return self.hash
        if self.parts:
            return composite(self.parts, names).hash
        if self.tree is None:
            return self.hash
        tree = _Unpatch(names).visit(copy.deepcopy(self.tree))
        ast.fix_missing_locations(tree)
        return _digest(tree)


def _digest(tree: ast.AST) -> str:
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def normalise_source(source: str) -> ast.AST:
    """Parse ``source`` (one function definition) into its normalised form."""
    module = ast.parse(textwrap.dedent(source))
    node = next((n for n in module.body if isinstance(n, _FUNCS)), None)
    if node is None:
        raise ValueError("no function definition found")
    node.decorator_list = []
    node.name = "_"
    node.returns = None
    _strip_docstrings(node)
    return node


def fingerprint(fn: Callable[..., Any]) -> Fingerprint:
    """Fingerprint a function's body (steps are fingerprinted by their inner function).

    Example::

        fingerprint(deploy).hash  # 'c0ffee...' (64 hex digits), stable across reformatting
    """
    target = inspect.unwrap(_unwrap(fn))
    try:
        source = inspect.getsource(target)
        tree = normalise_source(source)
    except (OSError, TypeError, SyntaxError, ValueError) as exc:
        return Fingerprint(
            None,
            error=f"source of {getattr(target, '__qualname__', fn)!r} is not available ({exc})",
        )
    patches = sorted({n for node in ast.walk(tree) if (n := _patch_name(node)) is not None})
    return Fingerprint(_digest(tree), tuple(patches), tree)


def combine(parts: Iterable[tuple[str, str | None]]) -> str:
    """One SHA-256 over labelled parts (e.g. a graph's structure and its handlers)."""
    h = hashlib.sha256()
    for label, value in parts:
        h.update(label.encode())
        h.update(b"\0")
        h.update((value or "-").encode())
        h.update(b"\n")
    return h.hexdigest()


def composite(
    parts: Iterable[tuple[str, str | Fingerprint]], without: Iterable[str] = ()
) -> Fingerprint:
    """A fingerprint over labelled parts: plain strings (structure) and body fingerprints."""
    items = tuple(parts)
    names = set(without)
    values: list[tuple[str, str | None]] = []
    patches: set[str] = set()
    errors: list[str] = []
    for label, part in items:
        if isinstance(part, Fingerprint):
            values.append((label, part.hash_without(names) if names else part.hash))
            patches.update(part.patches)
            if part.error:
                errors.append(part.error)
        else:
            values.append((label, part))
    if errors:
        return Fingerprint(None, tuple(sorted(patches)), error="; ".join(errors), parts=items)
    return Fingerprint(combine(values), tuple(sorted(patches)), parts=items)
