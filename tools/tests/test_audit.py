# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/audit.py: exit-status mapping, driven by a fake pip-audit (no network)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "audit.py"


import audit  # noqa: E402  (tools/ is on pytest's pythonpath)

CLEAN = {"dependencies": [{"name": "attrs", "version": "26.1.0", "vulns": []}], "fixes": []}
VULNERABLE = {
    "dependencies": [
        {"name": "attrs", "version": "26.1.0", "vulns": []},
        {
            "name": "jinja2",
            "version": "3.1.0",
            "vulns": [{"id": "GHSA-xxxx-yyyy-zzzz", "fix_versions": ["3.1.5"]}],
        },
    ],
    "fixes": [],
}
ALL_SKIPPED = {
    "dependencies": [
        {
            "name": "attrs",
            "skip_reason": "Dependency not found on PyPI and could not be audited: attrs",
        }
    ],
    "fixes": [],
}
NOT_FOUND_STRICT = (
    "ERROR:pip_audit._cli:attrs: Dependency not found on PyPI and could not be audited: "
    "attrs (26.1.0)\n"
)
CONNECTION = (
    "ERROR:pip_audit._cli:Could not connect to PyPI's vulnerability feed\n"
    "ERROR:pip_audit._cli:Tip: your network may be blocking this service.\n"
)


def fake_pip_audit(tmp_path: Path, stdout: str, stderr: str, code: int) -> str:
    """A pip-audit stand-in that records its argv and prints canned output."""
    script = tmp_path / "fake_pip_audit.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({stdout!r})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("attrs==26.1.0 \\\n    --hash=sha256:00\njinja2==3.1.0\n")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("stdout", "stderr", "code", "expected"),
    [
        (json.dumps(CLEAN), "No known vulnerabilities found\n", 0, 0),
        (json.dumps(VULNERABLE), "Found 1 known vulnerability in 1 package\n", 1, 1),
        ("", NOT_FOUND_STRICT, 1, 3),
        ("", CONNECTION, 1, 3),
        (json.dumps(ALL_SKIPPED), "No known vulnerabilities found\n", 0, 3),
        (json.dumps({"dependencies": [], "fixes": []}), "No known vulnerabilities found", 0, 3),
        ("not json", "", 0, 1),
        ("", "ERROR:pip_audit._cli:invalid requirements input: x\n", 1, 1),
        ("", "Traceback ...\nKeyError\n", 2, 1),
    ],
    ids=[
        "clean",
        "finding",
        "strict-not-found",
        "connection-error",
        "silently-audited-nothing",
        "zero-dependencies",
        "unreadable-report",
        "other-failure",
        "crash",
    ],
)
def test_cli_exit_status_mapping(
    tmp_path: Path, requirements: Path, stdout: str, stderr: str, code: int, expected: int
) -> None:
    cmd = fake_pip_audit(tmp_path, stdout, stderr, code)
    result = run_cli("--requirements", str(requirements), "--pip-audit", cmd, "--no-probe")
    assert result.returncode == expected, result.stdout + result.stderr
    if expected == 3:
        assert result.stdout.strip() == "vulnerability service unreachable: audit not performed"
    if expected == 1 and code == 1 and "vulns" in stdout:
        assert "jinja2" in result.stderr and "GHSA-xxxx-yyyy-zzzz" in result.stderr


def test_pip_audit_is_run_strict_over_the_file(tmp_path: Path, requirements: Path) -> None:
    cmd = fake_pip_audit(tmp_path, json.dumps(CLEAN), "", 0)
    result = run_cli("--requirements", str(requirements), "--pip-audit", cmd, "--no-probe")
    assert result.returncode == 0, result.stderr
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert "--strict" in argv
    assert argv[argv.index("-r") + 1] == str(requirements)
    assert argv[argv.index("-f") + 1] == "json"
    assert "--disable-pip" in argv


def test_failed_probe_means_unreachable_without_running_pip_audit(
    tmp_path: Path, requirements: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmd = shlex.split(fake_pip_audit(tmp_path, json.dumps(CLEAN), "", 0))
    outcome = audit.run_audit(
        requirements, cmd, "pypi", 1, lambda: audit.Probe(False, "probe: no answer")
    )
    assert outcome == audit.Outcome(3, audit.UNREACHABLE_MESSAGE)
    assert not (tmp_path / "argv.json").exists()
    assert "probe: no answer" in capsys.readouterr().err


def test_not_found_after_good_probe_is_a_real_failure(tmp_path: Path, requirements: Path) -> None:
    cmd = shlex.split(fake_pip_audit(tmp_path, "", NOT_FOUND_STRICT, 1))
    outcome = audit.run_audit(requirements, cmd, "pypi", 1, lambda: audit.Probe(True, "ok"))
    assert outcome.status == 1
    assert "attrs" in outcome.message


def test_good_probe_and_clean_audit_pass(tmp_path: Path, requirements: Path) -> None:
    cmd = shlex.split(fake_pip_audit(tmp_path, json.dumps(CLEAN), "", 0))
    outcome = audit.run_audit(requirements, cmd, "pypi", 1, lambda: audit.Probe(True, "ok"))
    assert outcome.status == 0


def test_requirements_without_pins_is_a_setup_error(tmp_path: Path) -> None:
    empty = tmp_path / "r.txt"
    empty.write_text("# nothing\n")
    result = run_cli("--requirements", str(empty), "--no-probe", "--pip-audit", "false")
    assert result.returncode == 1
    assert "pins no dependency" in result.stderr


def test_no_host_name_is_hard_coded() -> None:
    text = TOOL.read_text()
    assert "://" not in text
    assert ".org" not in text and ".dev" not in text
