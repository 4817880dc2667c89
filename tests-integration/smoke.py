# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Smoke calls, one per ``forktex_core`` module, run inside a freshly installed virtualenv.

No service is needed: each call exercises the module's public API in memory (a repository
over a model and a compiled filter, a cache key, a workflow defined without connecting, an
encryption round trip, a filesystem-backed storage put/get, a queue task run in-process, an
in-memory register query, the test plugin's URL parsing). Run as::

    python smoke.py '["db", "cache"]'

It prints ``ok <module>`` per module and exits non-zero at the first failure. Only the
standard library and the module under test are imported, so it runs in any of the venvs.
"""

from __future__ import annotations

import json
import runpy
import sys
import tempfile
from pathlib import Path

SMOKE: dict[str, str] = {
    "db": """
import asyncio
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from forktex_core.db import (
    BaseDBModel, InvalidFilter, OrgScopedMixin, Repository, close_engine, get_engine, init_engine,
)

class SmokeInvoice(OrgScopedMixin, BaseDBModel):
    __tablename__ = "smoke_invoice"
    number: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int]

class Invoices(Repository[SmokeInvoice]):
    model = SmokeInvoice
    filter_fields = ("number", "amount")

async def main() -> None:
    repo = Invoices(AsyncSession())  # no bind: filters are validated before any I/O
    try:
        await repo.list(filters={"colour": "red"})
    except InvalidFilter as exc:
        assert "colour" in str(exc) and "amount" in str(exc), exc
    else:
        raise AssertionError("unknown filter field accepted")
    init_engine("postgresql+asyncpg://smoke@127.0.0.1:1/smoke", pool_size=2)  # lazy: no connect
    sql = str(select(SmokeInvoice).where(SmokeInvoice.amount >= 100).compile(get_engine()))
    assert "smoke_invoice.amount >=" in sql, sql
    await close_engine()

asyncio.run(main())
""",
    "psql": """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import forktex_core.psql as psql
import forktex_core.db as db
assert [w.category for w in caught] == [DeprecationWarning], caught
assert psql.Repository is db.Repository and psql.init_engine is db.init_engine
""",
    "cache": """
import asyncio
from forktex_core.cache import Namespace, cached, close, init

assert Namespace("a.b").key("1") == "a:b::1"

@cached(ttl=60, namespace="user:profile")
async def profile(user_id: str) -> dict:
    return {"id": user_id}

async def main() -> None:
    await init("redis://127.0.0.1:1/0", prefix="svc:", verify=False)  # no connection made
    key = profile.key_for("42")
    assert key.startswith("svc:user:profile:"), key
    assert key != profile.key_for("43")
    await close()

asyncio.run(main())
""",
    "redis": """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import forktex_core.redis as legacy
import forktex_core.cache as cache
assert [w.category for w in caught] == [DeprecationWarning], caught
assert legacy.Namespace is cache.Namespace and legacy.cached is cache.cached
""",
    "flow": """
from forktex_core.flow import Flow, FlowContext, Graph

flow = Flow(database_url="postgresql+asyncpg://smoke@127.0.0.1:1/smoke")  # connects lazily

@flow.step
async def double(ctx: FlowContext, n: int) -> int:
    return n * 2

@flow.workflow(name="smoke.double", version=1)
async def run(ctx: FlowContext, n: int) -> int:
    return await double(ctx, n)

g = Graph(name="smoke.onboarding", version=1, initial="pending")

@g.state("pending", manual=True)
async def pending(ctx, payload):
    return payload

@g.state("done", terminal=True)
async def done(ctx, payload):
    return payload

g.transition("pending", "done")
flow.register_graph(g)
prints = flow.fingerprints()
assert set(prints) == {("smoke.double", 1), ("smoke.onboarding", 1)}, prints
assert all(p.error is None for p in prints.values()), prints
assert "stateDiagram" in g.to_mermaid()
""",
    "vault": """
from forktex_core.vault import Vault, VaultDecryptError

vault = Vault.from_key(Vault.generate_key())
token = vault.encrypt({"hetzner_token": "hz_x", "ssh_key_id": 12345})
assert vault.decrypt(token) == {"hetzner_token": "hz_x", "ssh_key_id": 12345}
try:
    Vault.from_key(Vault.generate_key()).decrypt(token)
except VaultDecryptError:
    pass
else:
    raise AssertionError("a wrong key opened the token")
""",
    "telemetry": """
from opentelemetry.trace import SpanKind
from forktex_core.telemetry import InvalidArgument, Tracing, capture, carrier_of, error_type

