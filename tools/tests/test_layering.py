# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/layering.py: import cycles and private cross-access, on small generated workspaces
with deliberate violations (each form must be caught), on clean code (nothing reported),
through the baseline ratchet, and on this repository against its committed baseline."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent


import api_snapshot  # noqa: E402  (tools/ is on pytest's pythonpath)
import fsd  # noqa: E402
import layering  # noqa: E402

MARK = "# <-"
#: the ``workspace`` fixture (conftest.py): distribution -> {path below src/forktex_core/: code}
Workspace = Callable[[dict[str, dict[str, str]]], Path]


def one(workspace: Workspace, files: dict[str, str]) -> Path:
    """A workspace of one distribution, forktex-core-m (package forktex_core.m)."""
    return workspace({"forktex-core-m": files})


def marked_line(root: Path, rel: str, dist: str = "forktex-core-m") -> int:
    """The line carrying ``# <-`` in a generated file (where the finding must point)."""
    text = (root / "packages" / dist / "src" / "forktex_core" / rel).read_text()
    lines = [i for i, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, f"mark exactly one line of {rel}"
    return lines[0]


def path_of(rel: str, dist: str = "forktex-core-m") -> str:
    return f"packages/{dist}/src/forktex_core/{rel}"


def found(root: Path) -> list[str]:
    return [str(f) for f in layering.findings(root)]


# --------------------------------------------------------------------------------------
# import cycles: every import form closes a cycle
# --------------------------------------------------------------------------------------

# _a imports _b at the top; _b imports _a back in the form under test (the marked line).
BACK_EDGES = {
    "from-dot-module-import-name": "from ._a import A  # <-\n",
    "from-dot-import-module": "from . import _a  # <-\n",
    "import-absolute": "import forktex_core.m._a  # <-\n",
    "import-absolute-as": "import forktex_core.m._a as a_module  # <-\n",
    "from-absolute-module-import-name": "from forktex_core.m._a import A  # <-\n",
    "from-absolute-package-import-module": "from forktex_core.m import _a  # <-\n",
    "function-level": """\
        def later():
            from ._a import A  # <-
            return A
        """,
    "method-level": """\
        class B:
            def run(self):
                from . import _a  # <-
                return _a
        """,
    "type-checking": """\
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from ._a import A  # <-
        """,
    "typing-dot-type-checking": """\
        import typing

        if typing.TYPE_CHECKING:
            from ._a import A  # <-
        """,
    "try-except": """\
        try:
            from ._a import A  # <-
        except ImportError:
            A = None
        """,
    "importlib-import-module": """\
        import importlib

        a_module = importlib.import_module("forktex_core.m._a")  # <-
        """,
}


#: how a finding names an import that is not at the top of its module
CONTEXTS = {
    "function-level": "function-level",
    "method-level": "function-level",
    "type-checking": "TYPE_CHECKING",
    "typing-dot-type-checking": "TYPE_CHECKING",
}


@pytest.mark.parametrize("form", sorted(BACK_EDGES))
def test_a_two_module_cycle_is_caught_in_every_import_form(workspace: Workspace, form: str) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "",
            "m/_a.py": "from ._b import B  # <-\n\nclass A:\n    pass\n",
            "m/_b.py": textwrap.dedent(BACK_EDGES[form]) + "\nclass B:\n    pass\n",
        },
    )
    reported = found(root)
    context = f" ({CONTEXTS[form]} import)" if form in CONTEXTS else ""
    back = (
        f"{path_of('m/_b.py')}:{marked_line(root, 'm/_b.py')}: import cycle "
        f"forktex_core.m._b -> forktex_core.m._a -> forktex_core.m._b{context}"
    )
    forth = (
        f"{path_of('m/_a.py')}:{marked_line(root, 'm/_a.py')}: import cycle "
        "forktex_core.m._a -> forktex_core.m._b -> forktex_core.m._a"
    )
    assert sorted(reported) == sorted([back, forth])


