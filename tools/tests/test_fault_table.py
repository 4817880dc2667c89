# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The root README's "Behaviour under faults" table cannot drift from the tests backing it.

Every cell must name at least one test as ``path::test_name`` (a parametrised id in
brackets is allowed), and every named test must be a test function defined in that file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = ("db", "cache", "flow", "queue", "storage")
FAULTS = (
    "refused port",
    "black-holed server",
    "connection reset mid-operation",
    "server restarted",
    "error replies",
)
# `packages/x/tests/test_y.py::test_z` or `...::test_z[id]`
_REF = re.compile(r"`([\w./-]+\.py)::(test_\w+)(?:\[[^\]`]*\])?`")


def fault_table(readme: str) -> list[list[str]]:
    """The rows (cells) of the table under ``## Behaviour under faults`` in ``readme``,
    its header first."""
    section = readme.split("\n## Behaviour under faults\n", 1)
    if len(section) != 2:
        raise AssertionError("README.md has no '## Behaviour under faults' section")
    body = section[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for line in body.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    if not rows:
        raise AssertionError("the 'Behaviour under faults' section has no table")
    return rows


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions (sync or async, module level or in a class) of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def test_the_table_covers_every_module_and_fault() -> None:
    header, *rows = fault_table((REPO / "README.md").read_text(encoding="utf-8"))
    assert header[0] == "module"
    for fault, title in zip(FAULTS, header[1:], strict=True):
        assert title.startswith(fault), (fault, title)
    assert [row[0] for row in rows] == list(MODULES)
    for row in rows:
        assert len(row) == len(header), row[0]


def test_every_cell_names_tests_that_exist() -> None:
    _, *rows = fault_table((REPO / "README.md").read_text(encoding="utf-8"))
    missing = []
    cache: dict[str, set[str]] = {}
    for row in rows:
        for fault, cell in zip(FAULTS, row[1:], strict=True):
            refs = _REF.findall(cell)
            assert refs, f"{row[0]} / {fault}: the cell names no test as path::test_name"
            for path, name in refs:
                assert path.startswith(f"packages/forktex-core-{row[0]}/tests/"), (row[0], path)
                file = REPO / path
                if path not in cache:
                    cache[path] = defined_tests(file) if file.is_file() else set()
                if name not in cache[path]:
                    missing.append(f"{row[0]} / {fault}: {path}::{name}")
    assert not missing, "tests named in README.md that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("cell", "refs"),
    [
        ("x — `packages/a/tests/test_b.py::test_c`", [("packages/a/tests/test_b.py", "test_c")]),
        (
            "`p/t.py::test_d[restart]`, `p/t.py::test_e`",
            [("p/t.py", "test_d"), ("p/t.py", "test_e")],
        ),
        ("`test_c` alone", []),
    ],
)
def test_references_are_parsed(cell: str, refs: list[tuple[str, str]]) -> None:
    assert _REF.findall(cell) == refs


def test_a_missing_section_or_table_is_reported() -> None:
    with pytest.raises(AssertionError, match="no '## Behaviour under faults' section"):
        fault_table("# title\n\n## Other\n")
    with pytest.raises(AssertionError, match="has no table"):
        fault_table("# t\n\n## Behaviour under faults\n\ntext only\n\n## Next\n")
