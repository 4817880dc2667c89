# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Filters on the fields of linked rows (``customer.country``) on Postgres and
MemoryRegister alike: one and many references, inside OR / NOT groups, with every
terminal method, after the linked register changes, per tenant, and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Count,
    DataError,
    Field,
    InvalidQuery,
    InvalidValue,
    MemoryRegister,
    Q,
    Register,
    RegisterSource,
    RowQuery,
    Sum,
)

CUSTOMERS = [Field("name", "text"), Field("country", "text"), Field("vip", "boolean")]
PEOPLE = [("Acme", "DE", True), ("Bistro", "FR", False), ("Café", None, None)]


def _orders() -> list[Field]:
    return [
        Field("n", "integer"),
        Field("customer", "reference", target="customers"),
        Field("cc", "reference", target="customers", many=True),
    ]


async def _sources(tenant: uuid.UUID) -> tuple[RegisterSource, RegisterSource]:
    customers = await Register.create("customers", tenant_id=tenant, fields=CUSTOMERS)
    people = await customers.insert_many(
        [{"name": n, "country": c, "vip": v} for n, c, v in PEOPLE]
    )
    acme, bistro, cafe = (p.id for p in people)
    rows: list[dict[str, Any]] = [
        {"n": 1, "customer": acme, "cc": [bistro]},
        {"n": 2, "customer": bistro, "cc": [acme, cafe]},
        {"n": 3, "customer": cafe, "cc": []},
        {"n": 4},
    ]
    orders = await Register.create("orders", tenant_id=tenant, fields=_orders())
    written = await orders.insert_many(rows)
    memory = MemoryRegister(
        "orders",
        _orders(),
        rows=[{"id": w.id, **r} for w, r in zip(written, rows, strict=True)],
        targets={
            "customers": MemoryRegister(
                "customers", CUSTOMERS, rows=[{"id": p.id, **p.values} for p in people]
            )
        },
    )
    return orders, memory


CASES: list[tuple[Any, list[int]]] = [
    ({"customer.country": "DE"}, [1]),
    ({"customer__country": "FR"}, [2]),
    ({"customer.country__ne": "DE"}, [2, 3]),  # a linked row without a country is "not DE"
    ({"customer.country__is_null": True}, [3]),
    ({"customer.vip": True}, [1]),
    ({"customer.name__icontains": "CAF"}, [3]),
    ({"cc.country": "DE"}, [2]),
    ({"cc__name__starts_with": "B"}, [1]),
    (Q(customer__country="DE") | Q(cc__country="DE"), [1, 2]),
    (~Q(customer__country="DE"), [2, 3, 4]),  # rows without a customer too
    (Q(customer__country__in=["DE", "FR"]) & Q(n__gte=2), [2]),
]


@pytest.mark.parametrize(("where", "expected"), CASES)
async def test_filters_on_linked_rows(
    engine: AsyncEngine, tenant: uuid.UUID, where: Any, expected: list[int]
) -> None:
    for source in await _sources(tenant):
        query = RowQuery(source).where(where).order_by("n")
        assert [r["n"] for r in await query.all()] == expected, source
        assert await query.count() == len(expected)
        page = await query.scroll(page_size=1)
        assert [r["n"] for r in page.items] == expected[:1]
        [total] = await query.aggregate(rows=Count())
        assert total["rows"] == len(expected)


