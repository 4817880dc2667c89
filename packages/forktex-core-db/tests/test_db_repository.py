# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Repository[Model]: CRUD, every filter operator, sort, list pages, keyset scroll, bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Numeric, String, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from forktex_core.db import (
    OPERATORS,
    BaseDBModel,
    CursorPage,
    InvalidArgument,
    InvalidCursor,
    InvalidFilter,
    InvalidSort,
    NotFound,
    Page,
    Repository,
    get_session,
)


class RepInvoice(BaseDBModel):
    __tablename__ = "rep_invoice"
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    note: Mapped[str | None] = mapped_column(String(50))
    paid: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[datetime]
    due: Mapped[date | None]
    bucket: Mapped[int] = mapped_column(default=0)


class Invoices(Repository[RepInvoice]):
    """Trusted, internal use: every column on purpose."""

    model = RepInvoice
    filter_fields = "__all__"
    sort_fields = "__all__"


class PublicInvoices(Repository[RepInvoice]):
    model = RepInvoice
    filter_fields = ("status", "amount")
    sort_fields = ("amount",)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ("draft", "sent", "paid", "void")


def _row(i: int) -> dict[str, Any]:
    return {
        "number": f"INV-{i:03d}",
        "status": STATUSES[i % 4],
        "amount": i * 10,
        "price": Decimal(i) / 4,
        "note": None if i % 3 == 0 else f"Note {i} {'urgent' if i % 5 == 0 else 'normal'}",
        "paid": i % 2 == 0,
        "issued_at": T0 + timedelta(days=i),
        "due": None if i % 4 == 0 else date(2026, 2, 1) + timedelta(days=i),
        "bucket": i % 3,
    }


ROWS = [_row(i) for i in range(1, 25)]


@pytest.fixture
async def invoices(db: AsyncEngine, make_tables: Any) -> list[RepInvoice]:
    await make_tables(RepInvoice)
    async with get_session() as session:
        return await Invoices(session).create_many(ROWS)


def _numbers(items: list[RepInvoice]) -> list[str]:
    return [i.number for i in items]


def _expect(pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return sorted(r["number"] for r in ROWS if pred(r))


# (filters, python predicate) — one case per operator at least, plus coercions.
FILTER_CASES: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ({"status": "paid"}, lambda r: r["status"] == "paid"),
    ({"status__eq": "sent"}, lambda r: r["status"] == "sent"),
    ({"note": None}, lambda r: r["note"] is None),
    ({"status__ne": "paid"}, lambda r: r["status"] != "paid"),
    ({"note__ne": "Note 1 normal"}, lambda r: r["note"] != "Note 1 normal"),  # keeps NULLs
    ({"note__ne": None}, lambda r: r["note"] is not None),
    ({"amount__lt": 50}, lambda r: r["amount"] < 50),
    ({"amount__lte": 50}, lambda r: r["amount"] <= 50),
    ({"amount__gt": 200}, lambda r: r["amount"] > 200),
    ({"amount__gte": "200"}, lambda r: r["amount"] >= 200),  # string coerced to int
    ({"price__gte": "2.5"}, lambda r: r["price"] >= Decimal("2.5")),
    ({"status__in": ["draft", "void"]}, lambda r: r["status"] in ("draft", "void")),
    ({"status__in": []}, lambda r: False),
    ({"status__not_in": ("draft", "void")}, lambda r: r["status"] not in ("draft", "void")),
    ({"note__not_in": ["Note 1 normal"]}, lambda r: r["note"] != "Note 1 normal"),
    ({"note__like": "%urgent"}, lambda r: (r["note"] or "").endswith("urgent")),
    ({"note__like": "%URGENT"}, lambda r: False),
    ({"note__ilike": "%URGENT"}, lambda r: (r["note"] or "").endswith("urgent")),
    ({"note__is_null": True}, lambda r: r["note"] is None),
    ({"due__is_null": False}, lambda r: r["due"] is not None),
    ({"amount__between": [30, 60]}, lambda r: 30 <= r["amount"] <= 60),
    (
        {"issued_at__between": [(T0 + timedelta(days=3)).isoformat(), T0 + timedelta(days=5)]},
        lambda r: T0 + timedelta(days=3) <= r["issued_at"] <= T0 + timedelta(days=5),
    ),
    ({"due__lt": "2026-02-05"}, lambda r: r["due"] is not None and r["due"] < date(2026, 2, 5)),
    ({"paid": "true"}, lambda r: r["paid"]),
    ({"paid": False, "amount__gt": 100}, lambda r: not r["paid"] and r["amount"] > 100),
    (
        {"status": "paid", "amount__gte": 100},
        lambda r: r["status"] == "paid" and r["amount"] >= 100,
    ),
]


