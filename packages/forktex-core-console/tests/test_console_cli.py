# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow console``: refusals are one line on stderr with exit status 2 (no login,
--no-auth off loopback, a bad --auth, an unreachable database, the console not installed)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from forktex_core.console import ConsoleError
from forktex_core.console._serve import load_callable

CLI = [sys.executable, "-m", "forktex_core.flow._cli", "console"]


def _run(args: list[str], code: str | None = None) -> subprocess.CompletedProcess[str]:
    if code is None:
        command = [*CLI, *args]
    else:
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no database: pass --database-url URL or --app ENTRYPOINT"),
        (["--database-url", "postgresql://u:pw@127.0.0.1:1/d"], "the console needs a login"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--no-auth", "--host", "0.0.0.0"],
         "only on a loopback address"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--auth", "nomodule"],
         "--auth must look like 'package.module:function'"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--auth", "no_such_mod:f"],
         "cannot import 'no_such_mod'"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--auth", "json:nothing"],
         "'json:nothing' is not a function"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--auth", "json:loads", "--no-auth"],
         "either --auth or --no-auth"),
        (["--database-url", "postgresql://u@127.0.0.1:1/d", "--no-auth", "--port", "70000"],
         "--port must be from 1 to 65535"),
        (["--database-url", "postgresql://u:pw@127.0.0.1:1/d", "--no-auth"],
         "cannot connect to the flow's database"),
        (["not/a/file.py:flow", "--no-auth"], "cannot import 'not/a/file.py': no such file"),
    ],
)  # fmt: skip
def test_console_cli_refusals_are_one_line_exit_2(args: list[str], message: str) -> None:
    done = _run(args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("forktex-flow: error: "), done.stderr
    assert message in lines[0]
    assert ":pw@" not in done.stderr + done.stdout


def test_console_cli_without_the_console_installed_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['forktex_core.console'] = None\n"
        "from forktex_core.flow._cli import main\n"
        "sys.exit(main(['console', '--database-url', 'postgresql://u@h/d', '--no-auth']))"
    )
    done = _run([], code)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "forktex-flow: error: the console is a distribution of its own: pip install "
        "forktex-core-console (or forktex-core[console])"
    )


def test_load_callable(tmp_path: Any) -> None:
    assert load_callable("json:loads")("[1]") == [1]
    with pytest.raises(ConsoleError, match=r"package\.module:function"):
        load_callable("json")
