# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Repository input from users: the filter / sort allow-list, and values that the driver or
PostgreSQL would reject, each refused with db's own error naming the field and the limit."""

from __future__ import annotations

import base64
import enum
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Float, Numeric, SmallInteger, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from forktex_core.db import (
    BaseDBModel,
    DBError,
    InvalidArgument,
    InvalidCursor,
    InvalidFilter,
    InvalidSort,
    InvalidValue,
    Repository,
    get_session,
)


class Color(enum.Enum):
    red = "red"
    blue = "blue"


class InpItem(BaseDBModel):
    __tablename__ = "inp_item"
    __filter_fields__ = (
        "code", "body", "tag", "small", "count", "big", "price", "ratio", "at", "day", "color",
    )  # fmt: skip
    __sort_fields__ = ("code", "count", "at")
    code: Mapped[str] = mapped_column(String(12), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    tag: Mapped[str] = mapped_column(Text, index=True, default="")
    small: Mapped[int] = mapped_column(SmallInteger, default=0)
    count: Mapped[int] = mapped_column(default=0)
    big: Mapped[int] = mapped_column(BigInteger, default=0)
    price: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal(0))
    ratio: Mapped[float] = mapped_column(Float(precision=24), default=0.0)
    at: Mapped[datetime] = mapped_column(default=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    day: Mapped[date | None]
    color: Mapped[Color] = mapped_column(default=Color.red)
    password_hash: Mapped[str] = mapped_column(String(100), default="s3cr3t-hash")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Undeclared(BaseDBModel):
    """No allow-list anywhere: only the primary key is filterable / sortable."""

    __tablename__ = "inp_undeclared"
    name: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(100))


@pytest.fixture
async def items(db: AsyncEngine, make_tables: Any) -> list[InpItem]:
    await make_tables(InpItem, Undeclared)
    async with get_session() as session:
        made = await Repository(session, InpItem).create_many(
            [{"code": f"C-{i}", "count": i, "tag": f"t{i % 3}"} for i in range(5)]
        )
        session.add(Undeclared(name="alice", password_hash="s3cret"))
    return made


# -- the allow-list ------------------------------------------------------------------------
async def test_undeclared_model_allows_only_the_primary_key(items: list[InpItem]) -> None:
    async with get_session() as session:
        repo = Repository(session, Undeclared)
        row = (await session.scalars(select(Undeclared))).one()
        assert (await repo.list(filters={"id": row.id}, sort=["-id"])).total == 1
        for filters in ({"name": "alice"}, {"password_hash__like": "s3%"}):
            with pytest.raises(InvalidFilter, match=r"filterable fields: id \("):
                await repo.count(filters=filters)
        with pytest.raises(InvalidSort, match=r"sortable fields: id \("):
            await repo.list(sort=["password_hash"])


async def test_hidden_column_is_no_oracle(items: list[InpItem]) -> None:
    """A field that exists but is not allowed gets exactly the answer of one that does not."""
    async with get_session() as session:
        repo = Repository(session, InpItem)
        for hidden, missing in (
            ("password_hash__like", "no_such_col__like"),
            ("password_hash", "no_such_col"),
            ("password_hash__bogus", "no_such_col__bogus"),
            ("password_hash__in", "no_such_col__in"),
        ):
            errors = []
            for key in (hidden, missing):
                with pytest.raises(InvalidFilter) as caught:
                    await repo.count(filters={key: "s3%"})
                errors.append(str(caught.value).replace(repr(key), "<key>"))
            assert errors[0] == errors[1]
            assert "password_hash" not in errors[0]
        with pytest.raises(InvalidSort) as caught:
            await repo.list(sort=["password_hash"])
        assert "password_hash" not in str(caught.value).split("on 'password_hash'")[1]


