# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Layering rules for every distribution's source: no import cycles, no private cross-access.

Stdlib only: the source is read with :mod:`ast`, never imported. Every finding is printed as
``path:line: message``.

Import cycles
-------------
The modules of all distributions (``tools/source_modules.py``) form one graph. Module A has an
edge to module B when A imports B *anywhere*: at the top, inside a function (a lazy import),
under ``if TYPE_CHECKING:``, inside ``try`` -- in any of the forms ``import a.b``,
``from a.b import c``, ``from . import c``, ``from .c import d``, ``from .. import c`` and
``importlib.import_module("a.b")`` (a literal name). A lazy or type-only import still ties the
two modules together: moving an import into a function hides a cycle, it does not remove it.

Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``: that is an edge to ``a.b`` too --
except for the packages that enclose A, which Python has always initialised (or is
initialising) before A runs. An import *of* an enclosing package does count:
``from . import Flow``, ``from forktex_core.flow import Flow`` or ``import forktex_core.flow``
inside ``forktex_core.flow._worker`` reads the package's ``__init__`` (an edge to it), while
``from . import _claim``, ``_claim`` being a submodule, is an edge to ``_claim`` only.

Every edge that lies on a cycle (inside a strongly connected component) is reported at each
import statement that makes it, with the shortest cycle through it:
``import cycle forktex_core.a._x -> forktex_core.a._y -> forktex_core.a._x``. Removing any
one reported import breaks that cycle.

Private access
--------------
A private name starts with ``_`` and is not a dunder (``__name__``) nor one of a named
tuple's documented methods (``_replace``, ``_asdict``, ...). Privacy is per module,
Python's own convention: a module may use the private members of what it defines, and
nothing else's. In a module M:

* ``X._name`` -- read (``X._n``, ``X._n()``), write (``X._n = v``, ``X._n += v``) or
  delete, and ``getattr`` / ``hasattr`` / ``setattr`` / ``delattr`` (also
  ``object.__setattr__``) with a literal ``"_name"`` -- is allowed when

  - X is the instance or class a method runs on: the first parameter of a function defined
    in a class body (``self``, ``cls``, whatever it is called; not in a ``@staticmethod``),
    also inside functions nested in that method, or ``super()``, ``type(self)``,
    ``self.__class__``; or
  - M defines ``_name`` itself: at module level, in a class body (assignment, annotation,
    ``def``, ``__slots__``) or as ``self._name = ...`` / ``cls._name = ...`` in a method.
    So ``other._key`` in ``__eq__`` and a module's functions using the private fields of
    the dataclasses it declares are fine.

  Anything else is a finding: ``ctx._marks`` where ``_marks`` belongs to another module's
  class, ``self._flow._dsn``, ``getattr(host, "_hooks", None)``.
* ``from m import _name`` where ``m._name`` is not a module is a finding: importing another
  module's private name is the same read as ``m._name``. The fix is to drop the underscore:
  a name in a private module (``_sql.py``) is package-internal already, because the module
  itself is private to its package.
* Importing a private module (one with a ``_`` part, like ``forktex_core.db._engine``) is
  allowed from inside the package that holds it (``forktex_core.flow._driver`` may import
  ``forktex_core.flow._claim``); from anywhere else it reaches past that package's public
  surface and is a finding. This covers other projects too (``_pytest.fixtures``).

