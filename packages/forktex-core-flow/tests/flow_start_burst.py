# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""A process that starts one run many times at once with one dedup key, or holds a
transactional start open until it is killed (test code: it reads its arguments and prints
the run ids it got)."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from forktex_core.flow import FlowClient


async def burst(url: str, count: int, key: str) -> None:
    client = FlowClient(database_url=url)
    await client.connect()
    ids = await asyncio.gather(
        *(client.start("dedup.job", {"n": i}, dedup_key=key) for i in range(count))
    )
    print("\n".join(str(i) for i in ids), flush=True)
    await client.close()


async def hold_open(url: str) -> None:
    client = FlowClient(database_url=url)
    engine = create_async_engine(url)
    async with AsyncSession(engine) as session, session.begin():
        run_id = await client.start("tx.job", {"n": 1}, session=session)
        print(run_id, flush=True)
        await asyncio.sleep(3600)  # killed here, with the transaction open


if __name__ == "__main__":
    if sys.argv[1] == "burst":
        asyncio.run(burst(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    else:
        asyncio.run(hold_open(sys.argv[2]))
