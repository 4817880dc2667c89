# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/bench/run_all.py: discovery, one combined table, BENCHMARKS.md (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "bench" / "run_all.py"


import run_all  # noqa: E402  (tools/bench is on pytest's pythonpath)


def fake_machine() -> object:
    return run_all.Machine(
        cores=4,
        python="CPython 3.11.7",
        platform="Linux x86_64",
        postgres="PostgreSQL 15.20 (env)",
        redis="Redis 7.0.15",
        date="2026-01-01 00:00 UTC",
    )


GOOD = """
from _harness import Row

async def run(quick: bool) -> list[Row]:
    return [Row("cache", "get hit" + (" quick" if quick else ""), 10.0, "us", "redis-py", 8.0, 5)]
"""
BROKEN = """
async def run(quick: bool):
    raise RuntimeError("server went away")
"""
NOT_ASYNC = """
def run(quick):
    return []
"""


def test_discover_skips_private_modules_and_itself(tmp_path: Path) -> None:
    for name in ("_harness.py", "_util.py", "run_all.py", "cache.py", "flow.py", "notes.txt"):
        (tmp_path / name).write_text("")
    assert [p.name for p in run_all.discover(tmp_path)] == ["cache.py", "flow.py"]


def test_no_benchmarks_writes_header_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    argv = ["--bench-dir", str(tmp_path), "--output", str(out)]
    assert run_all.main(argv, machine=fake_machine) == 0
    text = out.read_text()
    assert "- Machine: 4 cores" in text
    assert "- PostgreSQL: PostgreSQL 15.20" in text
    assert "- Redis: Redis 7.0.15" in text
    assert "- Date: 2026-01-01" in text
    assert "No benchmarks exist yet" in text
    assert not (tmp_path / "BENCHMARKS.tmp.md").exists()


def test_rows_are_combined_and_quick_passes_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cache.py").write_text(GOOD)
    out = tmp_path / "B.md"
    argv = ["--bench-dir", str(tmp_path), "--output", str(out), "--quick"]
    assert run_all.main(argv, machine=fake_machine) == 0
    text = out.read_text()
    assert run_all.HEADER in text
    assert "| cache | get hit quick | 10 us | redis-py | 8 us | 1.25x | 5 |" in text
    assert "--quick" in text
    assert "get hit quick" in capsys.readouterr().out


def test_a_failing_benchmark_is_reported_and_others_still_run(tmp_path: Path) -> None:
    (tmp_path / "a_broken.py").write_text(BROKEN)
    (tmp_path / "b_sync.py").write_text(NOT_ASYNC)
    (tmp_path / "cache.py").write_text(GOOD)
    out = tmp_path / "B.md"
    assert run_all.main(["--bench-dir", str(tmp_path), "--output", str(out)], fake_machine) == 1
    text = out.read_text()
    assert "| cache | get hit |" in text
    assert "`a_broken`: RuntimeError: server went away" in text
    assert "`b_sync`: TypeError" in text


def test_only_filters_and_rejects_unknown_names(tmp_path: Path) -> None:
    (tmp_path / "a_broken.py").write_text(BROKEN)
    (tmp_path / "cache.py").write_text(GOOD)
    out = tmp_path / "B.md"
    argv = ["--bench-dir", str(tmp_path), "--output", str(out), "--only", "cache"]
    assert run_all.main(argv, machine=fake_machine) == 0
    with pytest.raises(SystemExit):
        run_all.main([*argv[:-1], "nope"], machine=fake_machine)
