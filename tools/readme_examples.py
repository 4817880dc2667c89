# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Run every Python example of every README against real services (stdlib only).

``tools/tests/test_readme_examples.py`` (part of ``make test``) runs this for the root
``README.md`` and every ``packages/*/README.md``, so an example cannot drift from the code.

**What runs.** Every fenced block whose info string is ``python`` (or ``py``, ``python3``,
``py3``), indented ones inside list items included. The blocks of one README run in order,
top to bottom, in one namespace -- a later block may use what an earlier one defined,
as a reader would -- in a fresh Python process per README. Top-level ``await`` works
(the blocks of a README share one event loop); a block that calls ``asyncio.run(...)``
runs as a script would. A block that defines ``test_*`` functions is a pytest module: it
runs with ``python -m pytest`` in an empty directory (a fresh project, no configuration),
and every test must pass. Any other Python-like info string (``pycon``, ``ipython``) is
refused: write it as ``python``.

**Markers** are HTML comments (invisible on GitHub and PyPI) right next to a block::

    <!-- example: setup
    mailer = FakeMailer()          # hidden code run just before the next block
    -->
    <!-- example: after
    await signup(User("a@example.com"))   # hidden code run just after the block above
    -->
    <!-- example: skip needs a real AWS account -->   (the next block is compiled, not run)

``skip`` needs a reason and is for blocks that need something outside the test services
(a real cloud endpoint). Every Python block is run unless it is marked ``skip``; a marker
that is misspelt or not next to a Python block is an error, and so is a Python-like fence
this module cannot parse -- so no block is silently left out.

**Output.** ``print(...)  # -> text`` asserts what that ``print`` wrote;
``expression  # -> text`` asserts the ``repr`` of the expression's value. The annotation may
also stand on its own line right below the statement (for long output), and further
``# -> text`` lines right below continue the expected output (several lines, or one per call
when the line runs in a loop). ``...`` in the expected text matches anything. An annotated
line that never ran is an error. Other comments are prose and are not checked. (``# ->``
survives ``ruff format``, which also formats README code blocks.)

**Services.** Blocks use a few well-known placeholder addresses, replaced before running
(see :data:`PLACEHOLDERS`): the Postgres URLs ``postgresql+asyncpg://postgres@127.0.0.1:5432/
postgres`` and ``postgresql+asyncpg://user:pass@host/db`` become a fresh database of the test
server, ``redis://localhost:6379/0`` a private Redis server, ``http://localhost:9000`` with
``Credentials("minioadmin", "minioadmin")`` and the bucket ``"network-dev"`` the test S3
server and its session bucket, ``file:///var/tmp/storage`` and quoted paths under ``/tmp/``
(``"/tmp/x.csv"``) a private directory. Any other local address (``localhost``,
``127.0.0.1``, ``file://``, ``/tmp``) in a block is an error, so an example never touches a
developer's own servers or files.

Command line (used by the test; the values come from the test plugin's fixtures)::

    python tools/readme_examples.py run README.md --workdir DIR --services JSON
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import builtins
import dataclasses
import inspect
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
import traceback
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

PYTHON_INFOS = frozenset({"python", "py", "python3", "py3"})
#: Info strings that look like Python but are not runnable blocks (refused, not skipped).
_PYTHON_LIKE = re.compile(r"^\{?\.?(py|python|ipython|pycon|jupyter)", re.IGNORECASE)
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_MARKER = re.compile(r"^[ \t]*<!--[ \t]*example:[ \t]*(?P<kind>[A-Za-z-]*)(?P<rest>.*)$")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t#]*$")
MARKER_KINDS = ("setup", "after", "skip")

#: Placeholder text in README blocks -> the service it stands for (see the module doc).
PLACEHOLDERS: dict[str, str] = {
    "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres": "postgres_url",
    "postgresql+asyncpg://user:pass@host/db": "postgres_url",
    "redis://localhost:6379/0": "redis_url",
    "http://localhost:9000": "s3_endpoint",
    'Credentials("minioadmin", "minioadmin")': "s3_credentials",
    '"network-dev"': "s3_bucket",
    "file:///var/tmp/storage": "file_storage_url",
    '"/tmp/': "tmp_dir_double_quoted",
    "'/tmp/": "tmp_dir_single_quoted",
}
#: A local address left in a block after the placeholders are taken out.
_LOCAL_ADDRESS = re.compile(
    r"\b(?:[a-z][a-z0-9+.-]*://[^\s\"'/]*(?:localhost|127\.0\.0\.1|\[::1\])|file://)"
    r"|(?<![\w/.])/tmp\b",
    re.IGNORECASE,
)
PRINT_NAME = "__example_print__"
SHOW_NAME = "__example_show__"


class ExampleError(Exception):
    """A README's examples are malformed or failed; the message names README and line."""


@dataclass(frozen=True)
class Snippet:
    """Code from a README and the README line of its first line."""

    code: str
    line: int


@dataclass(frozen=True)
class Example:
    """One Python block with its markers."""

    readme: Path
    line: int  # the opening fence
    end: int  # the closing fence
    section: str
    code: Snippet
    setup: Snippet | None = None
    after: Snippet | None = None
    skip: str | None = None

    @property
    def where(self) -> str:
        """``README:line`` of the opening fence."""
        return f"{_display(self.readme)}:{self.line}"

    @property
    def is_pytest_module(self) -> bool:
        """The block defines ``test_*`` functions: it runs under pytest."""
        try:
            tree = ast.parse(self.code.code)
        except SyntaxError:
            return False
        return any(
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")
            for node in tree.body
        )


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------
# collecting
# --------------------------------------------------------------------------------------


def readmes(root: Path = ROOT) -> list[Path]:
    """The root README and every package README, in a stable order.

    Example::

        readmes()   # [ROOT/README.md, ROOT/packages/forktex-core/README.md, ...]
    """
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    return found + sorted(root.glob("packages/*/README.md"))