A library's own internals are the one deliberate exception: a line that reads a private
attribute no forktex_core module defines (SQLAlchemy's ``Insert._values``, say) passes when
it carries ``# third-party private: <library> (<why>)``, which names the dependency the code
leans on and shows in review. The mark never excuses a name defined in the workspace.

Limits, by design of a type-free check: ``other._n`` passes when M defines *any* ``_n``, and
a subclass uses its base class's private members through ``self`` (inheritance). The rule
aims at what review misses: reaching into an object that belongs to another module.

Baseline (a ratchet)
--------------------
``tools/layering_baseline.txt`` holds the findings the code base is known to have, one
``<count> <key>`` line each. Keys carry no line numbers, so moving code inside a module keeps
them: ``cycle A -> B`` (A imports B, on a cycle), ``private-read M ._n``,
``private-write M ._n``, ``private-import M m._n`` and ``private-module M m._x``.
The check fails when a key occurs more often than its count (a new finding) and when it
occurs less often (fixed: the baseline must shrink with the code). ``--update-baseline``
removes and lowers entries; it adds none unless ``--allow-new`` (recording a known finding
that moved, say), which then shows in review as an added line.

Usage::

    python3 tools/layering.py [--root DIR]           # check against the baseline
    python3 tools/layering.py --no-baseline          # every finding, baseline ignored
    python3 tools/layering.py --summary              # findings per distribution
    python3 tools/layering.py --update-baseline [--allow-new]
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "tools/layering_baseline.txt"


import fsd  # noqa: E402  (a sibling script: tools/ is first on sys.path when run from there)
from source_modules import SourceModule, workspace_modules  # noqa: E402

_ACCESSORS = {"getattr": "read", "hasattr": "read", "setattr": "write", "delattr": "write"}
_OBJECT_ACCESSORS = {"__getattribute__": "read", "__setattr__": "write", "__delattr__": "write"}


class LayeringError(Exception):
    """The source cannot be checked (a file does not parse, the manifest is broken)."""


#: Documented public API despite the underscore: a named tuple's methods and fields record.
NAMEDTUPLE_API = frozenset({"_asdict", "_field_defaults", "_fields", "_make", "_replace"})


def is_private(name: str) -> bool:
    """``_x`` and ``__x`` are private; dunders (``__x__``), ``_`` alone and
    :data:`NAMEDTUPLE_API` are not."""
    if name in NAMEDTUPLE_API or len(name) < 2 or not name.startswith("_"):
        return False
    return not (name.startswith("__") and name.endswith("__") and len(name) > 4)


@dataclass(frozen=True)
class Finding:
    """One violation: where, what (for people) and its baseline key (for the ratchet)."""

    path: str
    line: int
    message: str
    key: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# --------------------------------------------------------------------------------------
# scanning one module
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawImport:
    line: int
    module: str | None  # as written, without the leading dots
    level: int  # 0 = absolute
    names: tuple[str, ...] | None  # None for ``import x`` / import_module("x")
    context: str  # "top-level", "function-level" or "TYPE_CHECKING"


@dataclass(frozen=True)
class _Access:
    line: int
    receiver: str
    name: str
    kind: str  # "read" or "write"


@dataclass
class _Scan:
    imports: list[_RawImport] = field(default_factory=list)
    accesses: list[_Access] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_staticmethod(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "staticmethod")
        or (isinstance(d, ast.Attribute) and d.attr == "staticmethod")
        for d in node.decorator_list
    )


