# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``QueryPlan`` -> SQL for the Postgres source.

Only two things are ever written into SQL text: stored field keys (``f<number>``, checked
against that pattern before quoting) and the register's UUID (needed as a literal so the
planner can match the per-register partial indexes). Every value is a bound parameter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ._aggregates import AggregateSpec
from ._fields import STRINGS, TEMPORAL, Field, FieldType, check_key, dumps, to_json
from ._limits import SORT_CHARS
from ._plan import (
    AnyOf,
    Condition,
    Filter,
    Not,
    QueryPlan,
    Referenced,
    Related,
    SortKey,
    bounded,
    is_system,
    nullable,
    ranked,
)
from ._search import parse as parse_search
from ._search import query_literal

_SYSTEM_COLUMNS = {
    "$id": "id",
    "$created_at": "created_at",
    "$updated_at": "updated_at",
    "$archived_at": "archived_at",
}


def _raw(f: Field, alias: str) -> str:
    return f"({alias}data->>'{check_key(f.key)}')"


def value_expr(f: Field, alias: str = "r.") -> str:
    """The SQL expression of a field's whole typed value: what filters and facets compare.

    Storage keys are never reused (one key belongs to one field of one register for its
    whole life), so a cast only ever sees values written by that field's coercion: it
    cannot fail, whichever rows of whichever register Postgres evaluates it on."""
    if is_system(f):
        return alias + _SYSTEM_COLUMNS[f.key]
    raw = _raw(f, alias)
    kind = f.kind
    if kind in STRINGS or kind in TEMPORAL:
        # Dates and datetimes are stored as fixed-width ISO text (UTC for datetimes): their
        # text order is their time order.
        return f'({raw} COLLATE "C")'
    if kind is FieldType.INTEGER:
        return f"({raw}::bigint)"
    if kind is FieldType.DECIMAL:
        return f"({raw}::numeric)"
    if kind is FieldType.BOOLEAN:
        return f"({raw}::boolean)"
    if kind is FieldType.REFERENCE and not f.many:
        return f"({raw}::uuid)"
    return f"({alias}data->'{check_key(f.key)}')"


def sort_expr(f: Field, alias: str = "r.") -> str:
    """The SQL expression of a field's sort key: what ``ORDER BY``, keyset conditions and
    the field's index use. Text-like fields sort by their first ``SORT_CHARS`` characters
    (bounded index entries and cursors); other types by their whole value."""
    if f.kind in STRINGS and not is_system(f):
        return f'(left({_raw(f, alias)}, {SORT_CHARS}) COLLATE "C")'
    return value_expr(f, alias)


def order_expr(sql: Sql, f: Field, alias: str = "r.") -> str:
    """What ``ORDER BY`` and keyset conditions compare: the sort key, or for a single_select
    its position among the choices (bound as a parameter; choices never reach SQL text)."""
    if ranked(f):
        return (
            f"array_position(CAST({sql.bind(list(f.choices))} AS text[]), {value_expr(f, alias)})"
        )
    return sort_expr(f, alias)


def key_expr(sql: Sql, key: SortKey) -> str:
    """:func:`order_expr` of a sort key; for a linked key, of the linked row (a scalar
    subquery, NULL when the row has no link)."""
    if key.via is None:
        return order_expr(sql, key.field)
    target = key.target.register_id if key.target is not None else None
    if target is None or sql.tenant is None:  # pragma: no cover - planned by a Register
        raise AssertionError("a linked sort needs a stored target register and a tenant")
    return (
        f"(SELECT {order_expr(sql, key.field, 't.')} FROM forktex_data.rows t "
        f"WHERE t.id = {value_expr(key.via)} AND t.register_id = {register_literal(target)} "
        f"AND t.tenant_id = {sql.bind(sql.tenant)})"
    )


def _mark(sql: Sql, f: Field, value: Any) -> str:
    """A keyset bound (a sort key, see :func:`~._plan.sort_value`) compared with
    :func:`order_expr`."""
    return sql.bind(value if ranked(f) else plain(f, value))