async def test_allow_list_sources_and_precedence(items: list[InpItem]) -> None:
    class CodesOnly(Repository[InpItem]):
        model = InpItem
        filter_fields = ("code",)

    async with get_session() as session:
        assert await Repository(session, InpItem).count(filters={"count__gte": 3}) == 2  # model
        with pytest.raises(InvalidFilter, match="filterable fields: code "):
            await CodesOnly(session).count(filters={"count__gte": 3})  # repository wins
        assert await CodesOnly(session).count(filters={"code": "C-1"}) == 1
        narrowed = Repository(session, InpItem, filter_fields=("small",), sort_fields=("big",))
        assert await narrowed.count(filters={"small": 0}) == 5
        with pytest.raises(InvalidSort, match="sortable fields: big "):
            await narrowed.list(sort=["code"])
        everything = Repository(session, Undeclared, filter_fields="__all__", sort_fields="__all__")
        assert await everything.count(filters={"password_hash__like": "s3%"}) == 1
        assert (await everything.list(sort=["-name"])).total == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filter_fields": ("payload",)}, r"\['payload'\].*cannot be filtered or sorted"),
        ({"sort_fields": ("nope",)}, r"sort_fields names unknown columns \['nope'\]"),
        ({"filter_fields": "code"}, r"filter_fields must be a tuple of field names or '__all__'"),
        ({"filter_fields": (1,)}, r"filter_fields must hold field names"),
    ],
)
async def test_bad_allow_lists(items: list[InpItem], kwargs: dict[str, Any], match: str) -> None:
    async with get_session() as session:
        with pytest.raises(InvalidArgument, match=match):
            Repository(session, InpItem, **kwargs)


async def test_all_fields_leaves_out_opaque_types(items: list[InpItem]) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem, filter_fields="__all__")
        assert await repo.count(filters={"password_hash__like": "s3%"}) == 5
        with pytest.raises(InvalidFilter, match="unknown filter field"):
            await repo.count(filters={"payload": "x"})


# -- filter values that the driver / PostgreSQL would reject ----------------------------------
ASIA = timezone(timedelta(hours=5))
AMERICA = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        (
            {"count__gt": 2**31},
            r"filter 'count__gt': 2147483648 is out of range for integer "
            r"\(-2147483648\.\.2147483647\) \(field 'count'\)",
        ),
        ({"count": -(2**31) - 1}, r"out of range for integer"),
        ({"small": 40_000}, r"out of range for smallint \(-32768\.\.32767\)"),
        ({"big__in": [1, 2**63]}, r"out of range for bigint"),
        ({"count__gt": "9" * 5000}, r"is not an integer \(field 'count'\)"),
        ({"price__lt": "1e20"}, r"21 integer digits; the column allows 4.*field 'price'"),
        ({"price__gt": 10**5000}, r"5001 integer digits; the column allows 4"),
        ({"ratio__gt": 1e300}, r"outside the range of real"),
        ({"ratio__gt": 10**400}, r"not a number \(within float range\)"),
        ({"code": "a\ud800b"}, r"lone surrogate.*field 'code'"),
        ({"body__like": "%\udfff%"}, r"lone surrogate"),
        ({"tag__in": ["ok", "nul\x00"]}, r"NUL character.*field 'tag'"),
        ({"at__gt": datetime(1, 1, 1, tzinfo=ASIA)}, r"outside years 1\.\.9999.*field 'at'"),
        ({"at__lt": "9999-12-31T23:00:00-05:00"}, r"outside years 1\.\.9999"),
        (
            {
                "at__between": [
                    datetime(2026, 1, 1, tzinfo=UTC),
                    datetime.max.replace(tzinfo=AMERICA),
                ]
            },
            r"outside years 1\.\.9999",
        ),
        ({"color": "purple"}, r"not one of red, blue"),
        ({"count__like": "1%"}, r"'like' applies to text fields only"),
        ({"count__in": list(range(30_001))}, r"30001 values; an 'in' list holds at most 30000"),
        ({f"k{i}": 1 for i in range(201)}, r"201 conditions; at most 200"),
    ],
)
async def test_filter_values_the_database_would_reject(
    items: list[InpItem], filters: dict[str, Any], match: str
) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem)
        for call in (repo.list, repo.count, repo.exists, repo.scroll):
            with pytest.raises(InvalidFilter, match=match):
                await call(filters=filters)
        assert await repo.count() == 5  # the session is still usable: nothing was sent


async def test_in_lists_up_to_the_limit_work(items: list[InpItem]) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem, filter_fields=("id", "count"))
        ids = [uuid.uuid4() for _ in range(29_990)] + [items[0].id]
        assert await repo.count(filters={"id__in": ids, "count__in": list(range(5))}) == 1
        with pytest.raises(InvalidFilter, match="more than 30000 values"):
            await repo.count(filters={"id__in": ids, "count__in": list(range(20))})