def _literal(node: ast.expr | None) -> str | None:
    """The value of a string literal, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _bound_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _bound_names(element)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


class _Scanner(ast.NodeVisitor):
    """One walk over a module: its imports, private accesses and the private names it defines."""

    def __init__(self) -> None:
        self.scan = _Scan()
        self._scopes: list[str] = ["module"]  # "module" | "class" | "function"
        self._self_names: list[frozenset[str]] = [frozenset()]
        self._type_checking = 0

    # -- context --------------------------------------------------------------------

    def _context(self) -> str:
        if self._type_checking:
            return "TYPE_CHECKING"
        return "function-level" if "function" in self._scopes else "top-level"

    def _define_bound(self, targets: Iterable[ast.expr]) -> None:
        if self._scopes[-1] in ("module", "class"):
            for target in targets:
                self.scan.defined.update(n for n in _bound_names(target) if is_private(n))

    def _is_self_like(self, node: ast.expr) -> bool:
        selves = self._self_names[-1]
        if isinstance(node, ast.Name):
            return node.id in selves
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "super":
                return "class" in self._scopes
            if node.func.id == "type" and len(node.args) == 1:
                return self._is_self_like(node.args[0])
        if isinstance(node, ast.Attribute) and node.attr == "__class__":
            return self._is_self_like(node.value)
        return False

    def _access(self, node: ast.AST, receiver: ast.expr, name: str, kind: str) -> None:
        if not is_private(name):
            return
        if self._is_self_like(receiver):
            if kind == "write" and isinstance(receiver, ast.Name):
                self.scan.defined.add(name)  # self._x = ... defines _x in this module
            return
        line = getattr(node, "lineno", 0)
        self.scan.accesses.append(_Access(line, ast.unparse(receiver), name, kind))

    # -- scopes ---------------------------------------------------------------------

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if self._scopes[-1] in ("module", "class") and is_private(node.name):
            self.scan.defined.add(node.name)
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in stmt.targets
            ):
                for element in ast.walk(stmt.value):
                    if isinstance(element, ast.Constant) and isinstance(element.value, str):
                        if is_private(element.value):
                            self.scan.defined.add(element.value)
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr)
        self._scopes.append("class")
        for stmt in node.body:
            self.visit(stmt)
        self._scopes.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self._scopes[-1] in ("module", "class") and is_private(node.name):
            self.scan.defined.add(node.name)
        for expr in node.decorator_list:
            self.visit(expr)
        self.visit(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        selves = self._self_names[-1]
        positional = [*node.args.posonlyargs, *node.args.args]
        if self._scopes[-1] == "class" and positional and not _is_staticmethod(node):
            selves = selves | {positional[0].arg}
        self._scopes.append("function")
        self._self_names.append(selves)
        for stmt in node.body:
            self.visit(stmt)
        self._self_names.pop()
        self._scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit(node.args)
        self._scopes.append("function")
        self.visit(node.body)
        self._scopes.pop()

    def visit_If(self, node: ast.If) -> None:
        self.visit(node.test)
        if _is_type_checking(node.test):
            self._type_checking += 1
            for stmt in node.body:
                self.visit(stmt)
            self._type_checking -= 1
        else:
            for stmt in node.body:
                self.visit(stmt)
        for stmt in node.orelse:
            self.visit(stmt)

    # -- definitions ----------------------------------------------------------------

    def visit_Assign(self, node: ast.Assign) -> None:
        self._define_bound(node.targets)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._define_bound([node.target])
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._define_bound([node.target])
        self.generic_visit(node)

    # -- imports --------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.scan.imports.append(_RawImport(node.lineno, alias.name, 0, None, self._context()))
        if self._scopes[-1] == "module":
            for alias in node.names:
                bound = alias.asname or alias.name.partition(".")[0]
                if is_private(bound):
                    self.scan.defined.add(bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        names = tuple(alias.name for alias in node.names)
        self.scan.imports.append(
            _RawImport(node.lineno, node.module, node.level, names, self._context())
        )

    # -- accesses -------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        kind = "read" if isinstance(node.ctx, ast.Load) else "write"
        self._access(node, node.value, node.attr, kind)
        self.visit(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        args: list[ast.expr | None] = [*node.args[:2], None, None]
        first, second = _literal(args[0]), _literal(args[1])  # literal names only
        if second is not None and isinstance(func, ast.Name) and called in _ACCESSORS:
            self._access(node, node.args[0], second, _ACCESSORS[called])
        elif (
            second is not None
            and called in _OBJECT_ACCESSORS
            and isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "object"
        ):
            self._access(node, node.args[0], second, _OBJECT_ACCESSORS[called])
        if first is not None and called in ("import_module", "__import__"):
            self.scan.imports.append(_RawImport(node.lineno, first, 0, None, self._context()))
        self.generic_visit(node)


def _parse(module: SourceModule) -> ast.Module:
    try:
        return ast.parse(module.path.read_text(encoding="utf-8"), filename=module.relpath)
    except SyntaxError as exc:
        raise LayeringError(f"{module.relpath}:{exc.lineno}: cannot parse: {exc.msg}") from None


def scan_module(module: SourceModule) -> _Scan:
    """The imports, private accesses and defined private names of ``module``."""
    scanner = _Scanner()
    scanner.visit(_parse(module))
    return scanner.scan


# --------------------------------------------------------------------------------------
# imports -> edges
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    importer: str
    target: str
    line: int
    context: str


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _absolute(importer: SourceModule, raw: _RawImport) -> str | None:
    """The absolute module a (possibly relative) import names; None beyond the top."""
    if raw.level == 0:
        return raw.module
    parts = importer.package.split(".")
    if raw.level - 1 >= len(parts):
        return None
    base = parts[: len(parts) - (raw.level - 1)]
    return ".".join(base + ([raw.module] if raw.module else []))


def _edges_of(
    importer: SourceModule, raw: _RawImport, modules: dict[str, SourceModule]
) -> list[str]:
    """The workspace modules whose code ``raw`` runs (or reads) on behalf of ``importer``."""
    target = _absolute(importer, raw)
    if target is None:
        return []
    enclosing = set(_prefixes(importer.package))
    found = [p for p in _prefixes(target)[:-1] if p in modules and p not in enclosing]
    if target in modules and (raw.names is None or target not in enclosing):
        found.append(target)  # ``import P`` names P even when P encloses the importer
    for name in raw.names or ():
        sub = f"{target}.{name}"
        if sub in modules:
            found.append(sub)
        elif target in modules and target not in found:
            found.append(target)  # a name read from the package's __init__ (or ``*``)
    return [t for t in dict.fromkeys(found) if t != importer.name]


def import_edges(modules: dict[str, SourceModule], scans: dict[str, _Scan]) -> list[_Edge]:
    """Every import edge between workspace modules, one per import statement and target."""
    edges: list[_Edge] = []
    for name, module in modules.items():
        for raw in scans[name].imports:
            for target in _edges_of(module, raw, modules):
                edges.append(_Edge(name, target, raw.line, raw.context))
    return edges


def _components(nodes: Iterable[str], graph: dict[str, set[str]]) -> dict[str, int]:
    """Tarjan's strongly connected components, iteratively: node -> component id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = index[node]
                    if member == node:
                        break
    return component