def register_literal(register_id: uuid.UUID) -> str:
    """The register id as a SQL literal (a UUID we generated; formatted by ``uuid``)."""
    return f"'{uuid.UUID(str(register_id))}'::uuid"


class Sql:
    """SQL text plus its bound parameters (``:p0``, ``:p1``, ...)."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.text = ""
        self.tenant: uuid.UUID | None = None  # set by where_sql: linked rows are the tenant's

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name


def _param(sql: Sql, f: Field, value: Any) -> str:
    """A bound parameter of the Python type asyncpg expects for ``value_expr(f)``."""
    if f.multi or f.kind is FieldType.JSON:
        return f"CAST({sql.bind(dumps(to_json(f, value)))} AS jsonb)"
    return sql.bind(plain(f, value))


def plain(f: Field, value: Any) -> Any:
    """``value`` as compared with ``value_expr(f)``: dates and datetimes as stored text."""
    if f.kind in TEMPORAL and not is_system(f) and value is not None:
        return to_json(f, value)
    return value


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def filter_sql(sql: Sql, node: Filter) -> str:
    """A condition or a group. Under ``NOT`` an unknown (NULL) result counts as not
    matching — ``NOT COALESCE(x, FALSE)`` — so NOT selects exactly the rows its inner
    filter does not, as ``MemoryRegister`` evaluates it."""
    if isinstance(node, Condition):
        return condition_sql(sql, node)
    if isinstance(node, Not):
        return f"NOT COALESCE(({filter_sql(sql, node.inner)}), FALSE)"
    if isinstance(node, Related):
        return _related_sql(sql, node)
    if isinstance(node, Referenced):
        return _referenced_sql(sql, node)
    if not node.items:
        return "FALSE" if isinstance(node, AnyOf) else "TRUE"
    joiner = " OR " if isinstance(node, AnyOf) else " AND "
    return "(" + joiner.join(f"({filter_sql(sql, item)})" for item in node.items) + ")"


def _related_sql(sql: Sql, node: Related) -> str:
    """The reference points to a row of the target register that ``node.inner`` selects.
    The subquery names its rows ``r`` too (shadowing the outer ``r``), so the inner filter
    compiles exactly as it does on the target register itself."""
    target = node.target.register_id
    if target is None or sql.tenant is None:  # pragma: no cover - planned by a Register
        raise AssertionError("a linked filter needs a stored target register and a tenant")
    chosen = (
        "SELECT r.id FROM forktex_data.rows r WHERE "
        f"r.register_id = {register_literal(target)} AND r.tenant_id = {sql.bind(sql.tenant)} "
        f"AND ({filter_sql(sql, node.inner)})"
    )
    via = value_expr(node.via)
    if not node.via.many:
        return f"{via} IN ({chosen})"
    return (
        f"EXISTS (SELECT 1 FROM jsonb_array_elements_text({via}) AS linked(v) "
        f"WHERE CAST(linked.v AS uuid) IN ({chosen}))"
    )


def _referenced_sql(sql: Sql, node: Referenced) -> str:
    """The row is pointed to by a row the other plan selects (the subquery's rows are
    named ``r`` as well, so that plan compiles as it does on its own register)."""
    register = node.by.info.register_id
    tenant = sql.tenant
    if register is None or tenant is None:  # pragma: no cover - planned by a Register
        raise AssertionError("a reverse link needs a stored register and a tenant")
    where = where_sql(sql, node.by, register, tenant)
    via = value_expr(node.via)
    if not node.via.many:
        chosen = f"SELECT {via} FROM forktex_data.rows r WHERE {where} AND {via} IS NOT NULL"
    else:
        chosen = (
            "SELECT CAST(linked.v AS uuid) FROM forktex_data.rows r CROSS JOIN LATERAL "
            f"jsonb_array_elements_text({via}) AS linked(v) WHERE {where}"
        )
    return f"r.id IN ({chosen})"


def condition_sql(sql: Sql, cond: Condition) -> str:
    """One condition. On text-like fields it compares the sort key (so the field's index
    serves it) and, only when a value is too long for the sort key to decide alone, the
    whole value as well."""
    f, op, value = cond.field, cond.op, cond.value
    if op.startswith("not_"):
        inner = condition_sql(sql, Condition(f, op[4:], value))
        return f"NOT COALESCE(({inner}), FALSE)"
    if op == "icontains":
        return f"strpos(lower({_raw(f, 'r.')}), lower({sql.bind(value)})) > 0"
    if f.kind in STRINGS and not is_system(f) and op != "contains":
        return _string_condition(sql, f, op, value)
    e = value_expr(f)
    if op == "is_null":
        return f"{e} IS NULL" if value else f"{e} IS NOT NULL"
    if op == "eq":
        return f"{e} = {_param(sql, f, value)}"
    if op == "ne":
        return f"{e} IS DISTINCT FROM {_param(sql, f, value)}"
    if op in _COMPARE:
        return f"{e} {_COMPARE[op]} {sql.bind(plain(f, value))}"
    if op == "in":
        if not value:
            return "FALSE"
        return f"{e} = ANY({sql.bind([plain(f, v) for v in value])})"
    if op == "between":
        low, high = plain(f, value[0]), plain(f, value[1])
        return f"{e} BETWEEN {sql.bind(low)} AND {sql.bind(high)}"
    if op == "contains":
        if f.kind is FieldType.JSON:
            return f"{e} @> CAST({sql.bind(dumps(value))} AS jsonb)"
        if f.multi:
            return f"{e} @> {_param(sql, f, value)}"
        return f"strpos({e}, {sql.bind(value)}) > 0"
    raise AssertionError(f"unhandled operator {op!r}")  # pragma: no cover - plan validated


_COMPARE = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_LOOSE = {"lt": "<=", "lte": "<=", "gt": ">=", "gte": ">="}


def _fits(value: str) -> bool:
    """Whether comparing the sort key with ``value`` decides the comparison of the whole
    value: true for values shorter than the sort key. (Two texts compare at their first
    difference or, when one is a prefix of the other, by length — within the first
    ``len(value) + 1`` characters, which the sort key holds.)"""
    return len(value) < SORT_CHARS


def _string_condition(sql: Sql, f: Field, op: str, value: Any) -> str:
    s, e = sort_expr(f), value_expr(f)
    if op == "is_null":
        return f"{s} IS NULL" if value else f"{s} IS NOT NULL"
    if op == "ne":
        return f"{e} IS DISTINCT FROM {sql.bind(value)}"
    if op == "eq":
        if _fits(value):
            return f"{s} = {sql.bind(value)}"
        return f"{s} = {sql.bind(bounded(f, value))} AND {e} = {sql.bind(value)}"
    if op in _COMPARE:
        if _fits(value):
            return f"{s} {_COMPARE[op]} {sql.bind(value)}"
        return (
            f"{s} {_LOOSE[op]} {sql.bind(bounded(f, value))} "
            f"AND {e} {_COMPARE[op]} {sql.bind(value)}"
        )
    if op == "in":
        if not value:
            return "FALSE"
        if all(_fits(v) for v in value):
            return f"{s} = ANY({sql.bind(list(value))})"
        keys = list(dict.fromkeys(bounded(f, v) for v in value))
        return f"{s} = ANY({sql.bind(keys)}) AND {e} = ANY({sql.bind(list(value))})"
    if op == "between":
        low, high = value
        if _fits(low) and _fits(high):
            return f"{s} BETWEEN {sql.bind(low)} AND {sql.bind(high)}"
        return (
            f"{s} BETWEEN {sql.bind(bounded(f, low))} AND {sql.bind(bounded(f, high))} "
            f"AND {e} BETWEEN {sql.bind(low)} AND {sql.bind(high)}"
        )
    if op == "starts_with":
        if len(value) <= SORT_CHARS:
            return f"{s} LIKE {sql.bind(_like_prefix(value))}"
        return f"{s} = {sql.bind(bounded(f, value))} AND {e} LIKE {sql.bind(_like_prefix(value))}"
    raise AssertionError(f"unhandled operator {op!r}")  # pragma: no cover - plan validated


def where_sql(sql: Sql, plan: QueryPlan, register_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
    """The WHERE clause (without the keyword) for a plan on one register of one tenant."""
    sql.tenant = tenant_id
    parts = [
        f"r.register_id = {register_literal(register_id)}",
        f"r.tenant_id = {sql.bind(tenant_id)}",
    ]
    if plan.archived == "active":
        parts.append("r.archived_at IS NULL")
    elif plan.archived == "archived":
        parts.append("r.archived_at IS NOT NULL")
    parts += [filter_sql(sql, c) for c in plan.conditions]
    if plan.search is not None:
        query = parse_search(plan.search, plan.info.search_config)
        if query is None:  # no words: matches nothing
            parts.append("FALSE")
        else:
            parts.append(f"r.search @@ CAST({sql.bind(query_literal(query))} AS tsquery)")
    return " AND ".join(parts)


def order_sql(sql: Sql, sort: Sequence[SortKey]) -> str:
    return ", ".join(f"{key_expr(sql, k)}{' DESC' if k.descending else ''}" for k in sort)


def keyset_sql(sql: Sql, sort: Sequence[SortKey], after: Sequence[Any]) -> str:
    """Rows strictly after ``after`` in ``sort`` order, NULL being the largest value.

    With one direction and no NULL in the cursor this is a row comparison the planner runs
    as an index range scan: ``(a, id) < (:a, :id)``, plus ``OR a IS NULL`` tails ascending.
    """
    exprs = [key_expr(sql, k) for k in sort]
    may_be_null = [k.via is not None or nullable(k.field) for k in sort]
    directions = {k.descending for k in sort}
    if len(directions) == 1 and all(v is not None for v in after):
        marks = [_mark(sql, k.field, v) for k, v in zip(sort, after, strict=True)]
        symbol = "<" if sort[0].descending else ">"
        row = f"({', '.join(exprs)}) {symbol} ({', '.join(marks)})"
        if sort[0].descending:
            return row
        tails = []
        for i in range(len(sort)):
            if may_be_null[i]:
                prefix = [f"{exprs[j]} = {marks[j]}" for j in range(i)]
                tails.append(" AND ".join([*prefix, f"{exprs[i]} IS NULL"]))
        return "(" + " OR ".join([row, *(f"({t})" for t in tails)]) + ")"
    branches = []
    for i, key in enumerate(sort):
        terms = []
        for j in range(i):
            mark = after[j]
            if mark is None:
                terms.append(f"{exprs[j]} IS NULL")
            else:
                terms.append(f"{exprs[j]} = {_mark(sql, sort[j].field, mark)}")
        mark = after[i]
        if mark is None:
            if not key.descending:
                continue  # nothing is larger than NULL
            terms.append(f"{exprs[i]} IS NOT NULL")
        elif key.descending:
            terms.append(f"{exprs[i]} < {_mark(sql, key.field, mark)}")
        else:
            bound = _mark(sql, key.field, mark)
            terms.append(f"({exprs[i]} > {bound} OR {exprs[i]} IS NULL)")
        branches.append("(" + " AND ".join(terms) + ")")
    return "(" + (" OR ".join(branches) or "FALSE") + ")"


ROW_COLUMNS = "r.id, r.data, r.created_at, r.updated_at, r.archived_at, r.created_by, r.updated_by"


def select_sql(
    plan: QueryPlan,
    register_id: uuid.UUID,
    tenant_id: uuid.UUID,
    *,
    limit: int | None,
    offset: int,
    after: Sequence[Any] | None,
) -> Sql:
    sql = Sql()
    where = where_sql(sql, plan, register_id, tenant_id)
    if after is not None:
        where += " AND " + keyset_sql(sql, plan.sort, after)
    order = order_sql(sql, plan.sort)
    text = f"SELECT {ROW_COLUMNS} FROM forktex_data.rows r WHERE {where} ORDER BY {order}"
    if limit is not None:
        text += f" LIMIT {sql.bind(limit)}"
    if offset:
        text += f" OFFSET {sql.bind(offset)}"
    sql.text = text
    return sql


def facet_sql(
    plan: QueryPlan, f: Field, register_id: uuid.UUID, tenant_id: uuid.UUID, limit: int
) -> tuple[str, dict[str, Any]]:
    sql = Sql()
    where = where_sql(sql, plan, register_id, tenant_id)
    if f.multi:
        key = check_key(f.key)
        source = (
            "forktex_data.rows r LEFT JOIN LATERAL "
            f"jsonb_array_elements_text(r.data->'{key}') AS e(v) ON true"
        )
        value = 'e.v COLLATE "C"'
    else:
        # grouped like aggregate_sql: by the statistics-backed expression where there is one
        source, value = "forktex_data.rows r", _counted_group(f) or value_expr(f)
    text = (
        f"SELECT {value} AS v, count(*) AS n FROM {source} WHERE {where} "
        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {sql.bind(limit)}"
    )
    return text, sql.params


MAX_JOINT_GROUPS = 10_000
"""At most this many combinations of values of the fields :func:`joint_facets` counts in
one scan (each combination is one group of that scan)."""


def _values_bound(f: Field) -> int | None:
    """How many values ``f`` can hold, ``None`` counting as one: a single_select's choices
    (a change of choices moves the field to a new storage key, so stored values are always
    among them) and a boolean's two; ``None`` for other fields."""
    if f.multi or is_system(f):
        return None
    if f.kind is FieldType.SINGLE_SELECT:
        return len(f.choices) + 1
    if f.kind is FieldType.BOOLEAN:
        return 3
    return None


