# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Add, check or strip the SPDX dual-license header of every source file (stdlib only).

Usage::

    python3 tools/license_headers.py add|check|strip [PATH ...]

With no PATH the scope is ``packages/*/src``, ``packages/*/tests``, ``tests-integration/``
and ``tools/``. Inside it, a file is in scope when it is a ``.py`` or ``.sh`` file, or has a
shell (or Python) shebang. Directories are walked; hidden directories, ``__pycache__`` and
virtualenvs are skipped.

The header is exactly::

    # SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
    # SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>

It goes first in the file, after a shebang line and/or a PEP 263 encoding line when
present (those must stay on lines 1-2 to keep working). ``add`` is idempotent and replaces
outdated ``SPDX-*`` lines in the leading comment block. ``strip`` removes exactly what
``add`` inserted, so ``strip(add(text)) == text`` for a file that had no header.

Empty files: they get the header too. Every file in scope carries it, with no exception
to remember (an empty ``__init__.py`` becomes the two header lines); ``strip`` turns it
back into an empty file.

``check`` exits 1 naming every file without the exact header in the right place.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LICENSE_LINE = "# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial"
COPYRIGHT_LINE = "# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>"
HEADER = (LICENSE_LINE, COPYRIGHT_LINE)
DEFAULT_SCOPE = ("packages/*/src", "packages/*/tests", "tests-integration", "tools")
SUFFIXES = (".py", ".sh")
SKIP_DIRS = {"__pycache__", "node_modules", "venv", "build", "dist"}

_SHEBANG_INTERPRETERS = re.compile(r"^#!.*\b(sh|bash|zsh|dash|ksh|python[0-9.]*)\b")
# PEP 263: must be on line 1 or 2.
_ENCODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
_SPDX = re.compile(r"^#\s*SPDX-[A-Za-z-]+:")


def _lines(text: str) -> list[str]:
    """``text`` split after each newline only, terminators kept.

    Unlike ``str.splitlines`` this leaves form feeds and other separators inside a line alone.
    """
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _bare(line: str) -> str:
    return line.rstrip("\r\n")


def _prefix_len(lines: list[str]) -> int:
    """How many leading lines must stay first: a shebang and/or an encoding line."""
    n = 0
    if lines and lines[0].startswith("#!"):
        n = 1
    # The encoding declaration is honoured on line 1 or line 2 only.
    if len(lines) > n and n < 2 and _ENCODING.match(lines[n]):
        n += 1
    return n


def _spdx_end(lines: list[str], start: int) -> int:
    """End index of the run of ``# SPDX-...`` lines starting at ``start``."""
    end = start
    while end < len(lines) and _SPDX.match(lines[end]):
        end += 1
    return end


def has_header(text: str) -> bool:
    """Whether ``text`` carries the exact header right after its shebang/encoding lines."""
    lines = _lines(text)
    start = _prefix_len(lines)
    return tuple(_bare(line) for line in lines[start : start + len(HEADER)]) == HEADER


def add_header(text: str) -> str:
    """``text`` with the header inserted or refreshed; unchanged when already correct.

    Any ``# SPDX-*`` lines directly after the shebang/encoding lines are replaced, so an
    outdated licence or copyright line is refreshed rather than duplicated.
    """
    lines = _lines(text)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    start = _prefix_len(lines)
    end = _spdx_end(lines, start)
    prefix = lines[:start]
    if prefix and not prefix[-1].endswith("\n"):
        prefix[-1] += newline
    return "".join([*prefix, *(h + newline for h in HEADER), *lines[end:]])


def strip_header(text: str) -> str:
    """``text`` without the leading ``# SPDX-*`` lines (the inverse of :func:`add_header`)."""
    lines = _lines(text)
    start = _prefix_len(lines)
    end = _spdx_end(lines, start)
    if end == start:
        return text
    return "".join([*lines[:start], *lines[end:]])


def in_scope(path: Path) -> bool:
    """Whether ``path`` is a source file the header applies to."""
    if path.suffix in SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with path.open("rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    try:
        return bool(_SHEBANG_INTERPRETERS.match(first.decode("utf-8")))
    except UnicodeDecodeError:
        return False


def _walk(directory: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and in_scope(path):
                yield path


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every in-scope file under ``paths`` (files are taken as given), each once, sorted."""
    seen: set[Path] = set()
    for path in paths:
        found = [path] if path.is_file() else _walk(path) if path.is_dir() else []
        for file in found:
            if file not in seen:
                seen.add(file)
                yield file


def default_paths(root: Path) -> list[Path]:
    """The default scope under ``root`` (globs expanded, missing entries dropped)."""
    out: list[Path] = []
    for pattern in DEFAULT_SCOPE:
        out.extend(sorted(p for p in root.glob(pattern) if p.is_dir()))
    return out


def _read(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return fh.read()
    except UnicodeDecodeError:
        return None


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (1 when ``check`` finds a file without)."""
    parser = argparse.ArgumentParser(
        prog="tools/license_headers.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["add", "check", "strip"])
    parser.add_argument("paths", nargs="*", type=Path, help="files or directories")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default scope)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    paths: list[Path] = args.paths or default_paths(root)

    missing: list[str] = []
    changed = 0
    total = 0
    for path in iter_files(paths):
        text = _read(path)
        if text is None:
            print(f"skipped (not UTF-8): {_display(path, root)}", file=sys.stderr)
            continue
        total += 1
        if args.command == "check":
            if not has_header(text):
                missing.append(_display(path, root))
            continue
        new = add_header(text) if args.command == "add" else strip_header(text)
        if new != text:
            _write(path, new)
            changed += 1
            print(f"{'added' if args.command == 'add' else 'stripped'}: {_display(path, root)}")

    if args.command == "check":
        if missing:
            print(
                f"license-check: {len(missing)} of {total} file(s) lack the SPDX header "
                "(run `make license-fix`):",
                file=sys.stderr,
            )
            for name in missing:
                print(f"  {name}", file=sys.stderr)
            return 1
        print(f"license-check: all {total} file(s) carry the SPDX header")
        return 0
    print(f"license {args.command}: {changed} of {total} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
