# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Python code run in a fresh interpreter, for what a test process cannot undo: a global
OpenTelemetry provider never set, an SDK that is not installed, a module not yet imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HIDE_SDK = "from forktex_core.testing import hide_otel_sdk\nhide_otel_sdk()\n"


def run_python(
    *parts: str,
    cwd: Path,
    timeout: float = 120,
    path: Sequence[str | Path] = (),
    hide_sdk: bool = False,
) -> Any:
    """Run the code ``parts`` (each dedented, joined by newlines) in a fresh interpreter and
    return the JSON its last printed line holds. ``cwd`` is where it runs (a ``tmp_path``),
    ``path`` is put on its ``PYTHONPATH``, and ``hide_sdk`` runs it with the OpenTelemetry SDK
    unimportable (:func:`hide_otel_sdk`). A failing run is an ``AssertionError`` carrying the
    end of its stderr; one that outlives ``timeout`` seconds is killed and one too.

    Example::

        def test_no_provider(tmp_path):
            result = run_python(
                "import json; from opentelemetry import trace",
                "print(json.dumps(type(trace.get_tracer_provider()).__name__))",
                cwd=tmp_path,
            )
            assert result == "ProxyTracerProvider"
    """
    if not parts or not all(isinstance(part, str) for part in parts):
        raise TypeError("run_python() takes the code as one or more str arguments")
    if not Path(cwd).is_dir():
        raise ValueError(f"run_python(cwd=...) must be an existing directory, got {str(cwd)!r}")
    code = "\n".join(textwrap.dedent(part) for part in parts)
    if hide_sdk:
        code = _HIDE_SDK + code
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join([*map(str, path), env.get("PYTHONPATH", "")])
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the fresh interpreter ran past {timeout} s and was killed") from exc
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert lines, f"the fresh interpreter printed nothing; stderr: {done.stderr[-4000:]}"
    return json.loads(lines[-1])