async def test_too_many_sort_keys(items: list[InpItem]) -> None:
    async with get_session() as session:
        with pytest.raises(InvalidSort, match="sort names 17 fields; at most 16"):
            await Repository(session, InpItem).list(sort=["code"] * 17)
        with pytest.raises(InvalidSort, match="at most 16"):
            await Repository(session, InpItem).list(sort=",".join(["code"] * 40))


def _cursor(doc: Any) -> str:
    raw = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_cursor_with_deeply_nested_json(items: list[InpItem]) -> None:
    nested = _cursor("[" * 3000 + "]" * 3000)
    assert len(nested) <= 8192
    async with get_session() as session:
        with pytest.raises(InvalidCursor, match="malformed"):
            await Repository(session, InpItem).scroll(cursor=nested)


async def test_cursor_values_are_checked_against_the_column(items: list[InpItem]) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem)
        page = await repo.scroll(sort=["count"], limit=2)
        assert page.next_cursor is not None
        doc = json.loads(base64.urlsafe_b64decode(page.next_cursor + "=="))
        for bad in (2**40, "x\x00", "1" * 5000):
            doc["k"][0] = bad
            with pytest.raises(InvalidCursor, match=r"field 'count'|not an integer"):
                await repo.scroll(sort=["count"], limit=2, cursor=_cursor(doc))


# -- write values ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "match"),
    [
        (
            {"code": "x" * 13},
            r"create\(\): field 'code': text of 13 characters is longer than "
            r"the column allows \(varchar\(12\)\)",
        ),
        (
            {"tag": "é" * 1400},
            r"field 'tag': text of 2800 bytes is too long for an indexed "
            r"column \(at most 2700 bytes",
        ),
        ({"count": 2**31}, r"field 'count': 2147483648 is out of range for integer"),
        ({"small": -32769}, r"smallint"),
        ({"body": "a\x00b"}, r"field 'body': text contains a NUL character"),
        ({"body": "\udc80"}, r"lone surrogate"),
        ({"at": datetime(9999, 12, 31, 23, tzinfo=AMERICA)}, r"field 'at'.*years 1\.\.9999"),
        ({"price": Decimal("12345.67")}, r"field 'price': 12345\.67 has 5 integer digits"),
        ({"ratio": -1e39}, r"outside the range of real"),
        ({"color": "purple"}, r"not one of"),
        pytest.param(
            {"body": 7 * 10**5000},
            r"field 'body': an integer of .* more than 4300 digits",
            id="int-too-long-to-encode",
        ),
    ],
)
async def test_write_values_the_database_would_reject(
    items: list[InpItem], values: dict[str, Any], match: str
) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem)
        with pytest.raises(InvalidValue, match=match):
            await repo.create(code="new", **{k: v for k, v in values.items() if k != "code"}) if (
                "code" not in values
            ) else await repo.create(**values)
        with pytest.raises(InvalidValue, match=match.replace("create", "update")):
            await repo.update(items[0].id, **values)
        with pytest.raises(InvalidValue):
            await repo.create_many([{"code": "ok-1"}, {"code": "ok-2", **values}])
        assert await repo.count() == 5  # nothing was written


async def test_values_postgres_rejects_are_translated(items: list[InpItem]) -> None:
    with pytest.raises(InvalidValue, match=r"PostgreSQL rejected a value: invalid input") as e:
        async with get_session() as session:
            await Repository(session, InpItem).create(code="typed", count="not-a-number")
    assert "not-a-number" not in str(e.value)
    with pytest.raises(InvalidValue, match=r"PostgreSQL rejected a value: .*SQLSTATE 22"):
        async with get_session() as session:
            await Repository(session, InpItem).create(code="nan", payload={"x": float("nan")})


async def test_bad_ids(items: list[InpItem]) -> None:
    async with get_session() as session:
        repo = Repository(session, InpItem)
        for bad in ("9" * 50, 2**200, "\ud800", None):
            with pytest.raises(InvalidArgument, match="not a valid value for primary key 'id'"):
                await repo.get(bad)


async def test_every_error_is_a_db_error() -> None:
    assert issubclass(InvalidValue, InvalidArgument) and issubclass(InvalidValue, DBError)
    assert issubclass(InvalidValue, ValueError)