def test_every_operator_has_a_case() -> None:
    used = {"eq"}
    for filters, _ in FILTER_CASES:
        for key in filters:
            if "__" in key:
                used.add(key.rpartition("__")[2])
    assert used == set(OPERATORS)


@pytest.mark.parametrize(("filters", "pred"), FILTER_CASES, ids=lambda v: str(v)[:40])
async def test_filter_operators(
    invoices: list[RepInvoice], filters: dict[str, Any], pred: Callable[[dict[str, Any]], bool]
) -> None:
    expected = _expect(pred)
    async with get_session() as session:
        repo = Invoices(session)
        page = await repo.list(filters=filters, sort=["number"], limit=100)
        assert _numbers(page.items) == expected
        assert page.total == len(expected)
        assert await repo.count(filters=filters) == len(expected)
        assert await repo.exists(filters=filters) is bool(expected)


async def test_id_filter_accepts_uuid_string(invoices: list[RepInvoice]) -> None:
    target = invoices[4]
    async with get_session() as session:
        page = await Invoices(session).list(filters={"id": str(target.id)})
        assert _numbers(page.items) == [target.number]
        page = await Invoices(session).list(filters={"id__in": [target.id, str(invoices[0].id)]})
        assert page.total == 2


async def test_injection_attempts_are_plain_values(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        evil = "paid' OR '1'='1"
        assert (await repo.list(filters={"status": evil})).total == 0
        assert (await repo.list(filters={"note__like": "%' OR 1=1 --"})).total == 0
        assert await repo.count() == len(ROWS)  # table intact


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        ({"nope": 1}, r"unknown filter field in 'nope'.*filterable fields: amount, bucket"),
        ({"amount__bigger": 1}, r"unknown filter operator 'bigger'.*allowed operators: eq, ne"),
        ({"nope__gte": 1}, r"unknown filter field in 'nope__gte'"),
        ({"amount__gte": None}, r"None cannot be compared.*amount__is_null"),
        ({"amount__gte": "ten"}, r"'ten' is not an integer"),
        ({"amount": True}, r"True is not an integer"),
        ({"id": "xyz"}, r"'xyz' is not a UUID"),
        ({"issued_at__gt": "yesterday"}, r"not a datetime"),
        ({"due": "2026-13-01"}, r"not a date"),
        ({"price__lt": "abc"}, r"not a decimal"),
        ({"price__lt": "NaN"}, r"not a decimal"),
        ({"paid": "maybe"}, r"true or false"),
        ({"status": 5}, r"5 is not a string"),
        ({"status__in": "paid"}, r"expects a list"),
        ({"status__in": 3}, r"expects a list"),
        ({"status__in": ["ok", 1]}, r"1 is not a string"),
        ({"note__like": 5}, r"expects a pattern string"),
        ({"note__is_null": "yes"}, r"expects True or False"),
        ({"amount__between": [1]}, r"expects a \[low, high\] pair"),
        ({"amount__between": "1,2"}, r"expects a \[low, high\] pair"),
        ({"amount__between": [1, None]}, r"bounds cannot be None"),
        ({1: "x"}, r"filter keys must be strings"),
    ],
)
async def test_bad_filters(invoices: list[RepInvoice], filters: Any, match: str) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        for call in (repo.list, repo.count, repo.exists, repo.scroll):
            with pytest.raises(InvalidFilter, match=match):
                await call(filters=filters)


