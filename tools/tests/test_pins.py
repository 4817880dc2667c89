# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""tools/pins.py: the meta-package's ranges must hold every distribution (and make ci says so)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent


import pins  # noqa: E402  (tools/ is on pytest's pythonpath)

V = pins.parse_version


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


META = Path("packages/forktex-core/pyproject.toml")


def run_tool(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "pins.py"), "check", "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )


# -- the real repository and an intact copy -------------------------------------------


def test_this_repository_pins_hold() -> None:
    assert pins.check(REPO) == []


def test_intact_copy_passes(tree: Path) -> None:
    assert pins.check(tree) == []
    result = run_tool(tree)
    assert result.returncode == 0, result.stderr
    assert "every version is in range" in result.stdout


# -- a deliberately broken pin ---------------------------------------------------------


def test_broken_pin_fails_the_check(tree: Path) -> None:
    edit(tree / META, '"forktex-core-db>=0.3,<0.4"', '"forktex-core-db>=0.2,<0.3"')
    problems = pins.check(tree)
    assert len(problems) == 1
    assert "forktex-core-db is at 0.3.0, outside the range forktex-core pins" in problems[0]
    assert "'forktex-core-db>=0.2,<0.3'" in problems[0]
    result = run_tool(tree)
    assert result.returncode == 1
    assert "pins check: 1 problem(s)" in result.stderr


