# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The plugin in a fresh project: README examples pass as written without any pytest
configuration (pytest-asyncio strict mode), other async tests are left to their owners,
nothing is left in the project, and creating the Postgres system user is reported."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
TEST_BLOCKS = [b for b in BLOCKS if "def test_" in b]


def test_the_readme_has_a_first_example_of_tests() -> None:
    assert TEST_BLOCKS and BLOCKS[0] is TEST_BLOCKS[0]


@pytest.mark.parametrize("block", TEST_BLOCKS, ids=[f"block{i}" for i in range(len(TEST_BLOCKS))])
def test_readme_examples_pass_as_written_without_configuration(
    pytester: pytest.Pytester, block: str
) -> None:
    # pytester's directory has no pytest configuration: pytest-asyncio runs in strict mode.
    pytester.makepyfile(test_readme=block)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*mode=Mode.STRICT*"])
    result.assert_outcomes(passed=block.count("def test_"))
    assert not (pytester.path / ".forktex-test").exists()


OTHERS = """
import pytest, pytest_asyncio

@pytest.fixture
def through_mine(forktex_redis):
    return forktex_redis.prefix

async def test_own_fixture_over_a_plugin_fixture(through_mine):
    assert through_mine.startswith("forktex-test:")

@pytest.mark.asyncio
async def test_explicitly_marked():
    pass

async def test_without_plugin_fixtures():
    pass
"""


def test_async_tests_without_plugin_fixtures_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_others=OTHERS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 2
    # pytest's own verdict on an async test no plugin handles (failed or skipped by version)
    assert outcomes.get("failed", 0) + outcomes.get("skipped", 0) == 1
    result.stdout.fnmatch_lines(["*test_without_plugin_fixtures*"])


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="creates a system user: root only")


@pytest.fixture
def throwaway_user() -> object:
    name = f"fxpg{secrets.token_hex(3)}"
    yield name
    subprocess.run(["userdel", name], capture_output=True, check=False)
    with pytest.raises(KeyError):
        pwd.getpwnam(name)


@needs_root
def test_creating_the_system_user_is_said_on_stderr(throwaway_user: str) -> None:
    # What `make demo` shows: no logging configured, the warning still reaches stderr.
    code = (
        "from forktex_core.testing._embedded import _ensure_system_user; "
        f"_ensure_system_user({throwaway_user!r}); _ensure_system_user({throwaway_user!r})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.count("Created system user") == 1, done.stderr  # once, not on reuse
    assert f"userdel {throwaway_user}" in done.stderr
    pwd.getpwnam(throwaway_user)


SYSTEM_USER_CONFTEST = """
from forktex_core.testing import _embedded
_embedded.PG_SYSTEM_USER = {name!r}
"""


@needs_root
def test_creating_the_system_user_is_in_the_pytest_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, throwaway_user: str
) -> None:
    monkeypatch.delenv("FORKTEX_TEST_POSTGRES_URL", raising=False)  # the embedded server
    pytester.makeconftest(SYSTEM_USER_CONFTEST.format(name=throwaway_user))
    pytester.makepyfile(test_inner="def test_pg(forktex_postgres):\n    assert forktex_postgres\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"forktex-core-testing: Created system user '{throwaway_user}'*userdel {throwaway_user}"]
    )
