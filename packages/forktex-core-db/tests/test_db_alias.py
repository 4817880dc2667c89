# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The deprecated ``forktex_core.psql`` alias: same objects, one DeprecationWarning."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import forktex_core
import forktex_core.db

SCRIPT = textwrap.dedent(
    """
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import forktex_core.psql
        import forktex_core.psql as again
        from forktex_core.psql import init_engine, Repository
        import importlib
        importlib.import_module("forktex_core.psql")
    import forktex_core.db as db
    same = all(getattr(forktex_core.psql, n) is getattr(db, n) for n in db.__all__)
    print(json.dumps({
        "messages": [str(w.message) for w in caught if w.category is DeprecationWarning],
        "same": same and init_engine is db.init_engine and Repository is db.Repository,
        "all": forktex_core.psql.__all__ == db.__all__ and not hasattr(forktex_core.psql, "nope"),
        "where": [w.filename for w in caught],
    }))
    """
)


def test_psql_alias_reexports_and_warns_once() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(out.stdout)
    assert len(result["messages"]) == 1, result
    assert "forktex_core.db" in result["messages"][0]
    assert "deprecated" in result["messages"][0]
    assert result["same"] and result["all"]
    assert result["where"] == ["<string>"]  # attributed to the importing code


def test_no_namespace_init_file() -> None:
    # forktex_core is an implicit namespace package shared by every distribution
    assert getattr(forktex_core, "__file__", None) is None
    assert len(forktex_core.db.__all__) == len(set(forktex_core.db.__all__))
    for name in forktex_core.db.__all__:
        assert getattr(forktex_core.db, name).__doc__, f"{name} has no docstring"