async def test_filters_must_be_a_mapping(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        with pytest.raises(InvalidFilter, match="filters must be a mapping"):
            await Invoices(session).list(filters=[("status", "paid")])  # type: ignore[arg-type]


async def test_sort_and_pagination(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        page = await repo.list(sort=["-issued_at"], limit=5)
        assert _numbers(page.items) == [f"INV-{i:03d}" for i in range(24, 19, -1)]
        assert (page.total, page.offset, page.limit, page.has_more) == (24, 0, 5, True)
        page = await repo.list(sort="bucket,-amount", offset=2, limit=3)
        ordered = sorted(ROWS, key=lambda r: (r["bucket"], -r["amount"]))
        assert _numbers(page.items) == [r["number"] for r in ordered[2:5]]
        last = await repo.list(sort=["amount"], offset=20, limit=10)
        assert len(last.items) == 4 and last.total == 24 and not last.has_more
        past = await repo.list(sort=["amount"], offset=100, limit=10)
        assert past.items == [] and past.total == 24  # total still right past the end
        none = await repo.list(filters={"status": "none"})
        assert none.items == [] and none.total == 0
        # NULLs sort last in both directions
        asc = await repo.list(sort=["note"], limit=100)
        desc = await repo.list(sort=["-note"], limit=100)
        assert asc.items[-1].note is None and desc.items[-1].note is None
        assert asc.items[0].note is not None and desc.items[0].note is not None


@pytest.mark.parametrize(
    ("sort", "match"),
    [
        (["-nope"], r"cannot sort RepInvoice on '-nope'; sortable fields: amount"),
        (["amount", "-amount"], r"appears twice"),
        ([1], r"sort must be a list of field names"),
        (5, r"sort must be a list"),
    ],
)
async def test_bad_sort(invoices: list[RepInvoice], sort: Any, match: str) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        with pytest.raises(InvalidSort, match=match):
            await repo.list(sort=sort)
        with pytest.raises(InvalidSort, match=match):
            await repo.scroll(sort=sort)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, r"limit must be an int from 1 to 1000, got 0"),
        ({"limit": 1001}, r"limit must be an int from 1 to 1000"),
        ({"limit": "10"}, r"limit must be an int"),
        ({"limit": True}, r"limit must be an int"),
        ({"offset": -1}, r"offset must be an int >= 0, got -1"),
        ({"offset": 1.5}, r"offset must be an int >= 0"),
    ],
)
async def test_bad_page_arguments(
    invoices: list[RepInvoice], kwargs: dict[str, Any], match: str
) -> None:
    async with get_session() as session:
        with pytest.raises(InvalidArgument, match=match):
            await Invoices(session).list(**kwargs)
        if "limit" in kwargs:
            with pytest.raises(InvalidArgument, match=match):
                await Invoices(session).scroll(**kwargs)