# The copy has no uv.lock to build an environment from: make runs the workspace tools with
# the interpreter running these tests, which is the workspace environment's.
PYTHONS = ["PYTHON=" + sys.executable, "WORKSPACE_PYTHON=" + sys.executable]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make binary")
def test_broken_pin_makes_make_ci_fail(tree: Path) -> None:
    """The generated Makefile's ci target stops at pins-check (right after fsd-check)."""
    edit(tree / META, '"forktex-core-db>=0.3,<0.4"', '"forktex-core-db>=0.2,<0.3"')
    result = subprocess.run(
        ["make", "-C", str(tree), "ci", *PYTHONS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "fsd check: Makefile, forktex.json and packages/ agree" in result.stdout
    assert "outside the range forktex-core pins" in result.stderr
    assert "ruff" not in result.stdout, "ci must stop at the failing pins check"
    # and the same target passes once the pin is back
    edit(tree / META, '"forktex-core-db>=0.2,<0.3"', '"forktex-core-db>=0.3,<0.4"')
    ok = subprocess.run(
        ["make", "-C", str(tree), "pins-check", *PYTHONS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="no make binary")
def test_make_pins_check_runs_in_the_workspace_environment() -> None:
    """make pins-check runs pins.py through uv, in .venv (which has packaging)."""
    result = subprocess.run(
        ["make", "-C", str(REPO), "pins-check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "run --locked --all-packages python tools/pins.py check" in result.stdout
    assert "every version is in range" in result.stdout


def test_member_version_leaving_the_range(tree: Path) -> None:
    cache = tree / "packages/forktex-core-cache/pyproject.toml"
    edit(cache, 'version = "0.3.0"', 'version = "0.4.0"')
    problems = "\n".join(pins.check(tree))
    assert "forktex-core-cache is at 0.4.0, outside the range forktex-core pins" in problems
    assert "tools/release.py" in problems


def test_a_member_pin_between_distributions_is_checked_too(tree: Path) -> None:
    edit(tree / "packages/forktex-core-db/pyproject.toml", 'version = "0.3.0"', 'version = "0.4.0"')
    problems = "\n".join(pins.check(tree))
    assert "outside the range forktex-core-data pins" in problems
    assert "widen forktex-core-data's range and release it" in problems


def test_unpinned_distribution(tree: Path) -> None:
    new = tree / "packages" / "forktex-core-mail"
    (new / "tests").mkdir(parents=True)
    (new / "pyproject.toml").write_text(
        '[project]\nname = "forktex-core-mail"\nversion = "0.1.2"\n'
    )
    manifest = json.loads((tree / "forktex.json").read_text())
    manifest["packages"].insert(
        0,
        {
            "name": "forktex-core-mail",
            "path": "packages/forktex-core-mail",
            "module": "forktex_core.m",
        },
    )
    (tree / "forktex.json").write_text(json.dumps(manifest))
    problems = pins.check(tree)
    assert len(problems) == 1
    assert "forktex-core-mail (packages/forktex-core-mail) exists but the meta" in problems[0]
    assert "'forktex-core-mail>=0.1,<0.2'" in problems[0]


def test_dropping_the_testing_extra_is_an_unpinned_distribution(tree: Path) -> None:
    edit(tree / META, 'testing = ["forktex-core-testing>=0.3,<0.4"]', "testing = []")
    problems = "\n".join(pins.check(tree))
    assert "forktex-core-testing (packages/forktex-core-testing) exists but" in problems
    assert "to its optional extra [testing]" in problems


TESTING_PIN = '"forktex-core-testing>=0.3,<0.4"'
DB_PIN = '"forktex-core-db>=0.3,<0.4"'


@pytest.mark.parametrize(
    ("move", "expected"),
    [
        # the test plugin in the plain dependencies: pip install forktex-core brings pytest
        (
            [("dependencies = [\n", f"dependencies = [\n    {TESTING_PIN},\n")],
            "pins forktex-core-testing in dependencies, extra [testing]; pin it in its "
            "optional extra [testing] only",
        ),
        (
            [
                (f"testing = [{TESTING_PIN}]", "testing = []"),
                ("dependencies = [\n", f"dependencies = [\n    {TESTING_PIN},\n"),
            ],
            "pins forktex-core-testing in dependencies; pin it in its optional extra [testing]",
        ),
        (
            [(f"testing = [{TESTING_PIN}]", f"testing = [{TESTING_PIN}]\nother = [{TESTING_PIN}]")],
            "pins forktex-core-testing in extra [other], extra [testing]",
        ),
        # a runtime module only through an extra: pip install forktex-core would lack it
        (
            [
                (f"    {DB_PIN},\n", ""),
                (f"testing = [{TESTING_PIN}]", f"testing = [{TESTING_PIN}, {DB_PIN}]"),
            ],
            "pins forktex-core-db in extra [testing]; pin it in its dependencies only (it is "
            "a runtime module",
        ),
    ],
    ids=["plugin-in-both", "plugin-in-dependencies", "plugin-in-two-extras", "module-in-extra"],
)
def test_each_distribution_is_pinned_where_forktex_json_says(
    tree: Path, move: list[tuple[str, str]], expected: str
) -> None:
    for old, new in move:
        edit(tree / META, old, new)
    problems = pins.check(tree)
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_the_real_meta_package_keeps_the_test_stack_out_of_its_dependencies() -> None:
    """pip install forktex-core installs runtime modules only; [testing] adds the plugin."""
    manifest = json.loads((REPO / "forktex.json").read_text())
    plugin = [p["name"] for p in manifest["packages"] if p.get("extra") == "testing"]
    assert plugin == ["forktex-core-testing"]
    meta = pins.read_project(REPO, "packages/forktex-core")
    assert not any(pins.parse_requirement(d).name in plugin for d in meta.dependencies)
    assert [pins.parse_requirement(d).name for d in meta.extras["testing"]] == plugin


@pytest.mark.parametrize("pin", ["forktex-core-db>=0.3", "forktex-core-db", "forktex-core-db<0.4"])
def test_unbounded_pin(tree: Path, pin: str) -> None:
    edit(tree / META, '"forktex-core-db>=0.3,<0.4"', f'"{pin}"')
    problems = "\n".join(pins.check(tree))
    assert f"{pin!r} is not a bounded range: pin it as 'forktex-core-db>=0.3,<0.4'" in problems


def test_missing_workspace_source(tree: Path) -> None:
    edit(tree / META, "forktex-core-vault = { workspace = true }\n", "")
    problems = pins.check(tree)
    assert problems == [
        "packages/forktex-core/pyproject.toml: [tool.uv.sources] lacks "
        "'forktex-core-vault = { workspace = true }'"
    ]


def test_pin_of_an_unknown_distribution(tree: Path) -> None:
    edit(tree / META, '    "forktex-core-db>=0.3,<0.4",\n', '    "forktex-core-db>=0.3,<0.4",\n'
         '    "forktex-core-gone>=0.1,<0.2",\n')  # fmt: skip
    problems = "\n".join(pins.check(tree))
    assert "pins forktex-core-gone, which is not a workspace distribution" in problems


def test_no_meta_package(tree: Path) -> None:
    manifest = json.loads((tree / "forktex.json").read_text())
    manifest["packages"] = [p for p in manifest["packages"] if not p.get("meta")]
    (tree / "forktex.json").write_text(json.dumps(manifest))
    assert "lists no meta-package" in pins.check(tree)[0]


# -- PEP 440 / PEP 508 through packaging ----------------------------------------------


def test_versions_are_packaging_versions_in_pep440_order() -> None:
    ordered = ["0.3.0.dev1", "0.3.0a1", "0.3.0b2", "0.3.0rc1", "0.3.0", "0.3.0.post1", "0.3.1"]
    parsed = [V(v) for v in ordered]
    assert all(isinstance(v, pins.Version) for v in parsed)
    assert parsed == sorted(reversed(parsed))
    assert V("1.0") == V("1.0.0")
    assert str(V("1.0-RC1")) == "1.0rc1"
    assert str(V("v2.0.0.post3")) == "2.0.0.post3"


@pytest.mark.parametrize("bad", ["", "1.x", "latest", "0.3.0-", "1..2"])
def test_invalid_versions(bad: str) -> None:
    with pytest.raises(pins.InvalidVersion, match=f"{re.escape(repr(bad))} is not a PEP 440"):
        V(bad)


@pytest.mark.parametrize("bad", ["forktex-core-db>=", "forktex-core-db >=0.3,,<0.4", "[x]>=1"])
def test_invalid_requirements_name_the_text(bad: str) -> None:
    with pytest.raises(
        pins.InvalidRequirement, match=f"cannot read requirement {re.escape(repr(bad))}"
    ):
        pins.parse_requirement(bad)


def test_an_unreadable_meta_pin_is_a_problem_not_a_crash(tree: Path) -> None:
    edit(tree / META, '"forktex-core-db>=0.3,<0.4"', '"forktex-core-db>=0.3,,<0.4"')
    problems = "\n".join(pins.check(tree))
    assert "cannot read requirement 'forktex-core-db>=0.3,,<0.4'" in problems


@pytest.mark.parametrize(
    ("spec", "version", "inside"),
    [
        (">=0.3,<0.4", "0.3.0", True),
        (">=0.3,<0.4", "0.3.9", True),
        (">=0.3,<0.4", "0.4.0", False),
        (">=0.3,<0.4", "0.4.0rc1", False),  # "<V" excludes pre-releases of V
        (">=0.3,<0.4", "0.3.1rc1", True),  # a member's own pre-release is inside its range
        (">=0.3,<0.4", "0.2.9", False),
        (">=0.5.0rc1,<0.6", "0.5.0rc1", True),
        ("~=0.3.1", "0.3.7", True),
        ("~=0.3.1", "0.4.0", False),
        ("==0.3.*", "0.3.2", True),
        ("!=0.3.1", "0.3.1", False),
        (">0.3.0", "0.3.0.post1", False),
        ("<=1.0", "1.0.0", True),
    ],
)
def test_specifier_contains(spec: str, version: str, inside: bool) -> None:
    assert pins.contains(pins.parse_requirement(f"forktex-core-db{spec}"), V(version)) is inside


def test_parse_requirement_with_extras_and_marker() -> None:
    req = pins.parse_requirement('Forktex_Core.DB[x, y] >=0.3, <0.4 ; python_version >= "3.11"')
    assert pins.canonical_name(req.name) == "forktex-core-db"
    assert req.extras == {"x", "y"}
    assert pins.specifier_text(req) == ">=0.3,<0.4"
    assert str(req.marker) == 'python_version >= "3.11"'
    assert pins.is_bounded(req)


@pytest.mark.parametrize(
    ("spec", "text", "bounded"),
    [
        ("<0.4,>=0.3", ">=0.3,<0.4", True),
        (">0.3,<=0.4,!=0.3.5", ">0.3,!=0.3.5,<=0.4", True),
        ("~=0.3.1", "~=0.3.1", True),
        ("==0.3.1", "==0.3.1", True),
        ("==0.3.*", "==0.3.*", False),
        (">=0.3", ">=0.3", False),
        ("<0.4", "<0.4", False),
        ("", "", False),
    ],
)
def test_specifier_text_puts_the_lower_bound_first(spec: str, text: str, bounded: bool) -> None:
    req = pins.parse_requirement(f"forktex-core-db{spec}")
    assert pins.specifier_text(req) == text
    assert pins.is_bounded(req) is bounded


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.3.0", ">=0.3,<0.4"),
        ("0.4.2", ">=0.4,<0.5"),
        ("1.2.0", ">=1.2,<2"),
        ("0.5.0rc1", ">=0.5.0rc1,<0.6"),
    ],
)
def test_compatible_range(version: str, expected: str) -> None:
    rng = pins.compatible_range(V(version))
    assert rng == expected
    assert pins.contains(pins.parse_requirement("x" + rng), V(version))
    assert re.fullmatch(r">=[^,]+,<[0-9.]+", rng)