def test_a_three_module_cycle_names_the_whole_chain(workspace: Workspace) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._a import A\n",
            "m/_a.py": "from ._b import B\n\nA = 1\n",
            "m/_b.py": "from ._c import C\n\nB = 1\n",
            "m/_c.py": "def f():\n    from ._a import A\n    return A\n\nC = 1\n",
        },
    )
    reported = layering.findings(root)
    chain = "import cycle forktex_core.m.{} -> forktex_core.m.{} -> forktex_core.m.{} -> "
    assert [(f.path.rsplit("/", 1)[1], f.line, f.message) for f in reported] == [
        ("_a.py", 1, chain.format("_a", "_b", "_c") + "forktex_core.m._a"),
        ("_b.py", 1, chain.format("_b", "_c", "_a") + "forktex_core.m._b"),
        ("_c.py", 2, chain.format("_c", "_a", "_b") + "forktex_core.m._c (function-level import)"),
    ]
    assert {f.key for f in reported} == {
        "cycle forktex_core.m._a -> forktex_core.m._b",
        "cycle forktex_core.m._b -> forktex_core.m._c",
        "cycle forktex_core.m._c -> forktex_core.m._a",
    }


@pytest.mark.parametrize(
    "back",
    [
        "from . import VERSION  # <-\n",
        "from forktex_core.m import VERSION  # <-\n",
        "import forktex_core.m  # <-\n",
        "def f():\n    from . import VERSION  # <-\n    return VERSION\n",
    ],
    ids=["from-dot-import-name", "from-package-import-name", "import-package", "lazy"],
)
def test_reading_the_package_init_from_a_module_it_imports_is_a_cycle(
    workspace: Workspace, back: str
) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._a import A\n\nVERSION = 1\n",
            "m/_a.py": back + "\nA = 1\n",
        },
    )
    where = f"{path_of('m/_a.py')}:{marked_line(root, 'm/_a.py')}: "
    cycle = "import cycle forktex_core.m._a -> forktex_core.m -> forktex_core.m._a"
    assert any(r.startswith(where + cycle) for r in found(root)), found(root)


def test_a_relative_import_two_levels_up_closes_a_cycle(workspace: Workspace) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "",
            "m/_a.py": "from .sub._c import C\n\nA = 1\n",
            "m/sub/__init__.py": "",
            "m/sub/_c.py": "from .._a import A  # <-\n\nC = 1\n",
        },
    )
    line = marked_line(root, "m/sub/_c.py")
    assert (
        f"{path_of('m/sub/_c.py')}:{line}: import cycle forktex_core.m.sub._c -> "
        "forktex_core.m._a -> forktex_core.m.sub._c"
    ) in found(root)


def test_a_cycle_across_distributions_is_caught(workspace: Workspace) -> None:
    m_files = {"m/__init__.py": "from ._a import A\n", "m/_a.py": "import forktex_core.n\n"}
    n_files = {"n/__init__.py": "from forktex_core.m import A\n"}
    root = workspace({"forktex-core-m": m_files, "forktex-core-n": n_files})
    messages = [f.message for f in layering.findings(root)]
    cycle = "forktex_core.n -> forktex_core.m -> forktex_core.m._a -> forktex_core.n"
    assert "import cycle " + cycle in messages


def test_clean_imports_report_nothing(workspace: Workspace) -> None:
    """The package's __init__ imports its modules, and the modules import each other in one
    direction, in every form: no cycle (importing a sibling never runs the parent again)."""
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._a import A\nfrom ._b import B\nfrom . import _c\n"
            "from .sub import D\n\n__all__ = ['A', 'B', 'D']\n",
            "m/_a.py": "from ._b import B\nfrom . import _c\nimport forktex_core.m._c\n\nA = B\n",
            "m/_b.py": "from typing import TYPE_CHECKING\n\nfrom forktex_core.m._c import C\n"
            "if TYPE_CHECKING:\n    from ._c import C as C2\n\nB = C\n",
            "m/_c.py": "import importlib\n\nC = 1\n\ndef f():\n    import json\n    return json\n",
            "m/sub/__init__.py": "from ._d import D\n",
            "m/sub/_d.py": "from .._c import C\nfrom .. import _c\n\nD = C\n",
        },
    )
    assert found(root) == []