def count_python_fences(text: str) -> int:
    """Opening fences with a Python-like info string, counted independently of
    :func:`collect` (so a block the parser missed cannot go unnoticed)."""
    count, inside = 0, None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match is None:
            continue
        if inside is None:
            inside = match["fence"]
            count += bool(_PYTHON_LIKE.match(match["info"]))
        elif match["fence"][0] == inside[0] and len(match["fence"]) >= len(inside):
            if not match["info"]:
                inside = None
    return count


def _dedent(lines: list[str], indent: str) -> list[str]:
    out = []
    for line in lines:
        out.append(line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t"))
    return out


def collect(readme: Path) -> list[Example]:
    """Every Python block of ``readme`` with its markers; raises :class:`ExampleError`
    naming the line of a misspelt or misplaced marker or an unsupported Python fence.

    Example::

        [e.where for e in collect(Path("packages/forktex-core-db/README.md"))]
    """
    lines = readme.read_text(encoding="utf-8").splitlines()
    name = _display(readme)
    examples: list[Example] = []
    pending: dict[str, Snippet | str] = {}
    pending_line = 0
    section = ""
    i = 0

    def fail(line: int, message: str) -> ExampleError:
        return ExampleError(f"{name}:{line}: {message}")

    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if heading:
            section = heading["title"]
        marker = _MARKER.match(line)
        if marker:
            kind, start = marker["kind"], i + 1
            body = [marker["rest"]]
            while "-->" not in body[-1]:
                i += 1
                if i >= len(lines):
                    raise fail(start, "the example marker is never closed with -->")
                body.append(lines[i])
            body[-1] = body[-1][: body[-1].index("-->")]
            if kind not in MARKER_KINDS:
                raise fail(
                    start, f"unknown example marker {kind!r}: use one of {', '.join(MARKER_KINDS)}"
                )
            if kind == "skip":
                reason = " ".join(" ".join(body).split())
                if not reason:
                    raise fail(start, "'example: skip' needs a reason (what the block needs)")
                pending["skip"] = reason
            else:
                code = textwrap.dedent("\n".join(body[1:]))
                if body[0].strip() or not code.strip():
                    raise fail(start, f"'example: {kind}' holds code on the lines below it")
                snippet = Snippet(code, start + 1)
                if kind == "after":
                    prev = examples[-1] if examples else None
                    gap = lines[prev.end : start - 1] if prev else []
                    if prev is None or prev.after is not None or any(x.strip() for x in gap):
                        raise fail(start, "'example: after' must follow a Python block directly")
                    examples[-1] = dataclasses.replace(prev, after=snippet)
                else:
                    if "setup" in pending:
                        raise fail(start, "a second 'example: setup' for the same block")
                    pending["setup"] = snippet
            pending_line = pending_line or start
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            indent, mark, info = fence["indent"], fence["fence"], fence["info"]
            start = i + 1
            body = []
            i += 1
            while i < len(lines):
                close = _FENCE.match(lines[i])
                if (
                    close
                    and not close["info"]
                    and close["fence"][0] == mark[0]
                    and len(close["fence"]) >= len(mark)
                ):
                    break
                body.append(lines[i])
                i += 1
            else:
                raise fail(start, "the code block is never closed")
            lang = info.split()[0].lower() if info else ""
            if lang in PYTHON_INFOS:
                setup = pending.get("setup")
                skip = pending.get("skip")
                examples.append(
                    Example(
                        readme,
                        start,
                        i + 1,
                        section,
                        Snippet("\n".join(_dedent(body, indent)), start + 1),
                        setup if isinstance(setup, Snippet) else None,
                        None,
                        skip if isinstance(skip, str) else None,
                    )
                )
                pending, pending_line = {}, 0
            elif _PYTHON_LIKE.match(info):
                raise fail(start, f"code block {info!r}: write Python examples as ```python")
            elif pending:
                raise fail(pending_line, "the example marker is not followed by a Python block")
            i += 1
            continue
        if pending and line.strip():
            raise fail(pending_line, "the example marker is not followed by a Python block")
        i += 1
    if pending:
        raise fail(pending_line, "the example marker is not followed by a Python block")
    return examples


# --------------------------------------------------------------------------------------
# placeholders
# --------------------------------------------------------------------------------------


def replacements(services: dict[str, str], workdir: Path) -> dict[str, str]:
    """Placeholder text -> replacement, for the given service values.

    ``services`` holds ``postgres_url``, ``redis_url``, ``s3_endpoint``, ``s3_access_key``,
    ``s3_secret_key`` and ``s3_bucket``; files go under ``workdir``.
    """
    missing = sorted({"postgres_url", "redis_url", "s3_endpoint", "s3_bucket"} - set(services))
    if missing:
        raise ExampleError(f"services lack {', '.join(missing)}")
    values = {
        "postgres_url": services["postgres_url"],
        "redis_url": services["redis_url"],
        "s3_endpoint": services["s3_endpoint"],
        "s3_credentials": "Credentials({!r}, {!r})".format(
            services.get("s3_access_key", ""), services.get("s3_secret_key", "")
        ),
        "s3_bucket": json.dumps(services["s3_bucket"]),
        "file_storage_url": (workdir / "storage").as_uri(),
        "tmp_dir_double_quoted": f'"{workdir / "tmp"}/',
        "tmp_dir_single_quoted": f"'{workdir / 'tmp'}/",
    }
    return {text: values[key] for text, key in PLACEHOLDERS.items()}


def prepare(code: str, snippet_line: int, readme: str, table: dict[str, str]) -> str:
    """``code`` with every placeholder replaced; raises :class:`ExampleError` for any other
    local address."""
    bare = code
    for text in table:
        bare = bare.replace(text, "")
    for number, line in enumerate(bare.splitlines()):
        hit = _LOCAL_ADDRESS.search(line)
        if hit:
            raise ExampleError(
                f"{readme}:{snippet_line + number}: {hit.group(0)!r} is a local address that is "
                "not one of the placeholders the README examples may use "
                f"({', '.join(sorted(PLACEHOLDERS))})"
            )
    for text, value in table.items():
        code = code.replace(text, value)
    return code


# --------------------------------------------------------------------------------------
# output annotations
# --------------------------------------------------------------------------------------


#: Starts an output annotation comment (see the module doc).
OUTPUT_MARK = "# ->"
#: ``#>`` / ``# >`` (what formatters make of ``#>``) and ``#->``: refused, never silently prose.
_NEAR_MISS = re.compile(r"#(?:\s*>(?:\s|$)|->)")


@dataclass
class Expected:
    """A ``# ->`` annotation: what the statement ending at ``line`` prints or evaluates to."""

    line: int
    kind: str  # "print" or "value"
    text: list[str]
    last_comment: int  # README line of its last ``# ->`` comment


def _annotations(source: str, first_line: int, where: str) -> dict[int, Expected]:
    """``# ->`` comments of ``source`` by README line of the annotated statement's end."""
    found: dict[int, Expected] = {}
    last: Expected | None = None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return found  # the compile step reports the syntax error with its line
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        readme_line = first_line + tok.start[0] - 1
        if _NEAR_MISS.match(tok.string):
            raise ExampleError(
                f"{where}:{readme_line}: {tok.string.split()[0]!r} looks like an output "
                f"annotation: write it as '{OUTPUT_MARK} ...' (formatters rewrite '#>' to '# >')"
            )
        if not re.match(r"# ->(\s|$)", tok.string):
            continue
        text = tok.string[len(OUTPUT_MARK) :].strip()
        if tok.line[: tok.start[1]].strip():  # at the end of a statement
            last = Expected(readme_line, "", [text], readme_line)
            found[readme_line] = last
        elif last is not None and readme_line == last.last_comment + 1:  # continues
            last.text.append(text)
            last.last_comment = readme_line
        elif readme_line - 1 not in found:  # on its own line, below the statement
            last = Expected(readme_line - 1, "", [text], readme_line)
            found[readme_line - 1] = last
        else:
            raise ExampleError(f"{where}:{readme_line}: a second '# ->' for the same line")
    return found


class _Annotate(ast.NodeTransformer):
    """Route annotated ``print(...)`` calls and expressions to the recorders."""

    def __init__(self, expected: dict[int, Expected], where: str) -> None:
        self.expected = expected
        self.where = where
        self.seen: set[int] = set()

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        self.generic_visit(node)
        line = node.end_lineno or node.lineno
        ann = self.expected.get(line)
        if ann is None:
            return node
        self.seen.add(line)
        value = node.value
        if (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "print"
        ):
            ann.kind = "print"
            value.func = ast.Name(PRINT_NAME, ast.Load())
            value.args.insert(0, ast.Constant(line))
            return node
        ann.kind = "value"
        call = ast.Call(ast.Name(SHOW_NAME, ast.Load()), [ast.Constant(line), value], [])
        return ast.copy_location(ast.Expr(call), node)


def _normalise(text: str) -> str:
    """Runs of spaces collapsed per line, blank lines dropped."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def _matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


@dataclass
class _Recorder:
    """Collects what annotated lines printed or evaluated to."""

    outputs: dict[int, list[str]] = field(default_factory=dict)

    def print(
        self, line: int, *args: Any, sep: str | None = " ", end: str | None = "\n", **kw: Any
    ) -> None:
        text = (" " if sep is None else sep).join(map(str, args))
        builtins.print(*args, sep=sep, end=end, **kw)
        self.outputs.setdefault(line, []).append(text)

    def show(self, line: int, value: Any) -> Any:
        self.outputs.setdefault(line, []).append(repr(value))
        return value

    def verify(self, expected: dict[int, Expected], where: str) -> None:
        for line, ann in sorted(expected.items()):
            shown = "\n".join(ann.text)
            got = self.outputs.get(line)
            what = "printed" if ann.kind == "print" else "evaluated to"
            if got is None:
                raise ExampleError(
                    f"{where}:{line}: the README shows '# -> {shown}' but that line never ran"
                )
            actual = _normalise("\n".join(got))
            if not _matches(_normalise(shown), actual):
                raise ExampleError(
                    f"{where}:{line}: the code {what} {actual!r} but the README shows {shown!r}"
                )


# --------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------


def _failing_line(exc: BaseException, filename: str) -> int | None:
    """The last line of ``filename`` in the traceback of ``exc`` (a README line number)."""
    found = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == filename:
            found = line
    return found


def _padded(parts: list[tuple[int, str]]) -> str:
    """Source whose lines sit at their README line numbers (tracebacks show README lines)."""
    lines: list[str] = []
    for first, code in parts:
        lines.extend([""] * (first - 1 - len(lines)))
        lines.extend(code.splitlines())
    return "\n".join(lines) + "\n"


class ReadmeRun:
    """Runs the examples of one README in one namespace and event loop (see module doc)."""

    def __init__(self, readme: Path, table: dict[str, str], workdir: Path) -> None:
        self.readme = readme
        self.name = _display(readme)
        self.table = table
        self.workdir = workdir
        self.recorder = _Recorder()
        self.expected: dict[int, Expected] = {}
        # A real module, installed as __main__ while the examples run: libraries that look
        # names up through sys.modules[cls.__module__] (SQLAlchemy, typing) find them.
        self.module = types.ModuleType("__main__")
        self.namespace: dict[str, Any] = self.module.__dict__
        self.namespace.update(
            {
                "__builtins__": builtins,
                PRINT_NAME: self.recorder.print,
                SHOW_NAME: self.recorder.show,
            }
        )
        self.ran: list[str] = []

    def _file(self, line: int, label: str) -> Path:
        path = self.workdir / "src" / self.name.lstrip("/") / f"L{line}-{label}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _compile(self, snippet: Snippet, label: str, *, check_output: bool = True) -> Any:
        code = prepare(snippet.code, snippet.line, self.name, self.table)
        expected = _annotations(code, snippet.line, self.name)
        source = _padded([(snippet.line, code)])
        path = self._file(snippet.line, label)
        path.write_text(source, encoding="utf-8")
        try:
            tree = ast.parse(source, str(path))
        except SyntaxError as exc:
            raise ExampleError(f"{self.name}:{exc.lineno}: syntax error: {exc.msg}") from None
        annotate = _Annotate(expected, self.name)
        tree = ast.fix_missing_locations(annotate.visit(tree))
        for line in sorted(set(expected) - annotate.seen):
            raise ExampleError(
                f"{self.name}:{line}: '# ->' must follow a print(...) call or an expression "
                "statement (on its last line or the line below)"
            )
        if check_output:
            self.expected.update(expected)
        try:
            # dont_inherit: this module's ``from __future__ import annotations`` must not
            # turn the example's annotations into strings.
            return compile(
                tree,
                str(path),
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
        except SyntaxError as exc:
            raise ExampleError(f"{self.name}:{exc.lineno}: syntax error: {exc.msg}") from None

    def _execute(self, runner: asyncio.Runner, snippet: Snippet, label: str, where: int) -> None:
        code = self._compile(snippet, label)
        try:
            if code.co_flags & inspect.CO_COROUTINE:
                runner.run(eval(code, self.namespace))
            else:
                exec(code, self.namespace)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            line = _failing_line(exc, code.co_filename) or snippet.line
            raise ExampleError(
                f"{self.name}:{line}: the {label} code raised {type(exc).__name__}: {exc}"
            ) from exc
        self.ran.append(f"{self.name}:{where} ({label})")

    def run(self, examples: list[Example], python: str = sys.executable) -> list[str]:
        """Run every example; return what ran (``README:line (kind)``)."""
        os.makedirs(self.workdir / "tmp", exist_ok=True)
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = self.module
        try:
            self._run(examples, python)
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        self.recorder.verify(self.expected, self.name)
        return self.ran

    def _run(self, examples: list[Example], python: str) -> None:
        with asyncio.Runner() as runner:
            for ex in examples:
                if ex.skip is not None:  # compiled (a syntax error still fails), not run
                    self._compile(ex.code, "skipped", check_output=False)
                    self.ran.append(f"{ex.where} (skipped: {ex.skip})")
                    continue
                if ex.is_pytest_module:
                    self._pytest(ex, python)
                    continue
                if ex.setup:
                    self._execute(runner, ex.setup, "setup", ex.setup.line - 1)
                self._execute(runner, ex.code, "example", ex.line)
                if ex.after:
                    self._execute(runner, ex.after, "after", ex.after.line - 1)

    def _pytest(self, ex: Example, python: str) -> None:
        parts = [
            (s.line, prepare(s.code, s.line, self.name, self.table))
            for s in (ex.setup, ex.code)
            if s is not None
        ]
        project = self.workdir / f"project-L{ex.line}"
        project.mkdir(parents=True)
        module = project / "test_readme_example.py"
        module.write_text(_padded(parts), encoding="utf-8")
        report = project / "report.xml"
        command = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        out = subprocess.run(
            [*command, f"--junitxml={report}", module.name],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        counts = _junit_counts(report)
        bad = out.returncode != 0 or not counts.get("tests")
        if bad or any(counts.get(k) for k in ("failures", "errors", "skipped")):
            raise ExampleError(
                f"{ex.where}: the block is a pytest module; run in a fresh project, pytest "
                f"exited {out.returncode} ({counts or 'no report'}):\n"
                f"{out.stdout[-4000:]}{out.stderr[-2000:]}"
            )
        self.ran.append(f"{ex.where} (pytest: {counts['tests']} passed)")


def _junit_counts(report: Path) -> dict[str, int]:
    """tests / failures / errors / skipped of a pytest JUnit XML report ({} if none)."""
    if not report.is_file():
        return {}
    suite = next(ET.parse(report).getroot().iter("testsuite"), None)
    if suite is None:
        return {}
    return {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}


def run_readme(readme: Path, services: dict[str, str], workdir: Path) -> list[str]:
    """Collect and run the examples of ``readme``; return what ran.

    Example::

        run_readme(Path("packages/forktex-core-db/README.md"), services, tmp_path)
    """
    examples = collect(readme)
    table = replacements(services, workdir)
    return ReadmeRun(readme, table, workdir).run(examples)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``run README --workdir DIR --services JSON``."""
    parser = argparse.ArgumentParser(
        prog="tools/readme_examples.py", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the examples of one README")
    run.add_argument("readme", type=Path)
    run.add_argument("--workdir", type=Path, required=True)
    run.add_argument("--services", required=True, help="JSON object of service values")
    args = parser.parse_args(argv)
    try:
        ran = run_readme(args.readme, json.loads(args.services), args.workdir)
    except ExampleError as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        print(f"\nREADME example failed: {exc}", file=sys.stderr)
        return 1
    for entry in ran:
        print(f"ran {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
