# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``run_python`` (code in a fresh interpreter) and ``hide_otel_sdk`` (the SDK unimportable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forktex_core.testing import run_python


def test_runs_the_parts_dedented_and_returns_the_last_json_line(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper_mod.py").write_text("VALUE = 41\n")
    result = run_python(
        """
        import json, os
        from helper_mod import VALUE
        print("noise first")
        """,
        "print(json.dumps({'value': VALUE + 1, 'cwd': os.getcwd()}))",
        cwd=tmp_path,
        path=[tmp_path / "lib"],
    )
    assert result == {"value": 42, "cwd": str(tmp_path)}


def test_hide_sdk_makes_the_sdk_unimportable(tmp_path: Path) -> None:
    code = """
        import json
        try:
            import opentelemetry.sdk.trace
            print(json.dumps("imported"))
        except ModuleNotFoundError as exc:
            print(json.dumps(exc.name))
        """
    assert run_python(code, cwd=tmp_path, hide_sdk=True) == "opentelemetry.sdk"
    assert run_python(code, cwd=tmp_path) == "imported"


def test_bad_input_and_failures_say_what_went_wrong(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="one or more str"):
        run_python(cwd=tmp_path)
    with pytest.raises(TypeError, match="one or more str"):
        run_python(b"print(1)", cwd=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"must be an existing directory, got '.*nowhere'"):
        run_python("print(1)", cwd=tmp_path / "nowhere")
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_python("1 / 0", cwd=tmp_path)
    with pytest.raises(AssertionError, match="printed nothing"):
        run_python("x = 1", cwd=tmp_path)
    with pytest.raises(AssertionError, match=r"ran past 0\.5 s and was killed"):
        run_python("import time; time.sleep(30)", cwd=tmp_path, timeout=0.5)