def _path_back(graph: dict[str, set[str]], start: str, goal: str, allowed: set[str]) -> list[str]:
    """The shortest import path start -> ... -> goal inside ``allowed`` (breadth first)."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while (before := previous[path[-1]]) is not None:
                path.append(before)
            return path[::-1]
        for succ in sorted(graph[node]):
            if succ in allowed and succ not in previous:
                previous[succ] = node
                queue.append(succ)
    raise AssertionError(f"{goal} is not reachable from {start} inside its component")


def cycle_findings(modules: dict[str, SourceModule], scans: dict[str, _Scan]) -> list[Finding]:
    """One finding per import statement whose edge lies on an import cycle."""
    edges = import_edges(modules, scans)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        graph[edge.importer].add(edge.target)
    component = _components(sorted(modules), graph)
    members: dict[int, set[str]] = defaultdict(set)
    for name, comp in component.items():
        members[comp].add(name)
    findings: list[Finding] = []
    for edge in edges:
        comp = component[edge.importer]
        if component[edge.target] != comp:
            continue
        chain = [edge.importer, *_path_back(graph, edge.target, edge.importer, members[comp])]
        context = "" if edge.context == "top-level" else f" ({edge.context} import)"
        findings.append(
            Finding(
                modules[edge.importer].relpath,
                edge.line,
                "import cycle " + " -> ".join(chain) + context,
                f"cycle {edge.importer} -> {edge.target}",
            )
        )
    return findings


# --------------------------------------------------------------------------------------
# private access
# --------------------------------------------------------------------------------------


def _owner_of_private(module: str) -> str | None:
    """For ``a.b._c.d`` the package holding the first private part (``a.b``); None if public."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:i])
    return None


def _inside(importer: str, package: str) -> bool:
    return bool(package) and (importer == package or importer.startswith(package + "."))


#: The comment that marks a line reading a third-party library's private attribute on
#: purpose: ``stmt._values  # third-party private: sqlalchemy (no public accessor)``.
THIRD_PARTY_PRAGMA = re.compile(r"#\s*third-party private:\s*\S")