# --------------------------------------------------------------------------------------
# private access: every read, write and import form is caught
# --------------------------------------------------------------------------------------

OWNER = """\
    class Box:
        def __init__(self):
            self._secret = 1
            self._count = 0

    def _helper():
        return 1
    """

# (code in forktex_core.m._b with the marked line, expected message, expected key)
PRIVATE_CASES = {
    "read": (
        "def f(box):\n    return box._secret  # <-\n",
        "reads private attribute _secret of box (_secret is not defined in forktex_core.m._b)",
        "private-read forktex_core.m._b ._secret",
    ),
    "method-call": (
        "def f(flow):\n    return flow._ensure_schema()  # <-\n",
        "reads private attribute _ensure_schema of flow",
        "private-read forktex_core.m._b ._ensure_schema",
    ),
    "write": (
        "def f(box):\n    box._secret = 2  # <-\n",
        "writes private attribute _secret of box",
        "private-write forktex_core.m._b ._secret",
    ),
    "augmented-write": (
        "def f(box):\n    box._count += 1  # <-\n",
        "writes private attribute _count of box",
        "private-write forktex_core.m._b ._count",
    ),
    "delete": (
        "def f(box):\n    del box._secret  # <-\n",
        "writes private attribute _secret of box",
        "private-write forktex_core.m._b ._secret",
    ),
    "getattr": (
        'def f(host):\n    return getattr(getattr(host, "flow", None), "_hooks", None)  # <-\n',
        "reads private attribute _hooks of getattr(host, 'flow', None)",
        "private-read forktex_core.m._b ._hooks",
    ),
    "hasattr": (
        'def f(box):\n    return hasattr(box, "_secret")  # <-\n',
        "reads private attribute _secret of box",
        "private-read forktex_core.m._b ._secret",
    ),
    "setattr": (
        'def f(box):\n    setattr(box, "_secret", 3)  # <-\n',
        "writes private attribute _secret of box",
        "private-write forktex_core.m._b ._secret",
    ),
    "delattr": (
        'def f(box):\n    delattr(box, "_secret")  # <-\n',
        "writes private attribute _secret of box",
        "private-write forktex_core.m._b ._secret",
    ),
    "object-setattr": (
        'def f(box):\n    object.__setattr__(box, "_secret", 3)  # <-\n',
        "writes private attribute _secret of box",
        "private-write forktex_core.m._b ._secret",
    ),
    "through-own-attribute": (
        "class Worker:\n    def __init__(self, flow):\n        self._flow = flow\n\n"
        "    def dsn(self):\n        return self._flow._dsn  # <-\n",
        "reads private attribute _dsn of self._flow",
        "private-read forktex_core.m._b ._dsn",
    ),
    "module-attribute": (
        "from . import _a\n\ndef f():\n    return _a._helper()  # <-\n",
        "reads private attribute _helper of _a",
        "private-read forktex_core.m._b ._helper",
    ),
    "staticmethod-self-is-not-self": (
        "class C:\n    @staticmethod\n    def f(self):\n        return self._secret  # <-\n",
        "reads private attribute _secret of self",
        "private-read forktex_core.m._b ._secret",
    ),
    "module-function-self-is-not-self": (
        "def f(self):\n    return self._secret  # <-\n",
        "reads private attribute _secret of self",
        "private-read forktex_core.m._b ._secret",
    ),
    "import-private-name": (
        "from ._a import _helper  # <-\n",
        "imports private name _helper from forktex_core.m._a",
        "private-import forktex_core.m._b forktex_core.m._a._helper",
    ),
    "import-private-name-absolute": (
        "from forktex_core.m._a import Box, _helper  # <-\n",
        "imports private name _helper from forktex_core.m._a",
        "private-import forktex_core.m._b forktex_core.m._a._helper",
    ),
}


@pytest.mark.parametrize("case", sorted(PRIVATE_CASES))
def test_every_private_access_form_is_caught(workspace: Workspace, case: str) -> None:
    code, message, key = PRIVATE_CASES[case]
    root = one(workspace, {"m/__init__.py": "", "m/_a.py": OWNER, "m/_b.py": code})
    reported = layering.findings(root)
    assert len(reported) == 1, [str(f) for f in reported]
    finding = reported[0]
    assert (finding.path, finding.line) == (path_of("m/_b.py"), marked_line(root, "m/_b.py"))
    assert message in finding.message
    assert finding.key == key


