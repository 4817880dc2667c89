# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The deprecated forktex_core.redis alias."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def test_alias_warns_once_and_reexports_the_same_objects(tmp_path: Path) -> None:
    src = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import forktex_core.redis as old
            import forktex_core.redis
            from forktex_core.redis import cached, rate_limit
        import forktex_core.cache as new
        dep = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        assert len(dep) == 1, [str(w.message) for w in dep]
        assert "forktex_core.cache" in str(dep[0].message)
        assert dep[0].filename == __file__, dep[0].filename  # points at the importing line
        assert old.__all__ == new.__all__ and len(new.__all__) > 20
        for name in new.__all__:
            assert getattr(old, name) is getattr(new, name), name
        assert cached is new.cached and rate_limit is new.rate_limit
        try:
            old._client
        except AttributeError as exc:
            assert "forktex_core.cache" in str(exc)
        else:
            raise AssertionError("private names must not leak through the alias")
        import redis.asyncio  # the redis library is not shadowed by the alias
        assert hasattr(redis.asyncio, "Redis")
        print("ok")
        """
    )
    path = tmp_path / "check_alias.py"
    path.write_text(src, encoding="utf-8")
    out = subprocess.run([sys.executable, path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