def joint_facets(fields: Sequence[Field]) -> list[Field]:
    """The fields among ``fields`` whose facets one scan can count together: the fields of
    few values, as long as all their combinations stay at most ``MAX_JOINT_GROUPS`` (none,
    when fewer than two qualify: one field is counted by :func:`facet_sql`)."""
    joint: list[Field] = []
    groups = 1
    for f in fields:
        bound = _values_bound(f)
        if bound is not None and groups * bound <= MAX_JOINT_GROUPS:
            joint.append(f)
            groups *= bound
    return joint if len(joint) > 1 else []


def joint_facet_sql(
    plan: QueryPlan,
    fields: Sequence[Field],
    register_id: uuid.UUID,
    tenant_id: uuid.UUID,
    limit: int,
) -> Sql:
    """The facets of several fields (see :func:`joint_facets`) in one scan of the rows:
    the rows are counted per combination of the fields' values (a few groups, hashed in
    parallel workers on a large register), and each field's counts are summed from those.
    Rows ``(s, g0, g1, ..., n)``: ``s`` is ``GROUPING(g0, g1, ...)`` of the field whose
    value is in its column (the others are NULL), in the order :func:`facet_sql` gives:
    most frequent first, ties by value (NULL last), at most ``limit`` per field."""
    sql = Sql()
    where = where_sql(sql, plan, register_id, tenant_id)
    names = [f"g{i}" for i in range(len(fields))]
    exprs = [
        f"{_counted_group(f) or value_expr(f)} AS {name}"
        for f, name in zip(fields, names, strict=True)
    ]
    keys = ", ".join(names)
    combos = (
        f"SELECT {', '.join(exprs)}, count(*) AS n FROM forktex_data.rows r WHERE {where} "
        f"GROUP BY {', '.join(str(i + 1) for i in range(len(fields)))}"
    )
    sums = (
        f"SELECT GROUPING({keys}) AS s, {keys}, sum(c.n) AS n FROM ({combos}) AS c "
        f"GROUP BY GROUPING SETS ({', '.join(f'({name})' for name in names)})"
    )
    ranked_sums = (
        f"SELECT t.*, row_number() OVER (PARTITION BY t.s ORDER BY t.n DESC, {keys}) AS i "
        f"FROM ({sums}) AS t"
    )
    sql.text = (
        f"SELECT s, {keys}, n FROM ({ranked_sums}) AS u WHERE u.i <= {sql.bind(limit)} "
        "ORDER BY s, i"
    )
    return sql


