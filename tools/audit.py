# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Audit the locked dependency set with ``pip-audit --strict``, and never trust silence.

Usage (``make audit`` runs it inside the uv environment, where pip-audit is installed)::

    python tools/audit.py [--requirements FILE] [--service pypi|osv] [--timeout S]
                          [--pip-audit CMD] [--no-probe]

Steps:

1. Export the locked set (``uv export --locked --all-packages --no-emit-workspace``, with
   hashes) to a temporary requirements file, unless ``--requirements`` names one.
2. Probe the vulnerability service through pip-audit's own service class (the same code
   and endpoint pip-audit uses; no host name is written here) by asking it about
   pip-audit's own release, which the service must know.
3. Run ``pip-audit -r FILE --strict --progress-spinner off --disable-pip -f json``.
4. Map the outcome to an exit status:

   * ``0`` -- at least one dependency was audited and none has a known vulnerability;
   * ``1`` -- a known vulnerability (pip-audit's findings are printed), or any other
     failure, including a report we cannot read;
   * ``3`` -- the vulnerability service could not be reached (probe failed, connection
     errors, dependencies "not found", or zero dependencies audited): prints exactly
     ``vulnerability service unreachable: audit not performed``. ``make ci`` reports this
     status as a warning.

When the service cannot be reached pip-audit (without ``--strict``) skips every
dependency and still says "No known vulnerabilities found" with exit status 0; this tool
exists so that never passes for an audit.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OK = 0
FINDINGS = 1
UNREACHABLE = 3
UNREACHABLE_MESSAGE = "vulnerability service unreachable: audit not performed"

#: Text in pip-audit's output meaning the service did not answer (or answered nonsense).
_UNREACHABLE_MARKERS = (
    "could not connect",
    "your network may be blocking",
    "connectionerror",
    "max retries exceeded",
    "name or service not known",
    "nameresolutionerror",
    "failed to resolve",
    "temporary failure in name resolution",
    "connection refused",
    "connection reset",
    "timed out",
    "read timeout",
    "not redirecting properly",
)
#: pip-audit's skip reason for a dependency the service does not know (a 404).
_NOT_FOUND_MARKER = "could not be audited"
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==", re.MULTILINE)


class AuditSetupError(Exception):
    """The audit could not even start (pip-audit or uv missing, export failed)."""


@dataclass(frozen=True)
class Outcome:
    """Exit status and what to tell the user."""

    status: int
    message: str


@dataclass(frozen=True)
class Probe:
    """Whether the vulnerability service answered a known-good query, and why not."""

    ok: bool
    detail: str


def probe_service(service: str, timeout: int) -> Probe:
    """Ask pip-audit's own ``service`` client about pip-audit's installed release.

    The service must know that release, so anything but a clean answer (a connection
    error, an HTTP error, "not found") means the service is unreachable from here.
    """
    try:
        from packaging.version import Version
        from pip_audit._service import (
            OsvService,
            PyPIService,
            ResolvedDependency,
            VulnerabilityService,
        )
    except ImportError as exc:
        raise AuditSetupError(f"pip-audit is not importable ({exc}): run `make deps`") from exc
    services: dict[str, type[VulnerabilityService]] = {"pypi": PyPIService, "osv": OsvService}
    if service not in services:
        raise AuditSetupError(f"unknown service {service!r}; use one of {sorted(services)}")
    known = ResolvedDependency(
        name="pip-audit", version=Version(importlib.metadata.version("pip-audit"))
    )
    with tempfile.TemporaryDirectory(prefix="forktex-audit-cache-") as cache:
        try:
            client = services[service](Path(cache), timeout)
            answered, _ = client.query(known)
        except Exception as exc:  # any failure to get an answer is "unreachable"
            return Probe(False, f"{service} probe failed: {type(exc).__name__}: {exc}")
    if answered.is_skipped():
        reason = getattr(answered, "skip_reason", "skipped")
        return Probe(False, f"{service} probe got no answer for {known.name}: {reason}")
    return Probe(True, f"{service} answered")


def _render_findings(report: dict[str, object]) -> str:
    lines = ["package  version  id  fix versions"]
    deps = report.get("dependencies")
    for dep in deps if isinstance(deps, list) else []:
        if not isinstance(dep, dict):
            continue
        for vuln in dep.get("vulns") or []:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none"
            lines.append(f"{dep.get('name')}  {dep.get('version')}  {vuln.get('id')}  {fixes}")
    return "\n".join(lines)


def classify(returncode: int, stdout: str, stderr: str, probe_ok: bool | None) -> Outcome:
    """Map one ``pip-audit --strict -f json`` run to an :class:`Outcome`.

    ``probe_ok`` is the probe's verdict (``None`` when no probe ran). After a successful
    probe, a dependency the service does not know is a real failure (status 1); without
    one, it is read as the service being unreachable (status 3).
    """
    text = f"{stdout}\n{stderr}".lower()
    report: dict[str, object] | None
    try:
        loaded = json.loads(stdout) if stdout.strip() else None
        report = loaded if isinstance(loaded, dict) else None
    except json.JSONDecodeError:
        report = None

    deps = report.get("dependencies") if report else None
    dep_list = [d for d in deps if isinstance(d, dict)] if isinstance(deps, list) else []
    vulnerable = [d for d in dep_list if d.get("vulns")]
    if vulnerable and report is not None:
        return Outcome(
            FINDINGS,
            f"pip-audit found known vulnerabilities in {len(vulnerable)} package(s):\n"
            + _render_findings(report)
            + (f"\n{stderr.strip()}" if stderr.strip() else ""),
        )
    if any(marker in text for marker in _UNREACHABLE_MARKERS):
        return Outcome(UNREACHABLE, UNREACHABLE_MESSAGE)
    if _NOT_FOUND_MARKER in text:
        if probe_ok:
            return Outcome(
                FINDINGS,
                "pip-audit --strict: a dependency is unknown to the vulnerability service "
                "although the service answers (a package that is not on the index?):\n"
                + stderr.strip(),
            )
        return Outcome(UNREACHABLE, UNREACHABLE_MESSAGE)
    if returncode != 0:
        return Outcome(
            FINDINGS, f"pip-audit failed (exit {returncode}):\n{(stderr or stdout).strip()}"
        )
    if report is None:
        return Outcome(
            FINDINGS, "pip-audit exited 0 but its JSON report is unreadable; not trusting it"
        )
    audited = [d for d in dep_list if "skip_reason" not in d]
    if not audited:
        # pip-audit's "No known vulnerabilities found" after auditing nothing.
        return Outcome(UNREACHABLE, UNREACHABLE_MESSAGE)
    return Outcome(OK, f"pip-audit: {len(audited)} dependencies audited, no known vulnerabilities")


def _uv_command() -> list[str]:
    # `uv run` exports UV (the path of the running uv); else PATH; else the pip-installed module.
    if os.environ.get("UV"):
        return [os.environ["UV"]]
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def export_requirements(root: Path, dest: Path) -> None:
    """Write the locked, hashed dependency set of every workspace member to ``dest``."""
    cmd = [
        *_uv_command(),
        "export",
        "--locked",
        "--all-packages",
        "--no-emit-workspace",
        "--format",
        "requirements-txt",
        "--quiet",
        "-o",
        str(dest),
    ]
    try:
        done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise AuditSetupError(f"cannot run uv ({exc}): run `make deps`") from exc
    if done.returncode != 0:
        raise AuditSetupError(f"`{shlex.join(cmd)}` failed:\n{done.stderr.strip()}")


def run_audit(
    requirements: Path,
    pip_audit: Sequence[str],
    service: str,
    timeout: int,
    probe: Callable[[], Probe] | None,
) -> Outcome:
    """Probe (when given), run pip-audit over ``requirements`` and classify the result."""
    text = requirements.read_text(encoding="utf-8")
    if not _PIN.search(text):
        raise AuditSetupError(f"{requirements} pins no dependency; nothing to audit")
    probe_ok: bool | None = None
    if probe is not None:
        verdict = probe()
        if not verdict.ok:
            print(verdict.detail, file=sys.stderr)
            return Outcome(UNREACHABLE, UNREACHABLE_MESSAGE)
        probe_ok = True
    cmd = [
        *pip_audit,
        "-r",
        str(requirements),
        "--strict",
        "--progress-spinner",
        "off",
        "--disable-pip",
        "-s",
        service,
        "--timeout",
        str(timeout),
        "-f",
        "json",
    ]
    if "--hash=" not in text:
        cmd.append("--no-deps")  # --disable-pip needs hashes or --no-deps
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise AuditSetupError(f"cannot run pip-audit ({exc}): run `make deps`") from exc
    return classify(done.returncode, done.stdout, done.stderr, probe_ok)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns 0, 1 or 3 as described in the module docstring."""
    parser = argparse.ArgumentParser(prog="tools/audit.py", description=__doc__.split("\n")[0])
    parser.add_argument("--requirements", type=Path, help="audit this file instead of uv.lock")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"], help="pip-audit's -s")
    parser.add_argument("--timeout", type=int, default=10, help="network timeout, seconds")
    parser.add_argument(
        "--pip-audit",
        default=f"{shlex.quote(sys.executable)} -m pip_audit",
        help="pip-audit command line (default: this interpreter's pip_audit module)",
    )
    parser.add_argument("--no-probe", action="store_true", help="skip the service probe")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    probe = None if args.no_probe else (lambda: probe_service(args.service, args.timeout))
    try:
        with tempfile.TemporaryDirectory(prefix="forktex-audit-") as tmp:
            requirements: Path = args.requirements
            if requirements is None:
                requirements = Path(tmp) / "requirements.txt"
                export_requirements(args.root, requirements)
            outcome = run_audit(
                requirements, shlex.split(args.pip_audit), args.service, args.timeout, probe
            )
    except AuditSetupError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return FINDINGS
    print(outcome.message, file=sys.stdout if outcome.status != FINDINGS else sys.stderr)
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
