# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The test suite leaves nothing behind: a run of a hypothesis test under this package's
conftest creates nothing in the temp directory or the working directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_a_hypothesis_run_leaves_no_files_behind(pytester: pytest.Pytester, tmp_path: Path) -> None:
    shutil.copy(HERE / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(
        test_strings="""
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=20, database=None)
        @given(st.text())
        def test_text(value):
            assert isinstance(value, str)
        """
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp), "PYTHONDONTWRITEBYTECODE": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    assert list(temp.iterdir()) == []  # the session's hypothesis directory is gone
    assert not (pytester.path / ".hypothesis").exists()  # nor in the working directory
