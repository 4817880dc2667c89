# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Install a private copy of uv for this checkout when none is available (stdlib only).

Every make target that needs uv depends on ``make uv``, which runs this script when neither
``uv`` on ``PATH`` nor ``$(PYTHON) -m uv`` works. It creates a virtualenv holding only uv in
``.uv-bootstrap/`` (inside the checkout; nothing user- or system-wide is touched) and the
Makefile then uses ``.uv-bootstrap/bin/uv``. Remove it with ``rm -rf .uv-bootstrap``.

Usage::

    python3 tools/bootstrap_uv.py [DIR]      # DIR defaults to .uv-bootstrap

It exits 0 when ``DIR/bin/uv`` works (installed now or earlier) and 1 with a message that
says what to do when it cannot be installed (Python too old, no ``venv``/``ensurepip``, no
package index).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

#: The uv versions the bootstrap installs (uv.lock is written by uv 0.13).
UV_REQUIREMENT = "uv>=0.13,<1"
MIN_PYTHON = (3, 11)
DEFAULT_DIR = Path(".uv-bootstrap")


class BootstrapError(Exception):
    """uv could not be installed; the message says why and what to do."""


def uv_binary(directory: Path) -> Path:
    """Where the private uv lives inside ``directory``."""
    return directory / "bin" / "uv"


def _works(binary: Path) -> bool:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, check=False)
    except OSError:
        return False
    return out.returncode == 0


def check_python(version: tuple[int, ...] = tuple(sys.version_info)) -> None:
    """Raise :class:`BootstrapError` unless ``version`` is at least Python 3.11.

    Example::

        check_python((3, 12, 1))
    """
    if version[:2] < MIN_PYTHON:
        found = ".".join(map(str, version[:3]))
        raise BootstrapError(
            f"forktex-core needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+, but {sys.executable} "
            f"is {found}: run make with PYTHON=<a python3.11 or newer>"
        )


def ensure_uv(directory: Path) -> Path:
    """Return a working uv binary in ``directory``, installing it there first if needed.

    Example::

        uv = ensure_uv(Path(".uv-bootstrap"))   # .uv-bootstrap/bin/uv
    """
    binary = uv_binary(directory)
    if _works(binary):
        return binary
    check_python()
    print(
        f"uv is not installed: installing a private copy into {directory}/ "
        f"(only this checkout uses it; remove it with rm -rf {directory})",
        flush=True,
    )
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(directory)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BootstrapError(
            f"cannot create a virtualenv in {directory}/ with {sys.executable} ({exc}). "
            "On Debian/Ubuntu install python3-venv; or install uv yourself "
            "(https://docs.astral.sh/uv/getting-started/installation/) and run make again"
        ) from None
    pip = [str(directory / "bin" / "python"), "-m", "pip"]
    done = subprocess.run(
        [*pip, "install", "--disable-pip-version-check", "-q", UV_REQUIREMENT], check=False
    )
    if done.returncode != 0 or not _works(binary):
        raise BootstrapError(
            f"pip could not install {UV_REQUIREMENT!r} into {directory}/ (is the package index "
            "reachable?); or install uv yourself "
            "(https://docs.astral.sh/uv/getting-started/installation/) and run make again"
        )
    return binary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="tools/bootstrap_uv.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    try:
        ensure_uv(args.directory)
    except BootstrapError as exc:
        print(f"bootstrap uv: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
