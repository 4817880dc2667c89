# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Property: a filter dict / sort / cursor built from arbitrary user strings and numbers
either works or raises db's own validation error — never a driver, PostgreSQL or Python
error — on every Repository read."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from forktex_core.db import OPERATORS, DBError, ForktexSession, Repository

from .test_db_repository_input import InpItem, Undeclared

# Hypothesis writes caches as soon as tests are collected: into a directory of our own,
# removed when the test process ends (nothing in the work tree, nothing left in /tmp).
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-db-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)

FIELDS = [c.key for c in InpItem.__table__.columns]
KEYS = FIELDS + [f"{f}__{op}" for f in FIELDS for op in OPERATORS]

_offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=10),
    st.decimals(allow_nan=True),
    st.datetimes(timezones=st.none() | st.builds(timezone, _offsets)),
    st.dates(),
    st.uuids(),
    st.sampled_from(
        [
            2**31,
            -(2**63) - 1,
            10**5000,
            "9" * 5000,
            "1e400",
            "a\x00b",
            "\ud800",
            "\udfff%",
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
            "0001-01-01T00:00:00+14:00",
            "NaN",
            "Infinity",
            float("inf"),
            "purple",
            "red",
            "' OR 1=1 --",
        ]
    ),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=6),
    st.tuples(SCALARS, SCALARS),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
    st.sampled_from([list(range(40_000)), [[[[1]]]], {"$gt": 1}]),
)
FILTERS = st.one_of(
    # mostly well-formed keys, so the values reach the columns' checks
    st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=25)), VALUES, max_size=6),
    st.dictionaries(st.integers(), VALUES, max_size=1),
)
SORT_ITEMS = st.one_of(
    st.sampled_from(FIELDS + [f"-{f}" for f in FIELDS] + ["+code", "-", ""]), st.text(max_size=12)
)
SORTS = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.lists(SORT_ITEMS, max_size=20),
    st.lists(st.integers(), max_size=2),
)
CURSORS = st.one_of(
    st.none(),
    st.text(max_size=60),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=80
    ),
    st.sampled_from(
        ["W1tbW1tbW1td", "e30", "eyJ2IjoxfQ", "eyJ2IjoxLCJzIjpbXSwiZiI6IiIsImsiOltdfQ"]
    ),
)


@pytest.fixture(scope="module")
def fuzz_world(forktex_new_database: Any) -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    """Its own database, loop and engine: hypothesis drives a sync test."""
    database = forktex_new_database()
    loop = asyncio.new_event_loop()
    engine: AsyncEngine = create_async_engine(database.url, pool_size=2)
    maker = async_sessionmaker(engine, sync_session_class=ForktexSession, expire_on_commit=False)

    async def setup() -> None:
        async with engine.begin() as conn:
            tables = [InpItem.__table__, Undeclared.__table__]
            await conn.run_sync(lambda sync: InpItem.metadata.create_all(sync, tables=tables))
        async with maker() as session, session.begin():
            await Repository(session, InpItem).create_many(
                [
                    {"code": f"F-{i}", "count": i, "at": datetime(2026, 1, 1, tzinfo=UTC)}
                    for i in range(30)
                ]
            )

    loop.run_until_complete(setup())
    yield loop, maker
    loop.run_until_complete(engine.dispose())
    loop.close()


class Wide(Repository[InpItem]):
    """Every scalar column filterable and sortable: the fuzzer reaches every coercion."""

    model = InpItem
    filter_fields = tuple(f for f in FIELDS if f != "payload")
    sort_fields = filter_fields


async def _reads(maker: Any, filters: Any, sort: Any, cursor: Any) -> list[str]:
    outcomes: list[str] = []
    calls = (
        lambda s: Wide(s).count(filters=filters),  # values reach the database unhindered
        lambda s: Wide(s).list(filters=filters, sort=sort, limit=5),
        lambda s: Wide(s).scroll(filters=filters, sort=sort, limit=5, cursor=cursor),
        lambda s: Repository(s, InpItem).list(filters=filters, sort=sort, limit=5),
    )
    for call in calls:
        session: AsyncSession
        async with maker() as session:
            try:
                await call(session)
                outcomes.append("ok")
            except DBError as exc:
                assert str(exc)  # an explanation, never empty
                outcomes.append(type(exc).__name__)
    return outcomes


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(filters=FILTERS, sort=SORTS, cursor=CURSORS)
def test_user_filters_work_or_raise_our_own_error(
    fuzz_world: tuple[asyncio.AbstractEventLoop, Any], filters: Any, sort: Any, cursor: Any
) -> None:
    loop, maker = fuzz_world
    outcomes = loop.run_until_complete(_reads(maker, filters, sort, cursor))
    assert len(outcomes) == 4


@settings(max_examples=100, deadline=None, database=None)
@given(values=st.dictionaries(st.sampled_from(FIELDS), SCALARS, max_size=5))
def test_user_values_for_writes_work_or_raise_our_own_error(
    fuzz_world: tuple[asyncio.AbstractEventLoop, Any], values: dict[str, Any]
) -> None:
    loop, maker = fuzz_world
    values.pop("id", None)

    async def write() -> None:
        async with maker() as session:
            try:
                await Repository(session, InpItem).create(**{"code": "fz", **values})
            except DBError:
                pass
            except IntegrityError:
                pass  # constraint violations (NOT NULL, unique) stay SQLAlchemy's own
            finally:
                await session.rollback()

    loop.run_until_complete(write())
