# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-queue --help`` reads as plain text and documents every option."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from forktex_core.queue._cli import main

COMMANDS = {
    (): ["-h"],
    ("worker",): ["ENTRYPOINT", "-h", "--concurrency", "--burst", "--poll-interval",
                  "--grace-period", "--lease", "--heartbeat", "--max-outage", "--log-level"],
    ("health",): ["ENTRYPOINT", "-h", "--max-age"],
}  # fmt: skip


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def _entries(text: str) -> dict[str, str]:
    """Each argument of the 'positional arguments' / 'options' sections -> its description.

    argparse starts an entry two spaces in (``  --lease SECONDS   lease on ...``); the
    description follows after two or more spaces or on deeper-indented lines below.
    """
    entries: dict[str, str] = {}
    current = None
    in_section = False
    for line in text.splitlines():
        if line and not line.startswith(" "):
            in_section = line in ("positional arguments:", "options:")
            current = None
        elif in_section and re.match(r"^  \S", line):
            invocation, *description = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            current = invocation.split()[0].rstrip(",")
            entries[current] = description[0] if description else ""
        elif in_section and current is not None and line.strip():
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: " ".join(c) or "top")
def test_help_is_plain_text_and_documents_every_option(
    capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    text = _help(capsys, *command)
    assert "``" not in text and ":class:" not in text  # no reStructuredText markup
    entries = _entries(text)
    for name in COMMANDS[command]:
        assert name in entries, f"{name} missing from the help of {command}: {entries}"
        assert len(entries[name].split()) >= 3, f"{name} has no help text: {entries[name]!r}"


def test_top_level_help_names_the_commands_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert re.search(r"worker\s+process jobs", text)
    assert re.search(r"health\s+exit 0 if a worker", text)
    assert "forktex-queue worker app.jobs:queue" in text


def test_installed_command_prints_the_same_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "forktex_core.queue", "worker", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "``" not in out and "--grace-period SECONDS" in out and "requeued" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["worker", "x:q", "--poll-interval", "nan"],
        ["worker", "x:q", "--lease", "-1"],
        ["worker", "x:q", "--log-level", "LOUD"],
        ["worker", "x:q", "--max-outage", "-5"],
        ["health", "x:q", "--max-age", "inf"],
    ],
)
def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