def test_a_private_module_of_a_subpackage_is_private_to_that_subpackage(
    workspace: Workspace,
) -> None:
    root = one(
        workspace,
        {
            "m/__init__.py": "",
            "m/_a.py": "from .sub import _c  # <-\n",
            "m/sub/__init__.py": "from ._c import C\n",
            "m/sub/_c.py": "from .. import _d\n\nC = 1\n",
            "m/_d.py": "",
        },
    )
    reported = layering.findings(root)
    assert [(f.path, f.line, f.key) for f in reported] == [
        (
            path_of("m/_a.py"),
            marked_line(root, "m/_a.py"),
            "private-module forktex_core.m._a forktex_core.m.sub._c",
        )
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "from forktex_core.m._a import Box  # <-\n",
        "from forktex_core.m import _a  # <-\n",
        "import forktex_core.m._a  # <-\n",
        "import importlib\n\nimportlib.import_module('forktex_core.m._a')  # <-\n",
    ],
    ids=["from-private-module", "from-package-import-private-module", "import", "importlib"],
)
def test_importing_another_packages_private_module_is_caught(
    workspace: Workspace, statement: str
) -> None:
    root = workspace(
        {
            "forktex-core-m": {"m/__init__.py": "from ._a import Box\n", "m/_a.py": OWNER},
            "forktex-core-n": {"n/__init__.py": statement},
        },
    )
    reported = layering.findings(root)
    assert [(f.path, f.line, f.key) for f in reported] == [
        (
            path_of("n/__init__.py", "forktex-core-n"),
            marked_line(root, "n/__init__.py", "forktex-core-n"),
            "private-module forktex_core.n forktex_core.m._a",
        )
    ]
    assert "imports private module forktex_core.m._a from outside forktex_core.m" in (
        reported[0].message
    )


def test_allowed_private_access_reports_nothing(workspace: Workspace) -> None:
    """What a module may do with private names: its own instance/class, what it defines
    itself, private modules of its own package, dunders and named-tuple methods."""
    own = """\
        import dataclasses
        from typing import NamedTuple
        from urllib.parse import urlsplit

        from . import _a
        from ._a import Box
        from .sub import D
        import forktex_core.m._a


        _TABLE = {}


        @dataclasses.dataclass
        class Record:
            _field: int
            __slots__ = ("_slot",)

            def _touch(self):
                return self._field

            @classmethod
            def make(cls):
                cls._registry = {}
                return cls._registry, cls._touch

            @property
            def both(self):
                return self._field + type(self)._registry + self.__class__._registry


        class Key(Record):
            def __init__(self, key):
                self._key = key
                super()._touch()

            def __eq__(self, other):
                return self._key == other._key

            def later(self):
                def inner():
                    return self._key

                return inner, (lambda: self._key)


        def module_level(record, obj):
            record._field += 1
            getattr(record, "_slot", None)
            record._touch()
            parts = urlsplit("http://h/x")._replace(path="/y")
            return obj.__dict__, obj.__class__, parts._asdict(), NamedTuple, _TABLE, Box, _a, D
        """
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._b import Key\n",
            "m/_a.py": OWNER,
            "m/_b.py": own,
            "m/sub/__init__.py": "from ._c import C as D\n",
            "m/sub/_c.py": "from .._a import Box\n\nC = Box\n",
        },
    )
    assert found(root) == []