async def test_restricted_fields(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = PublicInvoices(session)
        assert (await repo.list(filters={"status": "paid"}, sort=["-amount"])).total == 6
        with pytest.raises(InvalidFilter, match=r"unknown filter field in 'note'.*amount, status"):
            await repo.list(filters={"note": "x"})
        with pytest.raises(InvalidSort, match=r"sortable fields: amount \("):
            await repo.list(sort=["status"])

    class Broken(Repository[RepInvoice]):
        model = RepInvoice
        filter_fields = ("status", "secret")

    async with get_session() as session:
        with pytest.raises(
            InvalidArgument, match=r"filter_fields names unknown columns \['secret'\]"
        ):
            Broken(session)


async def test_crud_round_trip(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        created = await repo.create(
            number="INV-900", status="draft", amount=5, price=Decimal("1.25"), issued_at=T0
        )
        assert created.id.version == 7 and created.created_at is not None
        assert (await repo.get(created.id)) is created
        assert (await repo.get(str(created.id))) is created
        updated = await repo.update(created.id, status="sent", note="hello")
        assert updated is created and updated.status == "sent"
        assert (await repo.update(created, amount=6)).amount == 6
    async with get_session() as session:
        repo = Invoices(session)
        fresh = await repo.get(created.id)
        assert (fresh.status, fresh.note, fresh.amount) == ("sent", "hello", 6)
        await repo.delete(created.id)
        assert await repo.get_or_none(created.id) is None
        other = await repo.get(invoices[0].id)
        await repo.delete(other)
    async with get_session() as session:
        repo = Invoices(session)
        assert await repo.get_or_none(invoices[0].id) is None
        assert await repo.count() == len(ROWS) - 1


async def test_not_found_and_bad_ids(invoices: list[RepInvoice]) -> None:
    missing = uuid.uuid4()
    async with get_session() as session:
        repo = Invoices(session)
        with pytest.raises(NotFound, match=f"RepInvoice with id=.*{missing}.* not found"):
            await repo.get(missing)
        with pytest.raises(NotFound):
            await repo.update(missing, status="x")
        with pytest.raises(NotFound):
            await repo.delete(missing)
        for bad in ("nope", 12, None, 1.5):
            with pytest.raises(InvalidArgument, match=r"RepInvoice id .* is not a valid value"):
                await repo.get(bad)
            with pytest.raises(InvalidArgument):
                await repo.get_or_none(bad)


async def test_bad_write_arguments(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        with pytest.raises(InvalidArgument, match=r"create\(\): unknown field\(s\) \['colour'\]"):
            await repo.create(number="X", colour="red")
        with pytest.raises(InvalidArgument, match=r"update\(\): unknown field"):
            await repo.update(invoices[0].id, colour="red")
        with pytest.raises(InvalidArgument, match=r"primary key 'id' .* cannot be changed"):
            await repo.update(invoices[0].id, id=uuid.uuid4())
        with pytest.raises(InvalidArgument, match=r"create_many\(\) takes an iterable"):
            await repo.create_many({"number": "X"})
        with pytest.raises(InvalidArgument, match=r"create_many\(\) takes an iterable"):
            await repo.create_many(5)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match=r"row 1 must be a mapping"):
            await repo.create_many([{"number": "X"}, "Y"])  # type: ignore[list-item]
        with pytest.raises(InvalidArgument, match=r"create_many\(\) row 0: unknown field"):
            await repo.create_many([{"nope": 1}])


async def test_create_many_is_all_or_nothing(invoices: list[RepInvoice]) -> None:
    good = {**_row(50), "number": "INV-050"}
    dup = {**_row(51), "number": ROWS[0]["number"]}  # unique violation
    with pytest.raises(Exception, match="duplicate key"):
        async with get_session() as session:
            await Invoices(session).create_many([good, dup])
    async with get_session() as session:
        assert not await Invoices(session).exists(filters={"number": "INV-050"})


async def test_repository_construction_errors(db: AsyncEngine) -> None:
    async with get_session() as session:
        with pytest.raises(InvalidArgument, match="session must be an sqlalchemy AsyncSession"):
            Repository(object(), RepInvoice)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="needs a model"):
            Repository(session)
        with pytest.raises(InvalidArgument, match="model must be a mapped SQLAlchemy class"):
            Repository(session, "RepInvoice")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="model must be a mapped SQLAlchemy class"):
            Repository(session, dict)
        assert repr(Invoices(session)) == "<Invoices of RepInvoice>"


# -- scroll ---------------------------------------------------------------------------------
async def _scroll_all(
    sort: list[str], limit: int, filters: dict[str, Any] | None = None
) -> list[RepInvoice]:
    seen: list[RepInvoice] = []
    cursor: str | None = None
    while True:
        async with get_session() as session:  # a new session per page, like an API
            page = await Invoices(session).scroll(
                filters=filters, sort=sort, limit=limit, cursor=cursor
            )
        assert isinstance(page, CursorPage)
        seen.extend(page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "sort",
    [["number"], ["-issued_at"], ["bucket"], ["-bucket", "amount"], ["note"], ["-due", "-note"]],
)
async def test_scroll_matches_list_order(invoices: list[RepInvoice], sort: list[str]) -> None:
    async with get_session() as session:
        everything = await Invoices(session).list(sort=sort, limit=100)
    scrolled = await _scroll_all(sort, limit=5)
    assert _numbers(scrolled) == _numbers(everything.items)
    filtered = await _scroll_all(sort, limit=4, filters={"paid": True})
    assert _numbers(filtered) == [i.number for i in everything.items if i.paid]