def private_findings(modules: dict[str, SourceModule], scans: dict[str, _Scan]) -> list[Finding]:
    """Private reads and writes across modules, private-name and private-module imports.

    A line marked with :data:`THIRD_PARTY_PRAGMA` may read a private attribute that no module
    of the workspace defines (a library's internals, used deliberately and named in the
    comment); the mark never excuses a name some forktex_core module defines."""
    findings: list[Finding] = []
    ours = set().union(*(scan.defined for scan in scans.values()))
    for name, module in modules.items():
        scan = scans[name]
        lines: list[str] | None = None
        for access in scan.accesses:
            if access.name in scan.defined:
                continue
            if f"{access.receiver}.{access.name}" in modules:
                continue  # a private submodule reached through its package: the import is checked
            if access.name not in ours:
                if lines is None:
                    lines = module.path.read_text(encoding="utf-8").splitlines()
                if THIRD_PARTY_PRAGMA.search(lines[access.line - 1]):
                    continue
            verb = "reads" if access.kind == "read" else "writes"
            findings.append(
                Finding(
                    module.relpath,
                    access.line,
                    f"{verb} private attribute {access.name} of {access.receiver} "
                    f"({access.name} is not defined in {name})",
                    f"private-{access.kind} {name} .{access.name}",
                )
            )
        for raw in scan.imports:
            target = _absolute(module, raw)
            if target is None:
                continue
            imported = [target]
            for imported_name in raw.names or ():
                full = f"{target}.{imported_name}"
                if full in modules or imported_name == "*":
                    imported.append(full)
                elif is_private(imported_name):
                    findings.append(
                        Finding(
                            module.relpath,
                            raw.line,
                            f"imports private name {imported_name} from {target} (drop the "
                            "underscore to make it package-internal, or keep it in its module)",
                            f"private-import {name} {full}",
                        )
                    )
            for path in imported:
                owner = _owner_of_private(path)
                if owner is None or _inside(name, owner):
                    continue
                findings.append(
                    Finding(
                        module.relpath,
                        raw.line,
                        f"imports private module {path} from outside "
                        f"{owner or 'its own package'} (use its package's public names)",
                        f"private-module {name} {path}",
                    )
                )
    return findings


# --------------------------------------------------------------------------------------
# the check and the baseline
# --------------------------------------------------------------------------------------


def findings(root: Path) -> list[Finding]:
    """Every finding in the workspace under ``root``, ordered by path and line."""
    try:
        modules = workspace_modules(root)
    except (fsd.ManifestError, ValueError) as exc:  # a module shipped twice is a ValueError
        raise LayeringError(str(exc)) from None
    scans = {name: scan_module(module) for name, module in modules.items()}
    found = cycle_findings(modules, scans) + private_findings(modules, scans)
    return sorted(found, key=lambda f: (f.path, f.line, f.message))


def read_baseline(path: Path) -> Counter[str]:
    """``<count> <key>`` lines (``#`` comments and blank lines ignored) as a counter."""
    counts: Counter[str] = Counter()
    if not path.is_file():
        return counts
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        count, _, key = text.partition(" ")
        if not count.isdigit() or int(count) < 1 or not key.strip():
            raise LayeringError(
                f"{path}:{number}: expected '<count> <key>', got {line!r} (regenerate it with "
                "python3 tools/layering.py --update-baseline)"
            )
        counts[key.strip()] += int(count)
    return counts


def render_baseline(counts: Counter[str]) -> str:
    """The baseline file's text for ``counts``."""
    header = (
        "# Known layering findings (tools/layering.py): '<count> <key>' per line. The check\n"
        "# fails on any finding not listed here and on any entry that occurs less often than\n"
        "# listed, so this file only shrinks: fix a finding, then run\n"
        "#   python3 tools/layering.py --update-baseline\n"
    )
    body = "".join(f"{counts[key]} {key}\n" for key in sorted(counts) if counts[key] > 0)
    return header + body


@dataclass(frozen=True)
class Comparison:
    """Findings beyond the baseline, and baseline entries that occur less often now."""

    new: list[Finding]
    stale: dict[str, tuple[int, int]]  # key -> (listed, found)

    @property
    def ok(self) -> bool:
        """Whether the code matches its baseline exactly."""
        return not self.new and not self.stale


def compare(found: list[Finding], baseline: Counter[str]) -> Comparison:
    """Every key found more often than listed is new (all its occurrences are shown)."""
    counts = Counter(f.key for f in found)
    new = [f for f in found if counts[f.key] > baseline[f.key]]
    stale = {k: (baseline[k], counts[k]) for k in sorted(baseline) if counts[k] < baseline[k]}
    return Comparison(new, stale)