def test_a_marked_read_of_a_library_internal_passes_but_never_excuses_our_own_names(
    workspace: Workspace,
) -> None:
    """``# third-party private: <library>`` allows reading a private attribute that no module
    of the workspace defines; a name some module of ours defines stays a finding, marked or
    not, and an unmarked library read is a finding too."""
    user = """\
        def values(stmt):
            return stmt._values  # third-party private: sqlalchemy (no accessor)


        def unmarked(stmt):
            return stmt._multi_values  # <-


        def ours(box):
            return box._secret  # third-party private: pretending
        """
    root = one(
        workspace,
        {
            "m/__init__.py": "",
            "m/_a.py": "class Box:\n    def __init__(self):\n        self._secret = 1\n",
            "m/_b.py": user,
        },
    )
    messages = found(root)
    unmarked = f"{path_of('m/_b.py')}:{marked_line(root, 'm/_b.py')}: reads private attribute"
    assert any(m.startswith(unmarked) and "_multi_values" in m for m in messages), messages
    assert any("_secret" in m for m in messages), messages
    assert not any("_values of" in m and "_multi" not in m for m in messages), messages
    assert len(messages) == 2, messages


def test_a_source_file_that_does_not_parse_is_named(workspace: Workspace) -> None:
    root = one(workspace, {"m/__init__.py": "", "m/_a.py": "def broken(:\n"})
    with pytest.raises(layering.LayeringError, match=r"forktex_core/m/_a\.py:1: cannot parse"):
        layering.findings(root)
    assert layering.main(["--root", str(root), "--no-baseline"]) == 2


# --------------------------------------------------------------------------------------
# the baseline ratchet
# --------------------------------------------------------------------------------------

RATCHET = {
    "m/__init__.py": "from ._a import A\n",
    "m/_a.py": "from ._b import B\n\nclass A:\n    def __init__(self):\n        self._x = 1\n",
    "m/_b.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ._a import A\n\n"
    "def peek(a):\n    return a._x\n\nclass B:\n    pass\n",
}


def ratchet_root(workspace: Workspace) -> Path:
    root = one(workspace, RATCHET)
    (root / "tools").mkdir()
    assert layering.main(["--root", str(root), "--update-baseline", "--allow-new"]) == 0
    return root


def edit_b(root: Path, old: str, new: str) -> None:
    path = root / path_of("m/_b.py")
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_baseline_records_keys_without_line_numbers(workspace: Workspace) -> None:
    root = ratchet_root(workspace)
    lines = (root / layering.BASELINE).read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == [
        "1 cycle forktex_core.m._a -> forktex_core.m._b",
        "1 cycle forktex_core.m._b -> forktex_core.m._a",
        "1 private-read forktex_core.m._b ._x",
    ]