async def test_scroll_few_thousand_rows_with_concurrent_inserts(
    db: AsyncEngine, make_tables: Any
) -> None:
    await make_tables(RepInvoice)
    rng = random.Random(7)

    def row(n: int) -> dict[str, Any]:
        return {
            "number": f"S{n}",
            "status": "sent",
            "amount": rng.randint(0, 50),  # many ties
            "price": Decimal(1),
            "issued_at": T0 + timedelta(minutes=rng.randint(0, 500)),
            "bucket": rng.randint(0, 9),
        }

    async with get_session() as session:
        await Invoices(session).create_many([row(n) for n in range(3000)])
    async with get_session() as session:
        original = {i.id for i in (await session.scalars(select(RepInvoice))).all()}
    assert len(original) == 3000

    stop = asyncio.Event()
    inserted = 0

    async def writer() -> None:
        nonlocal inserted
        while not stop.is_set():
            batch = [row(10_000 + inserted + k) for k in range(7)]
            inserted += 7
            async with get_session() as session:
                await Invoices(session).create_many(batch)
            await asyncio.sleep(0)

    for sort in (["bucket", "-amount"], ["-issued_at"]):
        task = asyncio.create_task(writer())
        try:
            seen_ids: list[uuid.UUID] = []
            cursor: str | None = None
            while True:
                async with get_session() as session:
                    page = await Invoices(session).scroll(sort=sort, limit=97, cursor=cursor)
                seen_ids.extend(i.id for i in page.items)
                await asyncio.sleep(0)  # let the writer in between pages
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        finally:
            stop.set()
            await task
            stop.clear()
        assert len(seen_ids) == len(set(seen_ids)), f"duplicates while scrolling {sort}"
        assert original <= set(seen_ids), f"rows skipped while scrolling {sort}"
    assert inserted > 0  # the writer really ran concurrently


async def test_cursor_tampering_and_misuse(invoices: list[RepInvoice]) -> None:
    async with get_session() as session:
        repo = Invoices(session)
        page = await repo.scroll(sort=["-amount"], limit=3, filters={"paid": True})
        cursor = page.next_cursor
        assert cursor is not None
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

        def enc(doc: Any) -> str:
            return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()

        cases: list[tuple[Any, str]] = [
            ("garbage!!", "malformed"),
            (cursor[:-5], "malformed"),
            ("", "must be the non-empty string"),
            (42, "must be the non-empty string"),
            ("x" * 9000, "must be the non-empty string"),
            (enc([1, 2]), "wrong shape or version"),
            (enc({**raw, "v": 99}), "wrong shape or version"),
            (enc({**raw, "k": raw["k"][:1]}), "wrong number of sort values"),
            (enc({**raw, "k": ["lots", raw["k"][1]]}), r"value for 'amount' is invalid"),
            (enc({**raw, "k": [raw["k"][0], "not-a-uuid"]}), r"value for 'id' is invalid"),
            (enc({**raw, "k": [None, raw["k"][1]]}), r"NULL for non-nullable 'amount'"),
            (enc({**raw, "f": "0" * 16}), "made for another query"),
        ]
        for bad, match in cases:
            with pytest.raises(InvalidCursor, match=match):
                await repo.scroll(sort=["-amount"], limit=3, filters={"paid": True}, cursor=bad)
        # the right cursor with another sort or other filters is refused
        with pytest.raises(InvalidCursor, match="made for another query"):
            await repo.scroll(sort=["amount"], limit=3, filters={"paid": True}, cursor=cursor)
        with pytest.raises(InvalidCursor, match="made for another query"):
            await repo.scroll(sort=["-amount"], limit=3, filters={"paid": False}, cursor=cursor)
        # and the untouched cursor works
        nxt = await repo.scroll(sort=["-amount"], limit=3, filters={"paid": True}, cursor=cursor)
        assert _numbers(nxt.items) == ["INV-018", "INV-016", "INV-014"]


def test_page_objects() -> None:
    page: Page[int] = Page(items=[1, 2], total=5, offset=0, limit=2)
    assert page.has_more
    assert not Page(items=[5], total=5, offset=4, limit=2).has_more
