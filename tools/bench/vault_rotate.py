# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""vault: ``rotate_blobs`` rows/second on real Postgres vs a hand-written rotation loop.

The baseline is the script a service writes without the library: keyset-paginated
``SELECT id, payload ... ORDER BY id LIMIT n``, ``MultiFernet.rotate`` each token, executemany
``UPDATE``, commit per batch - but no row locks, no skip detection, no failure report.

Full run: 100,000 rows; ``--quick``: 10,000. Run alone:
``uv run python tools/bench/vault_rotate.py --quick``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, interleave, main, postgres_database

from forktex_core.vault import EncryptedJSON, Vault, rotate_blobs

BATCH = 1000


def _table(name: str, vault: Vault) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("payload", EncryptedJSON(vault)),
    )


async def _reset(engine: AsyncEngine, name: str, tokens: list[str]) -> None:
    """(Re)create ``name`` holding ``tokens`` (all on the old key)."""
    raw = sa.table(name, sa.column("id"), sa.column("payload"))
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"drop table if exists {name}"))
        await conn.execute(sa.text(f"create table {name} (id integer primary key, payload text)"))
        for start in range(0, len(tokens), 20_000):
            chunk = tokens[start : start + 20_000]
            await conn.execute(
                sa.insert(raw), [{"id": start + i + 1, "payload": t} for i, t in enumerate(chunk)]
            )
        await conn.execute(sa.text(f"analyze {name}"))


async def run(quick: bool) -> list[Row]:
    rows_n, runs = (10_000, 3) if quick else (100_000, 5)
    old_key, new_key = Vault.generate_key(), Vault.generate_key()
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    multi = MultiFernet([Fernet(new_key), Fernet(old_key)])
    tokens = [old.encrypt({"i": i, "token": "x" * 40, "port": 587}) for i in range(rows_n)]

    with postgres_database() as db:
        engine = create_async_engine(db.url)
        sessions = async_sessionmaker(engine)
        ours_table = _table("bench_vault_rot_ours", new)
        try:

            async def ours() -> float:
                await _reset(engine, "bench_vault_rot_ours", tokens)
                start = time.perf_counter()
                async with sessions() as session:
                    report = await rotate_blobs(
                        session,
                        table=ours_table,
                        column="payload",
                        old=old,
                        new=new,
                        batch_size=BATCH,
                    )
                elapsed = time.perf_counter() - start
                assert report.rotated == rows_n, report
                return rows_n / elapsed

            async def baseline() -> float:
                await _reset(engine, "bench_vault_rot_base", tokens)
                select = sa.text(
                    "select id, payload from bench_vault_rot_base where id > :last "
                    "order by id limit :n"
                )
                update = sa.text("update bench_vault_rot_base set payload = :p where id = :id")
                start = time.perf_counter()
                last = 0
                while True:
                    async with engine.begin() as conn:
                        batch = (await conn.execute(select, {"last": last, "n": BATCH})).all()
                        if not batch:
                            break
                        params = [
                            {"id": i, "p": multi.rotate(t.encode()).decode()} for i, t in batch
                        ]
                        await conn.execute(update, params)
                    last = batch[-1][0]
                elapsed = time.perf_counter() - start
                return rows_n / elapsed

            ours_rps, base_rps = await interleave(ours, baseline, runs)
        finally:
            async with engine.begin() as conn:
                for name in ("bench_vault_rot_ours", "bench_vault_rot_base"):
                    await conn.execute(sa.text(f"drop table if exists {name}"))
            await engine.dispose()
    # Ratio ours/baseline: for a throughput, >1 means faster than the baseline.
    return [
        Row(
            "vault",
            f"rotate_blobs {rows_n:,} rows, batch {BATCH}",
            ours_rps,
            "rows/s",
            "hand-written keyset loop + MultiFernet.rotate",
            base_rps,
            runs,
            note="throughput: higher is better",
        )
    ]


if __name__ == "__main__":
    main(run)