def test_known_findings_pass_and_moving_code_keeps_them_known(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ratchet_root(workspace)
    assert layering.main(["--root", str(root)]) == 0
    assert "beyond the 3 known" in capsys.readouterr().out
    edit_b(root, "def peek", "\n\n# moved down\n\ndef peek")
    edit_b(root, "from typing", "'''Docstring.'''\n\nfrom typing")
    assert layering.main(["--root", str(root)]) == 0


def test_a_new_finding_fails_with_path_and_line(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ratchet_root(workspace)
    edit_b(root, "class B:\n    pass", "class B:\n    def f(self, a):\n        a._y = 2  # <-")
    assert layering.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "1 finding(s) not in the baseline" in err
    line = marked_line(root, "m/_b.py")
    assert f"{path_of('m/_b.py')}:{line}: writes private attribute _y of a" in err


def test_one_more_occurrence_of_a_known_key_fails(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ratchet_root(workspace)
    edit_b(root, "return a._x", "return a._x + a._x")
    assert layering.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("reads private attribute _x of a") == 2  # every occurrence is shown


def test_a_fixed_finding_must_leave_the_baseline(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ratchet_root(workspace)
    edit_b(root, "if TYPE_CHECKING:\n    from ._a import A\n", "")
    assert layering.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "occur less often now" in err
    assert "cycle forktex_core.m._b -> forktex_core.m._a: listed 1, found 0" in err
    assert "--update-baseline" in err
    assert layering.main(["--root", str(root), "--update-baseline"]) == 0
    assert layering.main(["--root", str(root)]) == 0
    baseline = (root / layering.BASELINE).read_text()
    assert "cycle" not in baseline
    assert "1 private-read forktex_core.m._b ._x" in baseline


def test_update_baseline_never_adds_without_allow_new(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    root = ratchet_root(workspace)
    before = (root / layering.BASELINE).read_text()
    edit_b(root, "return a._x", "return a._x, a._z")
    assert layering.main(["--root", str(root), "--update-baseline"]) == 1
    assert "only shrinks" in capsys.readouterr().err
    assert (root / layering.BASELINE).read_text() == before
    assert layering.main(["--root", str(root), "--update-baseline", "--allow-new"]) == 0
    assert "1 private-read forktex_core.m._b ._z" in (root / layering.BASELINE).read_text()


@pytest.mark.parametrize("line", ["cycle a -> b", "0 cycle a -> b", "x2 private-read m ._x", "3"])
def test_a_malformed_baseline_is_named(workspace: Workspace, line: str) -> None:
    root = ratchet_root(workspace)
    (root / layering.BASELINE).write_text(f"# header\n{line}\n")
    with pytest.raises(layering.LayeringError, match=r"layering_baseline\.txt:2: expected"):
        layering.read_baseline(root / layering.BASELINE)
    assert layering.main(["--root", str(root)]) == 2


def test_allow_new_only_goes_with_update_baseline() -> None:
    with pytest.raises(SystemExit) as exit_info:
        layering.main(["--allow-new"])
    assert exit_info.value.code == 2


def test_the_command_line_prints_path_line_message(workspace: Workspace) -> None:
    root = ratchet_root(workspace)
    result = subprocess.run(
        [sys.executable, str(TOOLS / "layering.py"), "--root", str(root), "--no-baseline"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    findings = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(findings) == 3
    assert all(re.fullmatch(r"packages/\S+\.py:\d+: .+", line) for line in findings)


def test_summary_counts_cycles_and_private_access_per_distribution(workspace: Workspace) -> None:
    root = ratchet_root(workspace)
    assert layering.summary(root, layering.findings(root)) == [
        "forktex-core-m: 1 import cycle(s) (2 imports on them: _a _b), 1 private-read"
    ]


# --------------------------------------------------------------------------------------
# this repository
# --------------------------------------------------------------------------------------


def test_this_repository_matches_its_layering_baseline() -> None:
    """No import cycle and no private cross-access beyond tools/layering_baseline.txt, and
    every entry there still occurs (fixed ones must be removed: the baseline only shrinks)."""
    result = layering.compare(
        layering.findings(REPO), layering.read_baseline(REPO / layering.BASELINE)
    )
    new = "\n".join(f"  {f}" for f in result.new)
    stale = "\n".join(f"  {k}: listed {n}, found {m}" for k, (n, m) in result.stale.items())
    assert not result.new, f"new layering findings (fix them):\n{new}"
    assert not result.stale, (
        "fixed findings are still in tools/layering_baseline.txt: run python3 "
        f"tools/layering.py --update-baseline\n{stale}"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="no make binary")
def test_make_layering_fails_on_a_cycle_and_passes_once_it_is_gone(workspace: Workspace) -> None:
    """The generated Makefile's layering target (run by make ci) runs both checks."""
    root = one(
        workspace,
        {
            "m/__init__.py": "from ._a import A\n\n__all__ = ['A']\n",
            "m/_a.py": "from ._b import B\n\nA = B\n",
            "m/_b.py": "def f():\n    from ._a import A\n    return A\n\nB = 1\n",
        },
    )
    (root / "tools").mkdir()
    for tool in ("fsd.py", "source_modules.py", "layering.py", "api_snapshot.py"):
        shutil.copy(TOOLS / tool, root / "tools" / tool)
    fsd.sync(root)
    api_snapshot.update(root)
    make = ["make", "-C", str(root), "layering", "PYTHON=" + sys.executable]
    failed = subprocess.run(make, capture_output=True, text=True, check=False)
    assert failed.returncode != 0
    assert "import cycle forktex_core.m._b -> forktex_core.m._a -> forktex_core.m._b" in (
        failed.stderr
    )
    edit_b(root, "def f():\n    from ._a import A\n    return A\n", "")
    passed = subprocess.run(make, capture_output=True, text=True, check=False)
    assert passed.returncode == 0, passed.stderr
    assert "every __all__ matches tools/api_snapshot/" in passed.stdout