def _counted_group(f: Field) -> str | None:
    """The expression to group ``f`` by so that the planner knows how many groups there
    are: the sort expression of an indexed field, which has an expression statistics
    object (see ``_index``), when it equals the whole value (not for texts, which it cuts
    at ``SORT_CHARS``, unless the field is a select whose every choice is shorter).
    ``None`` otherwise: Postgres would guess a group per row."""
    if not f.indexed or f.multi or is_system(f):
        return None
    if f.kind in STRINGS and not (
        f.kind is FieldType.SINGLE_SELECT and all(len(c) <= SORT_CHARS for c in f.choices)
    ):
        return None
    return sort_expr(f)


def aggregate_sql(
    plan: QueryPlan,
    groups: Sequence[Field],
    specs: Sequence[AggregateSpec],
    register_id: uuid.UUID,
    tenant_id: uuid.UUID,
    limit: int,
) -> Sql:
    """``SELECT g0.., a0, c0, ...`` per group, in group order (NULL last). Per aggregate
    ``a<j>`` is its raw value (the sum for avg) and ``c<j>`` the count it is finished with
    (:func:`~._aggregates.finish`; NULL where it needs none: a sum, a minimum, a maximum).

    When every group field has statistics telling how many groups there are (indexed
    fields, see :func:`_counted_group`), the aggregates read the documents directly: the
    planner then hashes the groups, in parallel workers on a large register. Otherwise the
    values are read in a subquery the planner keeps apart (``OFFSET 0``): it would
    otherwise guess a group per row and sort whole rows; this way it hashes those few
    values. Each value is read from a document once per row either way."""
    sql = Sql()
    where = where_sql(sql, plan, register_id, tenant_id)
    counted = [_counted_group(f) for f in groups]
    flat = all(expr is not None for expr in counted)
    source = "forktex_data.rows r"
    inner: list[str] = []
    for i, f in enumerate(groups):
        if f.multi:
            key = check_key(f.key)
            source += (
                f" LEFT JOIN LATERAL jsonb_array_elements_text(r.data->'{key}') AS e{i}(v) ON true"
            )
            inner.append(f'e{i}.v COLLATE "C"')
        else:
            inner.append(counted[i] or value_expr(f))
    # What GROUP BY and ORDER BY name: the expressions themselves, or the subquery's columns.
    keyed = list(inner) if flat else [f"s.g{i}" for i in range(len(groups))]
    group_columns = [f"{expr} AS g{i}" if flat else f"g{i}" for i, expr in enumerate(inner)]
    if not flat:
        inner = [f"{expr} AS g{i}" for i, expr in enumerate(inner)]
    values: dict[str, str] = {}  # field key -> what the aggregates read
    columns = list(group_columns)
    for j, spec in enumerate(specs):
        if spec.field is None:
            columns += [f"NULL AS a{j}", f"count(*) AS c{j}"]
            continue
        column = values.get(spec.field.key)
        if column is None:
            if flat:
                column = value_expr(spec.field)
            else:
                column = f"v{len(values)}"
                inner.append(f"{value_expr(spec.field)} AS {column}")
            values[spec.field.key] = column
        function = {"count": "NULL", "sum": f"sum({column})", "avg": f"sum({column})"}.get(
            spec.function, f"{spec.function}({column})"
        )
        # Only counts and averages need the number of values (reading it is a second
        # look-up in every document when the aggregates read the documents directly).
        count = f"count({column})" if spec.function in ("count", "avg") else "NULL"
        columns += [f"{function} AS a{j}", f"{count} AS c{j}"]
    if flat:
        text = f"SELECT {', '.join(columns)} FROM {source} WHERE {where}"
    else:
        subquery = f"SELECT {', '.join(inner) or '1 AS one'} FROM {source} WHERE {where} OFFSET 0"
        text = f"SELECT {', '.join(columns)} FROM ({subquery}) AS s"
    if groups:
        keys = ", ".join(str(i + 1) for i in range(len(groups)))
        order = ", ".join(
            f"array_position(CAST({sql.bind(list(f.choices))} AS text[]), {keyed[i]})"
            if ranked(f)
            else keyed[i]
            for i, f in enumerate(groups)
        )
        text += f" GROUP BY {keys} ORDER BY {order} LIMIT {sql.bind(limit)}"
    sql.text = text
    return sql