tracing = Tracing("smoke.telemetry", "forktex-core-telemetry")
with tracing.operation("smoke.op", SpanKind.CLIENT, {"smoke": 1}) as span:
    assert not span.is_recording()  # the API alone: a no-op
assert capture() == {} and carrier_of("junk") is None
try:
    raise RuntimeError("wrapped") from ConnectionRefusedError("secret")
except RuntimeError as exc:
    assert error_type(exc) == "ConnectionRefusedError", error_type(exc)
try:
    Tracing("", "forktex-core-telemetry")
except InvalidArgument as exc:
    assert "scope" in str(exc), exc
else:
    raise AssertionError("an empty scope was accepted")
""",
    "storage": """
import asyncio, tempfile
from forktex_core.storage import StorageClient, build_key, sniff_content_type

key = build_key("invoices", "2026-04", "INV-123.pdf")
assert key == "invoices/2026-04/INV-123.pdf", key
assert sniff_content_type("scan", b"%PDF-1.7 ...") == "application/pdf"

async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with StorageClient(endpoint=f"file://{tmp}", bucket="smoke") as storage:
            await storage.ensure_bucket()
            await storage.put(key, b"%PDF-1.7 ...")
            assert await storage.get(key) == b"%PDF-1.7 ..."

asyncio.run(main())
""",
    "queue": """
import asyncio
from forktex_core.queue import Queue

queue = Queue(redis_url="redis://127.0.0.1:1/0", name="smoke")  # connects lazily

@queue.task(retries=3, timeout=30)
async def send_email(to: str, subject: str) -> str:
    return f"{to}:{subject}"

assert asyncio.run(send_email("a@example.com", "hi")) == "a@example.com:hi"  # in-process
""",
    "data": """
import asyncio
from decimal import Decimal
from forktex_core.data import Field, MemoryRegister, RowQuery

rates = MemoryRegister(
    "rates",
    [Field("code", "text"), Field("rate", "decimal")],
    rows=[{"code": "EUR", "rate": "1.0"}, {"code": "USD", "rate": "1.1"}],
)
page = asyncio.run(RowQuery(rates).where(code__starts_with="E").scroll())
assert [row.values["code"] for row in page.items] == ["EUR"], page
assert page.items[0].values["rate"] == Decimal("1.0")
""",
    "console": """
import asyncio
from importlib.resources import files
from forktex_core.console import ConsoleError, flow_console
from forktex_core.flow import Flow

flow = Flow(database_url="postgresql+asyncpg://smoke@127.0.0.1:1/smoke")  # connects lazily
try:
    flow_console(flow)
except ConsoleError as exc:
    assert "authenticate=" in str(exc), exc
else:
    raise AssertionError("a console without a login was built")
assets = files("forktex_core.console") / "static"
assert {p.name for p in assets.iterdir()} >= {"console.css", "console.js"}

async def get(app, path):
    sent = []
    asked = []
    async def receive():
        if asked:  # the client never goes away while the response is sent
            await asyncio.Event().wait()
        asked.append(1)
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"smoke")], "root_path": "",
             "scheme": "http", "server": ("smoke", 80), "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], dict(sent[0]["headers"]), body

refused = flow_console(flow, lambda request: None)
status, headers, _ = asyncio.run(get(refused, "/"))
assert status == 401 and headers[b"x-frame-options"] == b"DENY", (status, headers)
app = flow_console(flow, allow_anonymous=True)
status, headers, body = asyncio.run(get(app, "/static/console.css"))
assert status == 200 and b"forktex-core console" in body, (status, body[:80])
""",
    "testing": """
import importlib.metadata
import forktex_core.testing.plugin
from forktex_core.testing import parse_postgres_url, parse_redis_url

assert "***" in str(parse_postgres_url("postgresql://u:secret@h:5433/db"))
assert parse_redis_url("redis://h:6380/2")[:3] == ("h", 6380, 2)
plugins = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
assert "forktex_core.testing.plugin" in plugins, plugins
""",
}


def main(argv: list[str]) -> int:
    """Run the smoke call of every module named in the JSON list ``argv[0]``."""
    with tempfile.TemporaryDirectory() as tmp:
        for module in json.loads(argv[0]):
            # A real file, so that inspect.getsource works (flow fingerprints workflow bodies).
            script = Path(tmp) / f"smoke_{module}.py"
            script.write_text(SMOKE[module], encoding="utf-8")
            runpy.run_path(str(script), run_name=f"smoke_{module}")
            print(f"ok {module}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