def summary(root: Path, found: list[Finding]) -> list[str]:
    """Per distribution: its import cycles (groups of modules tied in a circle, and the
    imports on them) and its private findings by kind."""
    modules = workspace_modules(root)
    by_path = {m.relpath: m for m in modules.values()}
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    group: dict[str, str] = {}  # union-find over the modules on cycle edges

    def top(name: str) -> str:
        while group.setdefault(name, name) != name:
            name = group[name]
        return name

    for finding in found:
        kind, _, rest = finding.key.partition(" ")
        kinds[by_path[finding.path].distribution][kind] += 1
        if kind == "cycle":
            importer, target = rest.split(" -> ")
            group[top(importer)] = top(target)
    circles: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name in sorted(group):
        circles[modules[name].distribution][top(name)].append(name.rpartition(".")[2])
    lines = []
    for dist in sorted({m.distribution for m in modules.values()}):
        row = kinds.get(dist, Counter())
        parts = []
        if circles[dist]:
            shown = "; ".join(" ".join(members) for members in circles[dist].values())
            parts.append(
                f"{len(circles[dist])} import cycle(s) ({row.pop('cycle')} imports on them: "
                f"{shown})"
            )
        parts.extend(f"{n} {kind}" for kind, n in sorted(row.items()))
        lines.append(f"{dist}: " + (", ".join(parts) if parts else "clean"))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 ok, 1 findings, 2 cannot check)."""
    parser = argparse.ArgumentParser(
        prog="tools/layering.py", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--baseline", type=Path, help=f"baseline file (default {BASELINE})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-baseline", action="store_true", help="report every finding")
    mode.add_argument("--summary", action="store_true", help="findings per distribution")
    mode.add_argument("--update-baseline", action="store_true", help="shrink the baseline")
    parser.add_argument(
        "--allow-new", action="store_true", help="with --update-baseline: also record new ones"
    )
    args = parser.parse_args(argv)
    if args.allow_new and not args.update_baseline:
        parser.error("--allow-new only goes with --update-baseline")
    root: Path = args.root.resolve()
    baseline_path: Path = args.baseline or root / BASELINE
    try:
        found = findings(root)
        baseline = Counter() if args.no_baseline else read_baseline(baseline_path)
    except LayeringError as exc:
        print(f"layering: {exc}", file=sys.stderr)
        return 2

    if args.summary:
        for line in summary(root, found):
            print(line)
        return 0

    result = compare(found, baseline)
    if args.update_baseline:
        if result.new and not args.allow_new:
            print(
                f"layering: {len(result.new)} finding(s) not in the baseline; fix them (the "
                "baseline only shrinks), or record them with --allow-new:",
                file=sys.stderr,
            )
            for finding in result.new:
                print(f"  {finding}", file=sys.stderr)
            return 1
        counts = Counter(f.key for f in found)
        if not args.allow_new:
            counts = Counter({k: min(n, baseline[k]) for k, n in counts.items()})
        baseline_path.write_text(render_baseline(counts), encoding="utf-8")
        removed = sum(baseline.values()) - sum(counts.values())
        print(
            f"layering: {baseline_path.name} holds {sum(counts.values())} finding(s)"
            + (f" ({removed} fewer)" if removed > 0 else "")
        )
        return 0

    if result.new:
        print(
            f"layering: {len(result.new)} finding(s) not in the baseline (import cycles, "
            "private access across modules; rules in tools/layering.py):",
            file=sys.stderr,
        )
        for finding in result.new:
            print(f"  {finding}", file=sys.stderr)
    if result.stale:
        print(
            f"layering: {len(result.stale)} baseline entr(y/ies) occur less often now -- "
            "fixed, well done: shrink the baseline with `python3 tools/layering.py "
            "--update-baseline` and commit it:",
            file=sys.stderr,
        )
        for key, (listed, now) in result.stale.items():
            print(f"  {key}: listed {listed}, found {now}", file=sys.stderr)
    if not result.ok:
        return 1
    known = sum(baseline.values())
    print(
        "layering: no import cycle and no private cross-access"
        + (f" beyond the {known} known in {baseline_path.name}" if known else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