async def test_writes_through_linked_filters(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    for source in await _sources(tenant):
        assert await RowQuery(source).where(customer__country="FR").update({"n": 20}) == 1
        assert await RowQuery(source).where(cc__country="DE").archive() == 1
        assert [r["n"] for r in await RowQuery(source).order_by("n").all()] == [1, 3, 4]
        assert await RowQuery(source).archived().where(customer__name="Bistro").count() == 1


async def test_the_linked_register_changing_is_seen(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    orders, _ = await _sources(tenant)
    query = RowQuery(orders).where(customer__vip=True)
    assert await query.count() == 1
    admin = Register.load("customers", tenant_id=tenant)
    await admin.change_field_type("vip", "text")  # the field moves to a new storage key
    with pytest.raises(InvalidValue, match=r"'vip' \(text\) cannot take True"):
        await query.count()  # the condition is validated against the new type
    assert await RowQuery(orders).where(customer__vip="true").count() == 1


async def test_linked_rows_of_another_tenant_stay_out(
    engine: AsyncEngine, tenant: uuid.UUID
) -> None:
    orders, _ = await _sources(tenant)
    theirs, _ = await _sources(uuid.uuid4())  # same names, same countries
    assert await RowQuery(orders).where(customer__country="DE").count() == 1
    assert await RowQuery(theirs).where(customer__country="DE").count() == 1


async def test_bad_linked_filters(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    for source in await _sources(tenant):
        with pytest.raises(InvalidQuery, match=r"no field 'colour'.*'country'"):
            await RowQuery(source).where(customer__colour="red").count()
        with pytest.raises(InvalidQuery, match="unknown operator 'near'"):
            await RowQuery(source).where(**{"customer.country__near": "DE"}).count()
        with pytest.raises(InvalidQuery, match="does not apply"):
            await RowQuery(source).where(customer__vip__contains="x").count()
        with pytest.raises(InvalidQuery, match="unknown operator 'country'"):
            await RowQuery(source).where(n__country="DE").count()  # n is no reference
    lonely = MemoryRegister("orders", _orders(), rows=[{"n": 1}])  # no targets given
    with pytest.raises(DataError, match="targets="):
        await RowQuery(lonely).where(customer__country="DE").count()


async def test_two_references_deep_is_refused(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    await _sources(tenant)
    lines = await Register.create(
        "lines",
        tenant_id=tenant,
        fields=[Field("order", "reference", target="orders")],
    )
    with pytest.raises(InvalidQuery, match="two references"):
        await RowQuery(lines).where(**{"order.customer.country": "DE"}).count()


async def _customers_of(source: RegisterSource, tenant: uuid.UUID) -> RegisterSource:
    stored = Register.load("customers", tenant_id=tenant)
    if isinstance(source, Register):
        return stored
    rows = await RowQuery(stored).all()  # the same customers, held in memory
    return MemoryRegister("customers", CUSTOMERS, rows=[{"id": r.id, **r.values} for r in rows])


@pytest.mark.parametrize(
    ("orders_where", "via", "expected"),
    [
        ({}, "customer", ["Acme", "Bistro", "Café"]),
        ({"n__gte": 2}, "customer", ["Bistro", "Café"]),
        ({"n": 1}, "cc", ["Bistro"]),
        ({"n__gte": 1}, "cc", ["Acme", "Bistro", "Café"]),
        ({"n": 4}, "customer", []),  # the order without a customer links to nobody
    ],
)
async def test_linked_from_is_the_reverse_of_a_link(
    engine: AsyncEngine, tenant: uuid.UUID, orders_where: Any, via: str, expected: list[str]
) -> None:
    for source in await _sources(tenant):
        customers = await _customers_of(source, tenant)
        orders = RowQuery(source).where(orders_where)
        query = RowQuery(customers).linked_from(orders, via).order_by("name")
        assert [r["name"] for r in await query.all()] == expected, source
        assert await query.count() == len(expected)
    # mixed sources: in-memory orders selecting stored customers
    _, orders_mem = await _sources(other := uuid.uuid4())
    customers_pg = Register.load("customers", tenant_id=other)
    mixed = RowQuery(customers_pg).linked_from(RowQuery(orders_mem).where(n=1), "customer")
    assert [r["name"] for r in await mixed.all()] == ["Acme"]


async def test_linked_from_bad_input(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    orders, _ = await _sources(tenant)
    customers = Register.load("customers", tenant_id=tenant)
    with pytest.raises(InvalidQuery, match=r"'n' is not one; such fields: 'customer', 'cc'"):
        await RowQuery(customers).linked_from(RowQuery(orders), "n").count()
    with pytest.raises(InvalidQuery, match="no field 'nope'"):
        await RowQuery(customers).linked_from(RowQuery(orders), "nope").count()
    with pytest.raises(InvalidQuery, match="pointing to 'orders'"):
        await RowQuery(orders).linked_from(RowQuery(orders), "customer").count()
    with pytest.raises(InvalidQuery, match="takes a RowQuery"):
        RowQuery(customers).linked_from(orders, "customer")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (("customer.name", "n"), [1, 2, 3, 4]),  # Acme, Bistro, Café, no customer (NULL last)
        (("-customer.name",), [4, 3, 2, 1]),
        (("customer.country", "-n"), [1, 2, 4, 3]),  # DE, FR, then NULLs by -n
        (("-customer.vip", "n"), [3, 4, 1, 2]),  # NULL first descending, True > False
    ],
)
async def test_sort_by_a_linked_rows_field(
    engine: AsyncEngine, tenant: uuid.UUID, order: tuple[str, ...], expected: list[int]
) -> None:
    for source in await _sources(tenant):
        query = RowQuery(source).order_by(*order)
        assert [r["n"] for r in await query.all()] == expected, source
        page = await query.scroll(page_size=1)
        seen = [r["n"] for r in page.items]
        while page.next_cursor:
            page = await query.scroll(page_size=1, cursor=page.next_cursor)
            seen += [r["n"] for r in page.items]
        assert seen == expected
        first = (await query.scroll(page_size=1)).items[0]
        if first["customer"] is not None:  # the linked row comes along
            assert first.included["customer"].id == first["customer"]


async def test_bad_linked_sorts(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    for source in await _sources(tenant):
        with pytest.raises(InvalidQuery, match="links to many rows"):
            await RowQuery(source).order_by("cc.name").all()
        with pytest.raises(InvalidQuery, match="no field 'colour'"):
            await RowQuery(source).order_by("customer.colour").all()
        with pytest.raises(InvalidQuery, match=r"names 'customer\.name' twice"):
            await RowQuery(source).order_by("customer.name", "-customer.name").all()
        with pytest.raises(InvalidQuery, match=r"no field 'n\.x'"):
            await RowQuery(source).order_by("n.x").all()  # n is no reference
    orders, _ = await _sources(uuid.uuid4())
    page = await RowQuery(orders).order_by("customer.name").scroll(page_size=1)
    assert page.next_cursor is not None
    other = RowQuery(orders).order_by("customer.country")
    with pytest.raises(InvalidQuery, match="another query"):
        await other.scroll(page_size=1, cursor=page.next_cursor)


async def test_lookups_and_rollups(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    for source in await _sources(tenant):
        query = (
            RowQuery(source)
            .lookup("country", "customer.country")
            .lookup("copied", "cc.name")
            .order_by("n")
        )
        rows = await query.all()
        assert [(r.included["country"], r.included["copied"]) for r in rows] == [
            ("DE", ("Bistro",)),
            ("FR", ("Acme", "Café")),
            (None, ()),  # Café has no country
            (None, ()),  # no customer
        ]
        page = await query.scroll(page_size=2)
        assert [r.included["country"] for r in page.items] == ["DE", "FR"]
        customers = await _customers_of(source, tenant)
        from_two = RowQuery(source).where(n__gte=2)
        rolled = (
            RowQuery(customers)
            .rollup("orders", Count(), query=RowQuery(source), via="customer")
            .rollup("late_sum", Sum("n"), query=from_two, via="customer")
            .order_by("name")
        )
        got = [
            (r["name"], r.included["orders"], r.included["late_sum"]) for r in await rolled.all()
        ]
        assert got == [("Acme", 1, None), ("Bistro", 1, 2), ("Café", 1, 3)]


async def test_bad_lookups_and_rollups(engine: AsyncEngine, tenant: uuid.UUID) -> None:
    orders, _ = await _sources(tenant)
    customers = Register.load("customers", tenant_id=tenant)
    with pytest.raises(InvalidQuery, match=r"path 'reference\.field'"):
        RowQuery(orders).lookup("x", "country")
    with pytest.raises(InvalidQuery, match=r"must start with a reference field.*'customer'"):
        await RowQuery(orders).lookup("x", "n.country").all()
    with pytest.raises(InvalidQuery, match="no field 'colour'"):
        await RowQuery(orders).lookup("x", "customer.colour").all()
    with pytest.raises(InvalidQuery, match="already used"):
        RowQuery(orders).lookup("x", "customer.name").lookup("x", "customer.country")
    with pytest.raises(InvalidQuery, match="takes an aggregate"):
        RowQuery(customers).rollup("s", "sum", query=RowQuery(orders), via="customer")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="takes a RowQuery"):
        RowQuery(customers).rollup("s", Count(), query=orders, via="customer")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match=r"'cc' is not one; such fields: 'customer'"):
        await RowQuery(customers).rollup("s", Count(), query=RowQuery(orders), via="cc").all()
    with pytest.raises(InvalidQuery, match=r"Sum\(.customer.\) does not apply"):
        await (
            RowQuery(customers)
            .rollup("s", Sum("customer"), query=RowQuery(orders), via="customer")
            .all()
        )
