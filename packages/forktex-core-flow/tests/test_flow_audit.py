# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``forktex-flow audit``: the versioning gate over AST fingerprints."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forktex_core.flow._cli import main
from forktex_core.flow._hashing import fingerprint

HEADER = """\
from forktex_core.flow import Flow, FlowContext, Graph

flow = Flow(database_url="postgresql://app:secret@127.0.0.1:1/none")


@flow.step
async def charge(ctx: FlowContext, order: dict) -> int:
    return order["amount"]


@flow.step
async def refund(ctx: FlowContext, amount: int) -> int:
    return -amount

"""

DEPLOY_V1 = '''
@flow.workflow(name="shop.order", version=1)
async def order(ctx: FlowContext, order: dict) -> dict:
    """Charge an order."""
    paid = await charge(ctx, order)
    return {"paid": paid}
'''

# Same body: a new docstring, comments, different quoting and wrapping.
DEPLOY_V1_COSMETIC = """
@flow.workflow(name='shop.order', version=1)
async def order(ctx: FlowContext, order: dict) -> dict:
    '''Charge an order, now documented at length.

    Nothing else changed.
    '''
    # charge first
    paid = await charge(
        ctx,
        order,  # the whole order
    )
    return {'paid': paid}
"""

DEPLOY_V1_CHANGED = """
@flow.workflow(name="shop.order", version=1)
async def order(ctx: FlowContext, order: dict) -> dict:
    paid = await charge(ctx, order)
    back = await refund(ctx, paid)
    return {"paid": paid, "back": back}
"""

DEPLOY_V1_PATCHED = '''
@flow.workflow(name="shop.order", version=1)
async def order(ctx: FlowContext, order: dict) -> dict:
    """Charge an order."""
    if ctx.patched("refund-first"):
        await refund(ctx, 0)
    paid = await charge(ctx, order)
    return {"paid": paid}
'''

DEPLOY_V2 = DEPLOY_V1_CHANGED.replace("version=1", "version=2")

GRAPH = """
@flow.action("notify")
async def notify(ctx: FlowContext, payload: dict) -> dict:
    return payload


g = Graph(name="shop.review", version=1, initial="review")
g.add_state("review", "notify", manual=True)
g.add_state("done", "notify", terminal=True)
g.transition("review", "done")
flow.register_graph(g)
"""


def _app(tmp_path: Path, name: str, *parts: str) -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + "\n".join(parts))
    return f"{path}:flow"


def _audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_audit_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = str(tmp_path / "flows.manifest.json")
    base = _app(tmp_path, "app_v1", DEPLOY_V1, GRAPH)

    code, _, err = _audit(capsys, base, "--manifest", manifest)
    assert code == 2 and "no manifest" in err and "--update" in err

    code, out, _ = _audit(capsys, base, "--manifest", manifest, "--update")
    assert code == 0 and "updated" in out
    data = json.loads(Path(manifest).read_text())
    assert set(data["workflows"]) == {"shop.order", "shop.review"}
    assert data["workflows"]["shop.review"]["1"]["kind"] == "graph"
    assert "secret" not in Path(manifest).read_text()

    code, out, _ = _audit(capsys, base, "--manifest", manifest)
    assert code == 0 and "audit passed" in out

    # comments, docstrings and formatting never count
    cosmetic = _app(tmp_path, "app_cosmetic", DEPLOY_V1_COSMETIC, GRAPH)
    code, out, _ = _audit(capsys, cosmetic, "--manifest", manifest)
    assert code == 0, out

    # a real change without a bump fails, naming workflow and version
    changed = _app(tmp_path, "app_changed", DEPLOY_V1_CHANGED, GRAPH)
    code, out, err = _audit(capsys, changed, "--manifest", manifest)
    assert code == 1
    assert "workflow 'shop.order' version 1 changed without a version bump" in err
    assert "CHANGED" in out and "shop.review" in out  # the table lists everything

    # bumping the version: v2 is new (record it with --update); v1 stays as it was
    bumped = _app(tmp_path, "app_bumped", DEPLOY_V1, DEPLOY_V2, GRAPH)
    code, _, err = _audit(capsys, bumped, "--manifest", manifest)
    assert code == 1 and "'shop.order' version 2 is not in the manifest" in err
    code, _, _ = _audit(capsys, bumped, "--manifest", manifest, "--update")
    assert code == 0
    code, out, _ = _audit(capsys, bumped, "--manifest", manifest)
    assert code == 0, out

    # a body change that only adds a ctx.patched branch passes, and --update records it
    patched = _app(tmp_path, "app_patched", DEPLOY_V1_PATCHED, DEPLOY_V2, GRAPH)
    code, out, _ = _audit(capsys, patched, "--manifest", manifest)
    assert code == 0 and "PATCHED" in out and "refund-first" in out
    _audit(capsys, patched, "--manifest", manifest, "--update")
    data = json.loads(Path(manifest).read_text())
    assert data["workflows"]["shop.order"]["1"]["patches"] == ["refund-first"]
    code, out, _ = _audit(capsys, patched, "--manifest", manifest)
    assert code == 0 and "PATCHED" not in out

    # graphs: a structure change or a handler change without a bump fails too
    graph2 = GRAPH.replace(
        'g.transition("review", "done")',
        ('g.transition("review", "done", when={"field": "ok", "op": "==", "value": True})'),
    )
    code, _, err = _audit(
        capsys,
        _app(tmp_path, "app_g2", DEPLOY_V1_PATCHED, DEPLOY_V2, graph2),
        "--manifest",
        manifest,
    )
    assert code == 1 and "workflow 'shop.review' version 1 changed" in err
    graph3 = GRAPH.replace("    return payload", "    return {**payload, 'n': 1}")
    code, _, err = _audit(
        capsys,
        _app(tmp_path, "app_g3", DEPLOY_V1_PATCHED, DEPLOY_V2, graph3),
        "--manifest",
        manifest,
    )
    assert code == 1 and "'shop.review' version 1 changed" in err


def test_audit_console_script_subprocess(tmp_path: Path) -> None:
    app = _app(tmp_path, "app_sub", DEPLOY_V1)
    manifest = tmp_path / "m.json"
    run = [
        sys.executable,
        "-m",
        "forktex_core.flow._cli",
        "audit",
        app,
        "--manifest",
        str(manifest),
    ]
    assert subprocess.run([*run, "--update"], capture_output=True, timeout=60).returncode == 0
    changed = tmp_path / "app_sub.py"
    changed.write_text(HEADER + DEPLOY_V1_CHANGED)
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "'shop.order' version 1 changed without a version bump" in proc.stderr


def test_fingerprint_normalisation(tmp_path: Path) -> None:
    ns: dict[str, object] = {}

    def load(src: str) -> object:
        code = textwrap.dedent(src)
        path = tmp_path / f"fp_{abs(hash(code))}.py"
        path.write_text(code)
        exec(compile(code, str(path), "exec"), ns)
        return ns["f"]

    a = fingerprint(load('async def f(ctx, x):\n    """Doc."""\n    return x + 1  # c\n'))
    b = fingerprint(load("async def f(ctx, x):\n    return (x +\n            1)\n"))
    c = fingerprint(load("async def f(ctx, x):\n    return x + 2\n"))
    assert a.hash == b.hash != c.hash
    assert a.hash is not None and len(a.hash) == 64
    unavailable = fingerprint(eval("lambda: 1"))
    assert unavailable.hash is None and unavailable.error
