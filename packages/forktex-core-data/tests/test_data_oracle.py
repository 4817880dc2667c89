# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Oracle: a seeded register covering every field type, queried a few hundred times with
random filters (OR / AND / NOT groups, every operator, relative dates, conditions on the
fields of linked rows), orders, scrolls and
aggregations — on Postgres and on MemoryRegister — and each answer compared with the same
question asked independently of the library, in SQLite (stdlib ``sqlite3``)."""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from forktex_core.data import (
    Avg,
    Count,
    Field,
    Max,
    MemoryRegister,
    Min,
    Period,
    Q,
    Register,
    RowQuery,
    Sum,
)

STATUS = ("new", "open", "done", "void")  # choice order is not alphabetical
TAGS = ("red", "green", "blue")
FIELDS = [
    Field("title", "text"),
    Field("qty", "integer", indexed=True),
    Field("price", "decimal"),
    Field("ok", "boolean"),
    Field("due", "date", indexed=True),
    Field("at", "datetime"),
    Field("mail", "email"),
    Field("site", "url"),
    Field("status", "single_select", choices=STATUS, indexed=True),
    Field("tags", "multi_select", choices=TAGS),
    Field("meta", "json"),
    Field("owner", "reference", target="people", indexed=True),
    Field("watchers", "reference", target="people", many=True),
]
PEOPLE = [Field("name", "text"), Field("country", "text")]
WORDS = ["Apfel", "apfel", "Äpfel", "Birne", "birne", "Café", "cafe", "Zoë", "x_y", "50%", "a b"]
TODAY = date(2026, 3, 25)
NOW = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # already April 1st in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
LOCAL_TODAY = NOW.astimezone(BERLIN).date()
QUERIES = 300
AGGREGATIONS = 120


def _dataset(rng: random.Random, people: list[uuid.UUID]) -> list[dict[str, Any]]:
    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    rows = []
    for _ in range(300):
        rows.append(
            {
                "title": maybe(" ".join(rng.sample(WORDS, rng.randint(1, 3)))),
                "qty": maybe(rng.randint(-5, 20)),
                "price": maybe(Decimal(rng.randint(-500, 5000)) / 100),
                "ok": maybe(rng.random() < 0.5),
                "due": maybe(TODAY + timedelta(days=rng.randint(-50, 30))),
                "at": maybe(NOW + timedelta(minutes=rng.randint(-60 * 24 * 40, 60 * 24 * 20))),
                "mail": maybe(f"{rng.choice(['ada', 'bob', 'Cy'])}{rng.randint(1, 4)}@ex.org"),
                "site": maybe(f"https://{rng.choice(['a', 'b'])}.example/{rng.randint(1, 9)}"),
                "status": maybe(rng.choice(STATUS)),
                "tags": [t for t in TAGS if rng.random() < 0.35],
                "meta": maybe(rng.choice([{"k": 1}, {"k": 2}, [1, 2], "s", 3, {"k": [1]}])),
                "owner": maybe(rng.choice(people)),
                "watchers": rng.sample(people, rng.randint(0, 2)),
            }
        )
    return rows


# -- the independent evaluation -------------------------------------------------------------


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _sqlite_value(name: str, value: Any) -> Any:
    """A Python value of field ``name`` as the SQLite table holds it."""
    if value is None:
        return None
    if name == "price":
        return int(value * 100)  # exact cents
    if name == "ok":
        return int(value)
    if name == "due":
        return value.isoformat()
    if name == "at":
        return _stamp(value)
    if name in ("owner",):
        return str(value)
    if name in ("tags", "watchers", "meta"):
        if name == "meta":
            return _canonical(value)
        return json.dumps([str(v) for v in value]) if value else None
    return value


def _sqlite(rows: list[Any], people: list[Any]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.create_function("ulower", 1, lambda s: None if s is None else s.lower(), deterministic=True)
    db.execute("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, country TEXT)")
    for person in people:
        db.execute(
            "INSERT INTO people VALUES (?, ?, ?)",
            [str(person.id), person["name"], person["country"]],
        )
    names = [f.name for f in FIELDS]
    db.execute(f"CREATE TABLE t (id TEXT PRIMARY KEY, {', '.join(names)}, status_rank INTEGER)")
    for row in rows:
        values = [_sqlite_value(n, row.values.get(n)) for n in names]
        rank = None if row["status"] is None else STATUS.index(row["status"]) + 1
        db.execute(
            f"INSERT INTO t VALUES ({', '.join('?' * (len(names) + 2))})",
            [str(row.id), *values, rank],
        )
    return db


OPS = {
    "title": ["eq", "ne", "lt", "gte", "in", "between", "contains", "icontains", "not_contains",
              "not_icontains", "starts_with", "is_null"],
    "mail": ["eq", "ne", "gt", "in", "contains", "icontains", "starts_with", "is_null"],
    "site": ["eq", "lte", "starts_with", "not_contains", "is_null"],
    "qty": ["eq", "ne", "lt", "lte", "gt", "gte", "in", "between", "is_null"],
    "price": ["eq", "ne", "lt", "gte", "in", "between", "is_null"],
    "ok": ["eq", "ne", "is_null"],
    "due": ["eq", "ne", "lt", "gte", "between", "is_null", "during"],
    "at": ["lt", "gte", "between", "is_null", "during"],
    "status": ["eq", "ne", "in", "is_null"],
    "tags": ["contains", "not_contains", "eq", "is_null"],
    "meta": ["eq", "is_null"],
    "owner": ["eq", "ne", "in", "is_null"],
    "watchers": ["contains", "not_contains", "is_null"],
}  # fmt: skip
PERIODS = {
    "today": (Period.today(), 0, 1),
    "yesterday": (Period.yesterday(), -1, 1),
    "last7": (Period.last_days(7), -6, 7),
    "next5": (Period.next_days(5), 0, 5),
}


def _month_bounds(offset: int) -> tuple[date, date]:
    month = LOCAL_TODAY.month - 1 + offset
    first = date(LOCAL_TODAY.year + month // 12, month % 12 + 1, 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


class Gen:
    """Random conditions and their SQLite form."""

    def __init__(self, rng: random.Random, rows: list[Any], people: list[uuid.UUID]) -> None:
        self.rng, self.rows, self.people = rng, rows, people
        self.links = 0  # linked conditions generated

    def sample(self, name: str) -> Any:
        if name == "owner" and self.rng.random() < 0.2:
            return self.rng.choice(self.people)
        values = [r.values.get(name) for r in self.rows if r.values.get(name) is not None]
        return self.rng.choice(values)

    def linked(self) -> tuple[Q, str, list[Any]]:
        """A condition on the fields of the person a row's owner / watchers link to."""
        rng = self.rng
        self.links += 1
        via = rng.choice(["owner", "watchers"])
        field, op = rng.choice(
            [("country", "eq"), ("country", "ne"), ("country", "is_null"), ("country", "in"),
             ("name", "icontains"), ("name", "starts_with")]
        )  # fmt: skip
        value: Any
        if op == "is_null":
            value = rng.random() < 0.5
            inner, args = f"{field} IS {'' if value else 'NOT '}NULL", []
        elif op == "in":
            value = rng.sample(["DE", "FR", "fr"], rng.randint(1, 2))
            inner, args = f"{field} IN ({', '.join('?' * len(value))})", list(value)
        elif op == "icontains":
            value = rng.choice(["P", "ë", "zo"])
            inner, args = f"instr(ulower({field}), ulower(?)) > 0", [value]
        elif op == "starts_with":
            value = rng.choice(["p", "Z"])
            inner, args = f"substr({field}, 1, length(?)) = ?", [value, value]
        else:
            value = rng.choice(["DE", "FR", "fr"])
            inner = f"{field} {'=' if op == 'eq' else 'IS NOT'} ?"
            args = [value]
        chosen = f"SELECT id FROM people WHERE {inner}"
        if via == "owner":
            sql = f"owner IN ({chosen})"
        else:
            sql = f"EXISTS (SELECT 1 FROM json_each(t.watchers) w WHERE w.value IN ({chosen}))"
        key = f"{via}.{field}" if rng.random() < 0.5 else f"{via}__{field}"
        return Q({f"{key}__{op}": value}), sql, args

    def condition(self) -> tuple[Q, str, list[Any]]:
        rng = self.rng
        if rng.random() < 0.12:
            return self.linked()
        name = rng.choice(list(OPS))
        op = rng.choice(OPS[name])
        col = name
        if op == "is_null":
            value: Any = rng.random() < 0.5
            return Q({f"{name}__is_null": value}), f"{col} IS {'' if value else 'NOT '}NULL", []
        if op == "during":
            label = rng.choice([*PERIODS, "this_month", "last_month"])
            if label in PERIODS:
                period, start, length = PERIODS[label]
                first = LOCAL_TODAY + timedelta(days=start)
                end = first + timedelta(days=length)
            else:
                period = Period.this_month() if label == "this_month" else Period.last_month()
                first, end = _month_bounds(0 if label == "this_month" else -1)
            if name == "due":
                low, high = first.isoformat(), end.isoformat()
            else:  # datetimes: whole days in the query's zone
                low = _stamp(datetime.combine(first, datetime.min.time(), tzinfo=BERLIN))
                high = _stamp(datetime.combine(end, datetime.min.time(), tzinfo=BERLIN))
            return Q({f"{name}__during": period}), f"({col} >= ? AND {col} < ?)", [low, high]
        if name in ("title", "mail", "site") and op in (
            "contains", "icontains", "not_contains", "not_icontains", "starts_with",
        ):  # fmt: skip
            source = self.sample(name)
            start = rng.randint(0, max(0, len(source) - 2))
            piece = source[start : start + rng.randint(1, 4)]
            if rng.random() < 0.3:
                piece = piece.upper()
            base = op.removeprefix("not_")
            if base == "contains":
                sql = f"instr({col}, ?) > 0"
            elif base == "icontains":
                sql = f"instr(ulower({col}), ulower(?)) > 0"
            else:
                sql = f"substr({col}, 1, length(?)) = ?"
            args = [piece] * (2 if base == "starts_with" else 1)
            if op.startswith("not_"):
                sql = f"id NOT IN (SELECT id FROM t WHERE {sql})"
            return Q({f"{name}__{op}": piece}), sql, args
        if name == "tags" and op in ("contains", "not_contains"):
            wanted = rng.sample(TAGS, rng.randint(1, 2))
            value = wanted if len(wanted) > 1 or rng.random() < 0.5 else wanted[0]
            sql = (
                "(tags IS NOT NULL AND NOT EXISTS (SELECT 1 FROM json_each(?) w WHERE w.value "
                "NOT IN (SELECT value FROM json_each(t.tags))))"
            )
            if op == "not_contains":
                sql = f"id NOT IN (SELECT id FROM t WHERE {sql})"
            return Q({f"tags__{op}": value}), sql, [json.dumps(wanted)]
        if name == "watchers":
            who = rng.choice(self.people)
            sql = "EXISTS (SELECT 1 FROM json_each(t.watchers) w WHERE w.value = ?)"
            if op == "not_contains":
                sql = f"NOT {sql}"
            return Q({f"watchers__{op}": who}), sql, [str(who)]
        if op == "in":
            values = [self.sample(name) for _ in range(rng.randint(0, 3))]
            if not values:
                return Q({f"{name}__in": []}), "0", []
            marks = ", ".join("?" * len(values))
            return (
                Q({f"{name}__in": values}),
                f"{col} IN ({marks})",
                [_sqlite_value(name, v) for v in values],
            )
        if op == "between":
            low, high = sorted([self.sample(name), self.sample(name)])
            if rng.random() < 0.2:
                low, high = high, low
            return (
                Q({f"{name}__between": [low, high]}),
                f"{col} BETWEEN ? AND ?",
                [_sqlite_value(name, low), _sqlite_value(name, high)],
            )
        value = self.sample(name)
        symbol = {"eq": "=", "ne": "IS NOT", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
        return Q({f"{name}__{op}": value}), f"{col} {symbol} ?", [_sqlite_value(name, value)]

    def tree(self, depth: int = 2) -> tuple[Q, str, list[Any]]:
        rng = self.rng
        if depth == 0 or rng.random() < 0.4:
            q, sql, args = self.condition()
        else:
            parts = [self.tree(depth - 1) for _ in range(rng.randint(2, 3))]
            joiner = rng.choice(["and", "or"])
            q = parts[0][0]
            for part in parts[1:]:
                q = q & part[0] if joiner == "and" else q | part[0]
            sql = "(" + f" {joiner.upper()} ".join(f"({p[1]})" for p in parts) + ")"
            args = [a for p in parts for a in p[2]]
        if rng.random() < 0.25:
            return ~q, f"id NOT IN (SELECT id FROM t WHERE {sql})", args
        return q, sql, args


SORTABLE = {
    "title": "title", "qty": "qty", "price": "price", "ok": "ok", "due": "due", "at": "at",
    "mail": "mail", "site": "site", "status": "status_rank", "owner": "owner", "id": "id",
    "owner.name": "(SELECT p.name FROM people p WHERE p.id = t.owner)",
    "owner.country": "(SELECT p.country FROM people p WHERE p.id = t.owner)",
}  # fmt: skip


def _order_sql(order: list[tuple[str, bool]]) -> str:
    keys = [
        f"{SORTABLE[name]} {'DESC NULLS FIRST' if desc else 'ASC NULLS LAST'}"
        for name, desc in order
    ]
    if not any(name == "id" for name, _ in order):
        keys.append("id DESC" if order and order[-1][1] else "id")
    return ", ".join(keys)


async def _scroll(q: RowQuery, size: int) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = await q.scroll(page_size=size, cursor=cursor)
        seen += [r.id for r in page]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


GROUPS = ["status", "ok", "tags", "owner", "due", "title"]
AGGREGATES = [
    ("n", Count(), "count(*)"),
    ("nq", Count("qty"), "count(qty)"),
    ("sq", Sum("qty"), "sum(qty)"),
    ("sp", Sum("price"), "sum(price)"),
    ("aq", Avg("qty"), "avg"),
    ("ap", Avg("price"), "avg"),
    ("minq", Min("qty"), "min(qty)"),
    ("maxp", Max("price"), "max(price)"),
    ("mind", Min("due"), "min(due)"),
    ("maxa", Max("at"), "max(at)"),
    ("mint", Min("title"), "min(title)"),
]


def _from_sqlite(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    if name in ("sp", "maxp"):
        return Decimal(raw) / 100
    if name == "mind" or name == "due":
        return date.fromisoformat(raw)
    if name == "maxa":
        return datetime.fromisoformat(raw).replace(tzinfo=UTC)
    if name == "ok":
        return bool(raw)
    if name == "owner":
        return uuid.UUID(raw)
    return raw


def _oracle_aggregate(
    db: sqlite3.Connection, where: str, args: list[Any], groups: list[str], picked: list[Any]
) -> list[dict[str, Any]]:
    source = f"(SELECT * FROM t WHERE {where}) AS t"
    columns = []
    for i, g in enumerate(groups):
        if g == "tags":
            source += f" LEFT JOIN json_each(t.tags) j{i}"
            columns.append(f"j{i}.value")
        else:
            columns.append(f"t.{g}")
    selects = list(columns)
    for name, _, sql in picked:
        if sql == "avg":
            col = "qty" if name == "aq" else "price"
            selects += [f"sum(t.{col})", f"count(t.{col})"]
        else:
            selects.append(sql.replace("(", "(t.").replace("(t.*)", "(*)"))
    text = f"SELECT {', '.join(selects)} FROM {source}"
    if groups:
        order = ", ".join(
            f"{'t.status_rank' if g == 'status' else columns[i]} ASC NULLS LAST"
            for i, g in enumerate(groups)
        )
        text += f" GROUP BY {', '.join(columns)} ORDER BY {order}"
    result = []
    for raw in db.execute(text, args).fetchall():
        row = {g: _from_sqlite(g, raw[i]) for i, g in enumerate(groups)}
        at = len(groups)
        for name, _, sql in picked:
            if sql == "avg":
                total, count = raw[at], raw[at + 1]
                at += 2
                if not count:
                    row[name] = None
                    continue
                with localcontext() as ctx:
                    ctx.prec = 34
                    exact = Decimal(total) if name == "aq" else Decimal(total).scaleb(-2)
                    row[name] = exact / count
            else:
                row[name] = _from_sqlite(name, raw[at])
                at += 1
        result.append(row)
    return result


async def test_postgres_and_memory_agree_with_sqlite(engine: AsyncEngine) -> None:
    rng = random.Random(22)
    tenant = uuid.uuid4()
    people_reg = await Register.create("people", tenant_id=tenant, fields=PEOPLE)
    persons = await people_reg.insert_many(
        [
            {"name": name, "country": country}
            for name, country in [
                ("p0", "DE"),
                ("p1", "FR"),
                ("Zoë", None),
                ("p3", "DE"),
                ("P4", "fr"),
            ]
        ]
    )
    await people_reg.archive(persons[4].id)  # a linked row's archive state does not matter
    people = [r.id for r in persons]
    pg = await Register.create("oracle", tenant_id=tenant, fields=FIELDS)
    inserted = await pg.insert_many(_dataset(rng, people))
    await RowQuery(pg).where(qty=0).archive()  # archived rows stay out of default queries
    archived = {r.id for r in await RowQuery(pg).archived().all()}
    assert archived
    active = [r for r in inserted if r.id not in archived]
    mem = MemoryRegister(
        "oracle",
        FIELDS,
        rows=[{"id": r.id, "created_at": r.created_at, **r.values} for r in active],
        targets={
            "people": MemoryRegister(
                "people",
                PEOPLE,
                rows=[
                    {"id": p.id, **p.values, "archived_at": NOW if i == 4 else None}
                    for i, p in enumerate(persons)
                ],
            )
        },
    )
    db = _sqlite(active, persons)
    gen = Gen(rng, active, people)
    clock = {"clock": lambda: NOW, "timezone": BERLIN}
    hits = 0
    for i in range(QUERIES):
        q, where, args = gen.tree()
        names = rng.sample(list(SORTABLE), rng.randint(0, 3))
        order = [(name, rng.random() < 0.5) for name in names]
        spec = [("-" if desc else "") + name for name, desc in order]
        expected = [
            uuid.UUID(r[0])
            for r in db.execute(
                f"SELECT id FROM t WHERE {where} ORDER BY {_order_sql(order)}", args
            ).fetchall()
        ]
        hits += len(expected)
        for source in (pg, mem):
            query = RowQuery(source, **clock).where(q).order_by(*spec)
            got = [r.id for r in await query.all()]
            assert got == expected, (i, source, q, spec, where)
            assert await query.count() == len(expected), (i, source, q)
            if i % 4 == 0:
                assert await _scroll(query, rng.randint(1, 40)) == expected, (i, source, q)
    assert hits > QUERIES * 20  # the queries select rows, not only nothing
    assert gen.links > 50  # filters on linked rows' fields are among them
    for i in range(AGGREGATIONS):
        q, where, args = gen.tree(1)
        if rng.random() < 0.3:
            q, where, args = Q(), "1", []
        groups = rng.sample(GROUPS, rng.randint(0, 2))
        picked = rng.sample(AGGREGATES, rng.randint(1, 4))
        expected = _oracle_aggregate(db, where, args, groups, picked)
        for source in (pg, mem):
            query = RowQuery(source, **clock).where(q).group_by(*groups)
            got = await query.aggregate({name: agg for name, agg, _ in picked})
            assert [r.as_dict() for r in got] == expected, (i, source, q, groups, picked)
    await pg.drop()
    await people_reg.drop()
