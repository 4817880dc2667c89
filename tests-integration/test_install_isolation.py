# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Installing one distribution brings its own module and its own dependencies, nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
DIST = ROOT / "dist"


@dataclass(frozen=True)
class Distribution:
    """A workspace member as the install tests see it."""

    name: str
    version: str
    path: Path
    modules: tuple[str, ...]  # forktex_core.<module> names it ships
    requires: tuple[str, ...]

    @property
    def wheel_stem(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-"


def distributions() -> list[Distribution]:
    """Every distribution under packages/, read from its pyproject.toml."""
    found = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        src = pyproject.parent / "src" / "forktex_core"
        modules = tuple(sorted(p.name for p in src.iterdir() if p.is_dir())) if src.exists() else ()
        found.append(
            Distribution(
                project["name"],
                project["version"],
                pyproject.parent,
                modules,
                tuple(project.get("dependencies", [])),
            )
        )
    return found


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH (run make deps)")
    return found


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a wheel of every distribution: dist/ when `make build` made them
    for the current versions, else freshly built."""
    wanted = distributions()
    if DIST.exists() and all(any(DIST.glob(d.wheel_stem + "*.whl")) for d in wanted):
        return DIST
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [uv(), "build", "--all-packages", "--wheel", "-o", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out


# Readable guard rails on top of the exact closure check below: what must never come along.
MUST_NOT_COME_ALONG = {
    "forktex-core-testing": {"sqlalchemy", "arq", "miniopy-async"},
    "forktex-core-db": {"redis", "hiredis", "arq", "cryptography", "miniopy-async", "pytest"},
    "forktex-core-cache": {"sqlalchemy", "asyncpg", "arq", "cryptography", "pytest"},
    "forktex-core-flow": {"redis", "arq", "miniopy-async", "pytest"},
    "forktex-core-vault": {"redis", "asyncpg", "arq", "miniopy-async", "pytest"},
    "forktex-core-storage": {"sqlalchemy", "asyncpg", "redis", "pytest"},
    "forktex-core-queue": {"sqlalchemy", "asyncpg", "cryptography", "pytest"},
    "forktex-core-data": {"redis", "arq", "miniopy-async", "pytest"},
}

# Reads what the fresh environment holds, from inside it.
PROBE = r"""
import importlib, importlib.metadata as md, json, sys
mods = json.loads(sys.argv[1])
out = {"dists": {}, "imports": {}}
for dist in md.distributions():
    out["dists"][dist.metadata["Name"]] = dist.requires or []
for mod in mods:
    try:
        importlib.import_module("forktex_core." + mod)
        out["imports"][mod] = True
    except ModuleNotFoundError:
        out["imports"][mod] = False
import forktex_core
out["namespace"] = getattr(forktex_core, "__file__", None) is None
print(json.dumps(out))
"""


def _closure(root: str, dists: dict[str, list[str]]) -> set[str]:
    """Names reachable from ``root`` through Requires-Dist, markers evaluated (no extras)."""
    index = {canonicalize_name(name): reqs for name, reqs in dists.items()}
    seen: set[str] = set()
    todo = [(canonicalize_name(root), frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        if (name in seen and not extras) or name not in index:
            continue
        seen.add(name)
        for line in index[name]:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return seen


ALL = distributions()
ALL_MODULES = sorted({m for d in ALL for m in d.modules})


@pytest.mark.parametrize("dist", ALL, ids=[d.name for d in ALL])
def test_wheel_installs_alone(dist: Distribution, wheelhouse: Path, tmp_path: Path) -> None:
    wheels = sorted(wheelhouse.glob(dist.wheel_stem + "*.whl"))
    assert wheels, f"no wheel for {dist.name} {dist.version} in {wheelhouse}"
    venv = tmp_path / "venv"
    subprocess.run([uv(), "venv", "-q", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", python, str(wheels[0]),
         "--find-links", str(wheelhouse)],
        check=True,
    )  # fmt: skip
    probe = subprocess.run(
        [python, "-c", PROBE, json.dumps(ALL_MODULES)],
        check=True,
        capture_output=True,
        text=True,
    )
    seen = json.loads(probe.stdout)
    installed = {canonicalize_name(n) for n in seen["dists"]}

    # Only what its requirements pull in, and nothing else.
    expected = _closure(dist.name, seen["dists"])
    assert installed == expected, f"unexpected: {installed - expected}"
    assert not (installed & {canonicalize_name(n) for n in MUST_NOT_COME_ALONG.get(dist.name, ())})

    # Its own modules import; every other forktex_core module is absent unless it depends on it.
    forktex_closure = {
        m for other in ALL if canonicalize_name(other.name) in expected for m in other.modules
    }
    for module, imported in seen["imports"].items():
        assert imported == (module in forktex_closure), (
            f"forktex_core.{module} import={imported} after installing {dist.name}"
        )
    assert seen["namespace"], "forktex_core must stay an implicit namespace package"
