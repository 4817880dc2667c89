# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/license_headers.py: add/check/strip of the SPDX header."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "license_headers.py"


import license_headers as lh  # noqa: E402  (tools/ is on pytest's pythonpath)

H = "\n".join(lh.HEADER) + "\n"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "import os\n",
        "import os",
        '"""Doc."""\n\nx = 1\n',
        "#!/usr/bin/env python3\nprint('hi')\n",
        "# -*- coding: utf-8 -*-\nx = 'é'\n",
        "#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\nx = 1\n",
        "#!/bin/bash\nset -euo pipefail\n",
        "x = 1\r\ny = 2\r\n",
        "a = '\f'\n# trailing comment\n",
    ],
)
def test_add_is_idempotent_and_strip_round_trips(text: str) -> None:
    once = lh.add_header(text)
    assert lh.has_header(once)
    assert lh.add_header(once) == once
    assert lh.strip_header(once) == text
    assert lh.strip_header(text) == text


def test_shebang_stays_first() -> None:
    out = lh.add_header("#!/usr/bin/env bash\necho hi\n")
    assert out == "#!/usr/bin/env bash\n" + H + "echo hi\n"


def test_encoding_line_stays_first() -> None:
    out = lh.add_header("# -*- coding: utf-8 -*-\nx = 1\n")
    assert out == "# -*- coding: utf-8 -*-\n" + H + "x = 1\n"


def test_shebang_and_encoding_both_stay_first() -> None:
    src = "#!/usr/bin/python3\n# vim: set fileencoding=utf-8 :\nx = 1\n"
    out = lh.add_header(src)
    assert out.splitlines()[:4] == [
        "#!/usr/bin/python3",
        "# vim: set fileencoding=utf-8 :",
        *lh.HEADER,
    ]


def test_empty_file_gets_just_the_header() -> None:
    assert lh.add_header("") == H
    assert lh.strip_header(H) == ""


def test_header_in_wrong_place_is_not_accepted() -> None:
    assert not lh.has_header("#!/bin/sh\necho\n" + H)
    assert not lh.has_header("x = 1\n" + H)


def test_outdated_spdx_lines_are_refreshed_not_duplicated() -> None:
    old = (
        "# SPDX-License-Identifier: MIT\n"
        "# SPDX-FileCopyrightText: 2024 ForkTex <info@forktex.com>\n"
        "import os\n"
    )
    assert lh.add_header(old) == H + "import os\n"
    assert lh.add_header("#!/bin/sh\n# SPDX-License-Identifier: MIT\necho\n") == (
        "#!/bin/sh\n" + H + "echo\n"
    )


def test_shebang_without_newline() -> None:
    out = lh.add_header("#!/bin/sh")
    assert out == "#!/bin/sh\n" + H
    assert lh.add_header(out) == out


def test_scope_picks_py_sh_and_shell_shebang_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.sh").write_text("echo\n")
    (tmp_path / "run").write_text("#!/usr/bin/env bash\necho\n")
    (tmp_path / "data.txt").write_text("#!/bin/sh\n")
    (tmp_path / "notes").write_text("hello\n")
    (tmp_path / "py.typed").write_text("")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "c.py").write_text("x = 1\n")
    found = sorted(p.name for p in lh.iter_files([tmp_path]))
    assert found == ["a.py", "b.sh", "run"]


def test_cli_check_fails_naming_each_file_then_add_fixes(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(H + "x = 1\n")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho\n")

    result = run("check", tmp_path)
    assert result.returncode == 1
    assert str(bad) in result.stderr
    assert str(script) in result.stderr
    assert str(good) not in result.stderr

    assert run("add", tmp_path).returncode == 0
    assert bad.read_text() == H + "x = 1\n"
    assert script.read_text() == "#!/bin/sh\n" + H + "echo\n"
    snapshot = {p: p.read_text() for p in (good, bad, script)}

    second = run("add", tmp_path)
    assert second.returncode == 0
    assert "0 of 3 file(s) changed" in second.stdout
    assert {p: p.read_text() for p in snapshot} == snapshot
    assert run("check", tmp_path).returncode == 0


def test_cli_strip_round_trip(tmp_path: Path) -> None:
    files = {
        tmp_path / "a.py": '"""Doc."""\n',
        tmp_path / "empty.py": "",
        tmp_path / "s.sh": "#!/bin/bash\necho\n",
    }
    for path, text in files.items():
        path.write_text(text)
    assert run("add", tmp_path).returncode == 0
    assert run("check", tmp_path).returncode == 0
    assert run("strip", tmp_path).returncode == 0
    assert {p: p.read_text() for p in files} == files
    result = run("check", tmp_path)
    assert result.returncode == 1
    assert all(str(p) in result.stderr for p in files)


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / "w.py"
    path.write_bytes(b"x = 1\r\n")
    assert run("add", path).returncode == 0
    assert path.read_bytes() == b"\r\n".join(h.encode() for h in lh.HEADER) + b"\r\nx = 1\r\n"


def test_default_scope(tmp_path: Path) -> None:
    for rel in (
        "packages/p1/src/forktex_core/m/__init__.py",
        "packages/p1/tests/test_m.py",
        "packages/p1/other/skip.py",
        "tests-integration/test_x.py",
        "tools/t.py",
        "elsewhere/skip.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    result = run("check", "--root", tmp_path)
    assert result.returncode == 1
    named = {line.strip() for line in result.stderr.splitlines()[1:]}
    assert named == {
        "packages/p1/src/forktex_core/m/__init__.py",
        "packages/p1/tests/test_m.py",
        "tests-integration/test_x.py",
        "tools/t.py",
    }
