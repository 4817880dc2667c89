# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every Python example of every README runs, against real services (tools/readme_examples.py).

``test_readme_examples_run`` runs each README's blocks in a fresh Python process with the
placeholders mapped to the test plugin's services: a fresh Postgres database per README, the
session's S3 bucket, and a private Redis server (examples write unprefixed keys, so they get
a server of their own). The other tests prove the harness itself: it fails on a wrong
output, a block it cannot run, an unmarked or misspelt marker, a local address that is not a
placeholder -- nothing is silently left out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import readme_examples as rx

TOOL = Path(__file__).resolve().parents[1] / "readme_examples.py"
REPO = TOOL.parents[1]
READMES = rx.readmes(REPO)
#: A README's examples that take longer than this are hung (e.g. a worker that never stops).
README_TIMEOUT = 600


def _id(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.fixture(scope="module")
def private_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server of the README examples' own (they use unprefixed keys and db 0)."""
    from forktex_core.testing import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("readme-redis"))
    port = server.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


def _run_tool(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the harness in its own process group; kill the whole group on a hang."""
    proc = subprocess.Popen(
        [sys.executable, str(TOOL), *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=README_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the examples did not finish within {README_TIMEOUT} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("readme", READMES, ids=[_id(p) for p in READMES])
def test_every_python_block_is_collected(readme: Path) -> None:
    """The parser sees every Python-like fence an independent scan counts."""
    assert len(rx.collect(readme)) == rx.count_python_fences(readme.read_text(encoding="utf-8"))


@pytest.mark.parametrize("readme", READMES, ids=[_id(p) for p in READMES])
def test_readme_examples_run(readme: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    examples = rx.collect(readme)
    if not examples:
        return  # nothing to run (no Python block); collecting it proved there is none
    new_database: Callable[[], Any] = request.getfixturevalue("forktex_new_database")
    s3 = request.getfixturevalue("forktex_s3")
    services = {
        "postgres_url": new_database().url,
        "redis_url": request.getfixturevalue("private_redis_url"),
        "s3_endpoint": s3.endpoint_url,
        "s3_access_key": s3.access_key,
        "s3_secret_key": s3.secret_key,
        "s3_bucket": s3.bucket,
    }
    out = _run_tool(
        ["run", str(readme), "--workdir", str(tmp_path), "--services", json.dumps(services)],
        cwd=tmp_path,
    )
    assert out.returncode == 0, f"{out.stdout[-6000:]}\n{out.stderr[-8000:]}"
    ran = [line for line in out.stdout.splitlines() if line.startswith("ran ")]
    assert len(ran) >= len(examples), out.stdout
    for ex in examples:
        assert any(f"{ex.where} (" in line for line in ran), f"{ex.where} did not run"


# --------------------------------------------------------------------------------------
# the harness itself
# --------------------------------------------------------------------------------------

SERVICES = {
    "postgres_url": "postgresql+asyncpg://u@192.0.2.1:5432/d",
    "redis_url": "redis://192.0.2.1:6379/0",
    "s3_endpoint": "http://192.0.2.1:9000",
    "s3_access_key": "ak",
    "s3_secret_key": "sk",
    "s3_bucket": "bucket-1",
}


def _readme(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def _run(tmp_path: Path, text: str) -> list[str]:
    return rx.run_readme(_readme(tmp_path, text), SERVICES, tmp_path / "work")


def test_blocks_share_one_namespace_and_event_loop_in_order(tmp_path: Path) -> None:
    ran = _run(
        tmp_path,
        "# T\n\n```python\nimport asyncio\nx = 2\n```\n\ntext\n\n"
        "```py\nloop = asyncio.get_running_loop()\ny = x * await asyncio.sleep(0, 21)\n```\n\n"
        "```python\nawait asyncio.sleep(0)\nassert asyncio.get_running_loop() is loop\n"
        "print(y)  # -> 42\n```\n",
    )
    assert [r.split(":")[-1] for r in ran] == ["3 (example)", "10 (example)", "15 (example)"]


def test_a_script_block_with_asyncio_run_works(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "```python\nimport asyncio\n\nasync def main() -> None:\n"
        "    print(await asyncio.sleep(0, 'done'))  # -> done\n\nasyncio.run(main())\n```\n",
    )


def test_hidden_setup_and_after_code_run_around_the_block(tmp_path: Path) -> None:
    text = (
        "<!-- example: setup\nclass Mailer:\n    sent = []\n    async def send(self, to):\n"
        "        self.sent.append(to)\n        return 'id-1'\nmailer = Mailer()\n-->\n"
        "```python\nasync def signup(email):\n    print(await mailer.send(email))  # -> id-1\n```\n"
        "<!-- example: after\nawait signup('a@example.com')\n"
        "assert mailer.sent == ['a@example.com']\n-->\n"
    )
    ran = _run(tmp_path, text)
    assert [r.rsplit(" ", 1)[-1] for r in ran] == ["(setup)", "(example)", "(after)"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("print(1 + 1)  # -> 3", ":2: the code printed '2' but the README shows '3'"),
        ("{'a': 1}  # -> {'a': 2}", ":2: the code evaluated to \"{'a': 1}\" but the README shows"),
        (
            "def f():\n    print('x')  # -> x",
            ":3: the README shows '# -> x' but that line never ran",
        ),
        ("x = 1  # -> 1", ":2: '# ->' must follow a print(...) call or an expression statement"),
        ("# -> 1", ":1: '# ->' must follow a print(...) call or an expression statement"),
        ("x = 1\n\n# -> 1", ":3: '# ->' must follow a print(...) call or an expression"),
        ("print(1)  # -> 1\n# -> 1\n\n# -> 2", ":4: '# ->' must follow a print(...) call"),
        ("print(1)  #> 1", ":2: '#>' looks like an output annotation: write it as '# -> ...'"),
        ("print(1)  # > 1", ":2: '#' looks like an output annotation"),
        ("print(1)  #-> 1", ":2: '#->' looks like an output annotation"),
        ("raise ValueError('boom')", ":2: the example code raised ValueError: boom"),
        ("def broken(:\n    pass", ":2: syntax error"),
        ("import redis\nr = redis.from_url('redis://localhost:6380/0')", "local address"),
        ("open_it('file:///etc/passwd')", "'file://' is a local address"),
        ('p = Path("/tmp")', "'/tmp' is a local address"),
    ],
)
def test_a_wrong_example_fails_naming_readme_and_line(
    tmp_path: Path, block: str, message: str
) -> None:
    with pytest.raises(rx.ExampleError) as exc:
        _run(tmp_path, f"```python\n{block}\n```\n")
    assert str(exc.value).startswith(str(tmp_path / "README.md"))
    assert message in str(exc.value)


def test_an_annotation_may_stand_below_its_statement(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "```python\nprint('a long line of output')\n# -> a long line of output\n"
        "{'k': [1, 2]}\n# -> {'k': [1, 2]}\nprint('x\\ny')\n# -> x\n# -> y\n```\n",
    )
    with pytest.raises(
        rx.ExampleError, match=re.escape("printed 'x' but the README shows 'x\\ny'")
    ):
        _run(tmp_path, "```python\nprint('x')\n# -> x\n# -> y\n```\n")


def test_prose_comments_are_not_annotations(tmp_path: Path) -> None:
    _run(tmp_path, "```python\nprint(1)  # >= 1, and -> prose\nx = 2  # ->not an annotation\n```\n")


def test_output_checks_allow_ellipsis_and_several_lines(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "```python\nimport uuid\nprint(f'id={uuid.uuid4()}')  # -> id=...\n"
        "for i in range(3):\n    print(i, 'x')  # -> 0 x\n    # -> 1 x\n    # -> 2 x\n```\n",
    )
    with pytest.raises(rx.ExampleError, match="printed '0 x\\\\n1 x\\\\n2 x'"):
        _run(tmp_path, "```python\nfor i in range(3):\n    print(i, 'x')  # -> 0 x\n```\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- example: skpi because -->\n```python\nx\n```\n", "unknown example marker 'skpi'"),
        ("<!-- example: skip -->\n```python\nx\n```\n", "needs a reason"),
        ("<!-- example: skip cloud -->\n\nSome prose.\n```python\nx\n```\n", "not followed by"),
        ("<!-- example: skip cloud -->\n```bash\nls\n```\n", "not followed by a Python block"),
        ("text\n<!-- example: after\nx = 1\n-->\n", "must follow a Python block directly"),
        ("```python\nx = 1\n```\n\nprose\n<!-- example: after\nx\n-->\n", "must follow a Python"),
        ("<!-- example: setup x = 1 -->\n```python\nx\n```\n", "holds code on the lines below"),
        ("<!-- example: setup\nx = 1\n", "never closed"),
        ("```pycon\n>>> 1\n```\n", "write Python examples as ```python"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_a_block_is_either_run_or_explicitly_marked(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(rx.ExampleError, match=message):
        rx.collect(_readme(tmp_path, text))


def test_a_skipped_block_is_compiled_not_run(tmp_path: Path) -> None:
    ran = _run(
        tmp_path,
        "<!-- example: skip needs a real AWS account -->\n```python\nraise SystemExit(1)\n```\n",
    )
    assert ran == [f"{tmp_path / 'README.md'}:2 (skipped: needs a real AWS account)"]
    with pytest.raises(rx.ExampleError, match="syntax error"):
        _run(tmp_path, "<!-- example: skip cloud -->\n```python\ndef (:\n```\n")


def test_indented_blocks_in_list_items_are_collected(tmp_path: Path) -> None:
    readme = _readme(
        tmp_path,
        "1. **Step**:\n\n   ```python\n   x = 1\n   print(x)  # -> 1\n   ```\n\n"
        "   <!-- example: after\n   assert x == 1\n   -->\n",
    )
    (ex,) = rx.collect(readme)
    assert ex.code.code == "x = 1\nprint(x)  # -> 1" and ex.after is not None
    rx.run_readme(readme, SERVICES, tmp_path / "work")


def test_placeholders_are_replaced_by_the_services(tmp_path: Path) -> None:
    _run(
        tmp_path,
        "```python\n"
        'assert "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres" == '
        f"{SERVICES['postgres_url']!r}\n"
        f'assert "redis://localhost:6379/0" == {SERVICES["redis_url"]!r}\n'
        'assert "network-dev" == "bucket-1"\n'
        "from pathlib import Path\n"
        'Path("/tmp/data.csv").write_text("a,b")\n'
        'assert str(Path("/tmp/data.csv")).endswith("/work/tmp/data.csv")\n'
        "assert Path('/tmp/data.csv').read_text() == 'a,b'\n"
        "```\n",
    )


def test_the_count_catches_python_fences_the_parser_would_miss() -> None:
    text = "```python\na\n```\n~~~py\nb\n~~~\n```Python3\nc\n```\n```text\n```python\n```\n"
    assert rx.count_python_fences(text) == 3


def test_a_pytest_module_block_runs_in_a_fresh_project(tmp_path: Path) -> None:
    ok = _run(tmp_path, "```python\ndef test_one():\n    assert 1 + 1 == 2\n```\n")
    assert ok[0].endswith("(pytest: 1 passed)")
    (tmp_path / "b").mkdir()
    with pytest.raises(rx.ExampleError, match="pytest module; run in a fresh project"):
        _run(tmp_path / "b", "```python\ndef test_one():\n    assert 1 + 1 == 3\n```\n")


def test_the_command_line_reports_the_failing_line(tmp_path: Path) -> None:
    readme = _readme(tmp_path, "# T\n\n```python\nx = 1\n\nraise RuntimeError('bad')\n```\n")
    out = _run_tool(
        ["run", str(readme), "--workdir", str(tmp_path / "w"), "--services", json.dumps(SERVICES)],
        cwd=tmp_path,
    )
    assert out.returncode == 1
    assert f"{readme}:6: the example code raised RuntimeError: bad" in out.stderr
    assert 'L4-example.py", line 6' in out.stderr  # the traceback shows README line numbers
