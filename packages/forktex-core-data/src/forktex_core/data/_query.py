# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``RowQuery``: a composable, immutable query over any :class:`RegisterSource`; it
validates itself into a :class:`QueryPlan` and runs the plan on its source."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, Literal

from . import _cursor
from ._aggregates import Aggregate, check_aggregates, check_groups
from ._aggregates import evaluate as evaluate_aggregates
from ._computed import lookup_values, rollup_values
from ._errors import InvalidQuery, InvalidValue, show
from ._fields import (
    OPERATORS,
    TEXT_OPS,
    TEXTLIKE,
    Field,
    FieldType,
    check_json,
    coerce,
    text_problem,
)
from ._formula import compile_formula
from ._limits import (
    INT_MAX,
    MAX_CONDITIONS,
    MAX_IN,
    MAX_NESTING,
    MAX_PAGE,
    MAX_SEARCH_CHARS,
    MAX_SORT,
)
from ._logic import Q, Term, count_terms, nesting, terms_of
from ._periods import Period, local_today
from ._plan import (
    ID,
    SYSTEM,
    AllOf,
    AnyOf,
    ArchivedMode,
    Condition,
    Filter,
    Not,
    QueryPlan,
    Referenced,
    RegisterInfo,
    Related,
    SortKey,
    is_system,
)
from ._results import AggregateRow, FacetCount, Page, RowResult
from ._search import as_you_type
from ._sources import RegisterSource


def _coerce_for(f: Field, op: str, value: Any) -> Any:
    """Coerce a filter value for ``op`` on ``f``; InvalidValue/InvalidQuery when it does not fit."""
    where = f"{f.name}__{op}"
    if op == "during":
        if not isinstance(value, Period):
            raise InvalidQuery(
                f"{where} takes a Period (Period.today(), Period.last_days(7), "
                f"Period.this_month(), ...), got {show(value, 80)}"
            )
        return value
    if op == "is_null":
        if not isinstance(value, bool):
            raise InvalidQuery(f"{where} takes True or False, got {show(value, 80)}")
        return value
    if op in ("in", "between"):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            raise InvalidQuery(f"{where} takes a list of values, got {show(value, 80)}")
        if len(value) > MAX_IN:
            raise InvalidQuery(
                f"{where} takes at most {MAX_IN:,} values, got {len(value):,}; split the "
                "list into several queries"
            )
        items = [coerce(f, v) for v in value]
        if any(v is None for v in items):
            raise InvalidQuery(f"{where} cannot hold None; use {f.name}__is_null=True")
        if op == "between":
            if len(items) != 2:
                raise InvalidQuery(f"{where} takes [low, high], got {show(value, 80)}")
            return (items[0], items[1])
        return tuple(dict.fromkeys(items))
    if op in TEXT_OPS and f.kind in TEXTLIKE:
        if not isinstance(value, str) or text_problem(value) is not None:
            raise InvalidQuery(
                f"{where} takes a string (without NUL or lone surrogates), got {show(value, 80)}"
            )
        return value
    if op in ("contains", "not_contains") and f.kind is FieldType.JSON:
        if value is None:
            raise InvalidQuery(f"{where} takes a JSON value to look for, got None")
        return check_json(f, value)
    result = coerce(f, value)
    if result is None:
        raise InvalidQuery(f"{where} cannot compare with None; use {f.name}__is_null")
    return result


@dataclass(frozen=True)
class _Range:
    op: Literal["since", "until"]
    value: date | datetime
    field: str | None


class RowQuery:
    """A composable query over a register (any :class:`RegisterSource`). Every builder
    method returns a new query; nothing runs until an ``await``-ed terminal method
    (``scroll``, ``paginate``, ``all``, ``first``, ``count``, ``facets``, ``aggregate``,
    ``archive``, ``restore``, ``delete``). Names and values are validated against the
    register's fields when the query runs: unknown fields, operators that do not fit a type
    and values of the wrong type raise :class:`InvalidQuery` / :class:`InvalidValue`.

    ``clock`` (returning an aware datetime; default the system clock) and ``timezone``
    (default UTC) decide what relative dates (:class:`Period`) mean.

    Example::

        page = await (
            RowQuery(invoices)
            .where(status="paid", amount__gte=100)
            .since(date(2026, 1, 1))
            .order_by("-issued_at")
            .scroll(page_size=50)
        )
    """

    __slots__ = (
        "_archived", "_clock", "_computed", "_filters", "_groups", "_includes", "_linked_from",
        "_planned", "_ranges", "_search", "_sort", "_source", "_timezone", "_today",
    )  # fmt: skip

    def __init__(
        self,
        source: RegisterSource,
        *,
        clock: Callable[[], datetime] | None = None,
        timezone: tzinfo = UTC,
    ) -> None:
        if not isinstance(source, RegisterSource):
            raise InvalidQuery(
                "RowQuery() needs a register: Register.load(...), a MemoryRegister or any "
                f"RegisterSource implementation, got {show(source, 80)}"
            )
        if clock is not None and not callable(clock):
            raise InvalidQuery(
                f"clock must be a callable returning an aware datetime, got {show(clock, 80)}"
            )
        if not isinstance(timezone, tzinfo):
            raise InvalidQuery(
                f"timezone must be a tzinfo (e.g. ZoneInfo('Europe/Berlin')), got "
                f"{show(timezone, 80)}"
            )
        self._source = source
        self._clock = clock
        self._timezone = timezone
        self._groups: tuple[str, ...] = ()
        self._today: date | None = None
        self._filters: tuple[Term | Q, ...] = ()
        self._ranges: tuple[_Range, ...] = ()
        self._sort: tuple[str, ...] = ()
        self._search: str | None = None
        self._archived: ArchivedMode = "active"
        self._includes: tuple[str, ...] = ()
        self._linked_from: tuple[tuple[RowQuery, str], ...] = ()
        self._computed: tuple[tuple[str, str, Any, Any], ...] = ()  # (kind, name, spec, query)
        # The last plan and the definition it was validated against (RowQuery is
        # immutable: the plan changes only when the source's definition does).
        self._planned: tuple[RegisterInfo, QueryPlan] | None = None

    def _copy(self, **changes: Any) -> RowQuery:
        conditions = count_terms(changes.get("filters", self._filters)) + len(
            changes.get("ranges", self._ranges)
        )
        depth = nesting(changes.get("filters", self._filters))
        if depth > MAX_NESTING:
            raise InvalidQuery(
                f"Q groups nest at most {MAX_NESTING} levels deep in a query, got {depth}"
            )
        if conditions > MAX_CONDITIONS:
            raise InvalidQuery(
                f"a query takes at most {MAX_CONDITIONS:,} conditions (where, filter, since "
                f"and until together), got {conditions:,}"
            )
        new = object.__new__(RowQuery)
        for slot in RowQuery.__slots__:
            object.__setattr__(new, slot, changes.get(slot.lstrip("_"), getattr(self, slot)))
        new._planned = None
        return new

    @property
    def source(self) -> RegisterSource:
        """The register this query reads."""
        return self._source

    # -- builders ------------------------------------------------------------------------

    def where(self, *filters: Mapping[str, Any] | Q, **kwargs: Any) -> RowQuery:
        """Add conditions (ANDed): ``field=value`` for equality, ``field__op=value`` for an
        operator (``ne lt lte gt gte in between contains icontains not_contains
        not_icontains starts_with is_null during``). A mapping allows field names that are
        not Python identifiers; :class:`Q` expressions add OR / NOT / nested groups.

        Example::

            q.where(status="paid", amount__gte=100)
            q.where({"Due date__lt": date(2026, 3, 1)})
            q.where(Q(status="paid") | Q(amount__gte=100), ~Q(tags__contains="test"))
        """
        added: list[Term | Q] = []
        for item in filters:
            if isinstance(item, Q):
                added.append(item)
            else:
                added.extend(terms_of(item, {}, "where()"))
        added.extend(terms_of(None, kwargs, "where()"))
        return self._copy(filters=self._filters + tuple(added))

    def filter(self, field: str, op: str, value: Any) -> RowQuery:
        """Add one condition spelled out: ``filter("amount", "gte", 100)``.

        Example::

            q.filter("Due date", "lt", date(2026, 3, 1))
        """
        if not isinstance(field, str) or not isinstance(op, str):
            raise InvalidQuery(f"filter() takes (field, op, value), got {show(field)}, {show(op)}")
        if op not in OPERATORS:
            raise InvalidQuery(f"unknown operator {show(op)}; operators: {', '.join(OPERATORS)}")
        return self._copy(filters=(*self._filters, Term(field, op, value)))

    def since(self, value: date | datetime, *, field: str | None = None) -> RowQuery:
        """Rows whose date field is on or after ``value``.

        The field is ``field=``, else the register's ``date_field``, else its only
        date/datetime field, else ``created_at``. A ``date`` on a datetime field means
        midnight UTC.

        Example::

            q.since(date(2026, 1, 1))
        """
        return self._range("since", value, field)

    def until(self, value: date | datetime, *, field: str | None = None) -> RowQuery:
        """Rows whose date field is on or before ``value`` (a ``date`` includes that whole
        day). Field selection as in :meth:`since`.

        Example::

            q.since(date(2026, 1, 1)).until(date(2026, 1, 31))
        """
        return self._range("until", value, field)

    def _range(self, op: Literal["since", "until"], value: Any, field: str | None) -> RowQuery:
        if not isinstance(value, date):
            raise InvalidQuery(f"{op}() takes a date or datetime, got {show(value, 80)}")
        if isinstance(value, datetime) and value.utcoffset() is None:
            raise InvalidQuery(f"{op}() needs a timezone-aware datetime, got {show(value)}")
        if field is not None and not isinstance(field, str):
            raise InvalidQuery(f"{op}(field=...) takes a field name, got {show(field, 80)}")
        return self._copy(ranges=(*self._ranges, _Range(op, value, field)))

    def order_by(self, *fields: str) -> RowQuery:
        """Sort by fields (replacing any earlier ``order_by``); ``-name`` is descending.
        The row id is always the final tie-break, so the order is total. NULL sorts as the
        largest value (last ascending, first descending).

        Example::

            q.order_by("-issued_at", "number")
        """
        for name in fields:
            if not isinstance(name, str) or name in ("", "-"):
                raise InvalidQuery(
                    f"order_by() takes field names like '-issued_at', got {show(name)}"
                )
        if len(fields) > MAX_SORT:
            raise InvalidQuery(
                f"order_by() takes at most {MAX_SORT} fields (the row id is added after "
                f"them), got {len(fields)}"
            )
        return self._copy(sort=tuple(fields))

    def search(self, text: str, *, prefix: bool = False) -> RowQuery:
        """Full-text search over the text, email, url and select fields: all words must
        occur; ``"quoted phrases"``, ``or``, ``-word`` work as in web search engines and
        ``word*`` matches words that begin so. ``prefix=True`` reads the last term as a
        word's beginning (as-you-type: ``"acme co"`` finds "Acme Corp").

        Example::

            q.search("acme consulting")
            q.search("acme co", prefix=True)
        """
        if not isinstance(prefix, bool):
            raise InvalidQuery(f"search(prefix=...) takes True or False, got {show(prefix)}")
        if not isinstance(text, str) or not text.strip():
            raise InvalidQuery(f"search() takes non-empty text, got {show(text, 80)}")
        if len(text) > MAX_SEARCH_CHARS:
            raise InvalidQuery(
                f"search() takes at most {MAX_SEARCH_CHARS:,} characters, got {len(text):,}"
            )
        problem = text_problem(text)
        if problem is not None:
            raise InvalidQuery(f"search() text must not contain {problem}, got {show(text, 80)}")
        return self._copy(search=as_you_type(text.strip()) if prefix else text.strip())

    def archived(self) -> RowQuery:
        """Only soft-archived rows (by default queries see only active rows).

        Example::

            await RowQuery(invoices).archived().where(status="void").restore()
        """
        return self._copy(archived="archived")

    def with_archived(self) -> RowQuery:
        """Active and archived rows together."""
        return self._copy(archived="all")

    def include(self, *fields: str) -> RowQuery:
        """Fetch the rows referenced by these reference fields along with each page: they
        appear in ``row.included[name]``.

        Example::

            page = await RowQuery(invoices).include("customer").scroll()
            page.items[0].included["customer"]["name"]
        """
        for name in fields:
            if not isinstance(name, str):
                raise InvalidQuery(f"include() takes reference field names, got {show(name, 80)}")
        return self._copy(includes=tuple(dict.fromkeys(self._includes + fields)))

    def linked_from(self, query: RowQuery, field: str) -> RowQuery:
        """Only rows that rows of ``query`` (another register's query, with its own
        filters) point to through their reference field ``field``: the reverse of a link,
        e.g. the customers that have a paid invoice. ANDed with the other conditions.

        Example::

            paid = RowQuery(invoices).where(status="paid")
            buyers = RowQuery(customers).linked_from(paid, "customer")
        """
        if not isinstance(query, RowQuery):
            raise InvalidQuery(f"linked_from() takes a RowQuery, got {show(query, 80)}")
        if not isinstance(field, str):
            raise InvalidQuery(f"linked_from() takes a field name, got {show(field, 80)}")
        return self._copy(linked_from=(*self._linked_from, (query, field)))

    def lookup(self, name: str, path: str) -> RowQuery:
        """Add ``row.included[name]``: the value of a field of the linked row, ``path``
        being ``reference.field`` (a tuple of values through a many reference; ``None``
        without a link). Computed with each page, read-only.

        Example::

            rows = await RowQuery(invoices).lookup("country", "customer.country").all()
            rows[0].included["country"]  # 'DE'
        """
        self._check_computed_name(name, "lookup")
        if not isinstance(path, str) or "." not in path:
            raise InvalidQuery(f"lookup() takes a path 'reference.field', got {show(path, 80)}")
        return self._copy(computed=(*self._computed, ("lookup", name, path, None)))

    def rollup(self, name: str, aggregate: Aggregate, *, query: RowQuery, via: str) -> RowQuery:
        """Add ``row.included[name]``: ``aggregate`` (``Sum("total")``, ``Count()``, ...) of
        the rows of ``query`` (another register's query, with its filters) whose reference
        field ``via`` points to the row. Computed with each page by one aggregate query,
        read-only; a row nothing points to gets the aggregate of no rows (``Count()``: 0,
        ``Sum``: ``None``).

        Example::

            paid = RowQuery(invoices).where(status="paid")
            rows = await RowQuery(customers).rollup("paid", Sum("total"), query=paid,
                                                    via="customer").all()
        """
        self._check_computed_name(name, "rollup")
        if not isinstance(aggregate, Aggregate):
            raise InvalidQuery(
                f"rollup() takes an aggregate such as Sum('total') or Count(), got "
                f"{show(aggregate, 80)}"
            )
        if not isinstance(query, RowQuery):
            raise InvalidQuery(f"rollup(query=...) takes a RowQuery, got {show(query, 80)}")
        if not isinstance(via, str):
            raise InvalidQuery(f"rollup(via=...) takes a field name, got {show(via, 80)}")
        return self._copy(computed=(*self._computed, ("rollup", name, (aggregate, via), query)))

    def formula(self, name: str, source: str) -> RowQuery:
        """Add ``row.included[name]``: a formula over the row's fields, computed with each
        page (read-only). The language is parsed by the library (never ``eval``) and
        type-checked when the query is planned: ``{field}`` references, numbers, ``"text"``,
        ``+ - * /`` (exact decimals; ``/`` by zero gives ``None``), comparisons, ``and`` /
        ``or`` / ``not``, ``concat``, ``if``, ``coalesce``, ``lower``, ``upper``, ``len``,
        ``round``. A missing operand gives ``None``.

        Example::

            q = RowQuery(invoices).formula("gross", "round({total} * 1.19, 2)")
        """
        self._check_computed_name(name, "formula")
        if not isinstance(source, str):
            raise InvalidQuery(f"formula() takes the formula as text, got {show(source, 80)}")
        return self._copy(computed=(*self._computed, ("formula", name, source, None)))

    def _check_computed_name(self, name: Any, what: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidQuery(f"{what}() takes a non-empty name, got {show(name, 80)}")
        if any(c[1] == name for c in self._computed) or name in self._includes:
            raise InvalidQuery(f"{what}() name {name!r} is already used by this query")

    def group_by(self, *fields: str) -> RowQuery:
        """Group the matching rows by these fields for :meth:`aggregate` (replacing any
        earlier ``group_by``). Any field ``facets`` can count is groupable; a multi_select
        field puts a row in the group of each of its choices (rows without one: ``None``).

        Example::

            await RowQuery(invoices).group_by("status").aggregate(total=Sum("total"))
        """
        for name in fields:
            if not isinstance(name, str):
                raise InvalidQuery(f"group_by() takes field names, got {show(name, 80)}")
        if len(fields) > MAX_SORT:
            raise InvalidQuery(f"group_by() takes at most {MAX_SORT} fields, got {len(fields)}")
        return self._copy(groups=tuple(fields))

    # -- planning ------------------------------------------------------------------------

    async def plan(self) -> QueryPlan:
        """Validate the query against the register's fields (raises on any mistake)."""
        info = await self._source.describe()
        planned = self._planned
        if planned is not None and planned[0] is info:  # same query, same definition
            return planned[1]
        self._today = None
        linked: list[bool] = []
        plan = await self._plan(info, linked)
        # a plan with relative dates is valid only today; one with linked filters only
        # while the linked register's fields stay as they are
        if self._today is None and not linked:
            self._planned = (info, plan)
        return plan

    async def _plan(self, info: RegisterInfo, linked: list[bool]) -> QueryPlan:
        conditions = [await self._node(info, item, linked) for item in self._filters]
        for kind, _name, spec, _query in self._computed:
            if kind == "formula":
                compile_formula(spec, info)  # a mistake fails before any row is read
        for query, name in self._linked_from:
            linked.append(True)
            conditions.append(await _reverse(info, query, name))
        conditions += [self._range_condition(info, rng) for rng in self._ranges]
        sort: list[SortKey] = []
        for spec in self._sort:
            descending = spec.startswith("-")
            name = spec[1:] if descending else spec
            if not any(x.name == name for x in info.fields) and "." in name:
                head, _, rest = name.partition(".")
                via = next((x for x in info.fields if x.name == head), None)
                if via is not None and via.kind is FieldType.REFERENCE:
                    linked.append(True)
                    sort.append(await self._linked_sort(via, rest, descending, sort))
                    continue
            f = info.field(name)
            if not f.sortable or f.many:
                raise InvalidQuery(
                    f"cannot sort by {f.name!r} ({f.kind.value}); sortable fields: "
                    + ", ".join(repr(x.name) for x in info.fields if x.sortable)
                    + f" and {', '.join(SYSTEM)}"
                )
            if any(k.label == f.name for k in sort):
                raise InvalidQuery(f"order_by() names {f.name!r} twice")
            sort.append(SortKey(f, descending))
        if not any(k.field is ID for k in sort):
            sort.append(SortKey(ID, sort[-1].descending if sort else False))
        includes: list[Field] = []
        for key in sort:  # a linked sort key is read from the included linked row
            if key.via is not None and key.via not in includes:
                includes.append(key.via)
        for name in self._includes:
            f = info.field(name)
            if f.kind is not FieldType.REFERENCE or is_system(f):
                refs = [x.name for x in info.fields if x.kind is FieldType.REFERENCE]
                raise InvalidQuery(
                    f"include() takes reference fields; {name!r} is {f.kind.value}; "
                    f"reference fields: {', '.join(map(repr, refs)) or '(none)'}"
                )
            if f not in includes:
                includes.append(f)
        return QueryPlan(
            info, tuple(conditions), tuple(sort), self._search, self._archived, tuple(includes)
        )

    async def _node(self, info: RegisterInfo, item: Term | Q, linked: list[bool]) -> Filter:
        if isinstance(item, Term):
            path = _link_path(info, item)
            if path is not None:
                return await self._related(info, item, *path, linked)
            cond = self._condition(info, item)
            if cond.op == "during":
                return self._period(cond)
            return cond
        nodes = tuple([await self._node(info, part, linked) for part in item.parts])
        if item.kind == "not":
            return Not(nodes[0])
        if len(nodes) == 1:
            return nodes[0]
        return AnyOf(nodes) if item.kind == "or" else AllOf(nodes)

    async def _linked_sort(
        self, via: Field, name: str, descending: bool, sort: list[SortKey]
    ) -> SortKey:
        """``order_by("customer.name")``: the linked row's field as a sort key."""
        if via.many:
            raise InvalidQuery(f"cannot sort by {via.name}.{name}: {via.name!r} links to many rows")
        describe = getattr(self._source, "describe_target", None)
        if describe is None:
            raise InvalidQuery(
                f"cannot sort by {via.name}.{name}: {self._source!r} cannot describe the "
                "rows it links to (it has no describe_target())"
            )
        target: RegisterInfo = await describe(via)
        f = target.field(name)
        if not f.sortable or f.many or is_system(f):
            raise InvalidQuery(
                f"cannot sort by {via.name}.{name} ({f.kind.value}); sortable fields of "
                f"{target.name!r}: "
                + ", ".join(repr(x.name) for x in target.fields if x.sortable and not x.many)
            )
        key = SortKey(f, descending, via, target)
        if any(k.label == key.label for k in sort):
            raise InvalidQuery(f"order_by() names {key.label!r} twice")
        return key

    async def _related(
        self, info: RegisterInfo, item: Term, via: Field, rest: str, linked: list[bool]
    ) -> Filter:
        """``customer.country`` (or ``customer__country``): a condition on the fields of the
        rows a reference field points to."""
        describe = getattr(self._source, "describe_target", None)
        if describe is None:
            raise InvalidQuery(
                f"{show(item.name)} filters on the rows {via.name!r} links to, but "
                f"{self._source!r} cannot describe them (it has no describe_target())"
            )
        target: RegisterInfo = await describe(via)
        inner = Term(rest, item.op, item.value)
        if _link_path(target, inner) is not None:
            raise InvalidQuery(
                f"{show(item.name)} goes through two references; filter through one "
                f"(fields of {target.name!r}: "
                f"{', '.join(repr(f.name) for f in target.fields)})"
            )
        linked.append(True)
        cond = self._condition(target, inner)
        node = self._period(cond) if cond.op == "during" else cond
        return Related(via, target, node)

    def _period(self, cond: Condition) -> Filter:
        """``during`` as a half-open range of the field's values: whole days in the
        query's time zone, for datetimes their UTC instants."""
        if self._today is None:
            now = self._clock() if self._clock is not None else datetime.now(UTC)
            if not isinstance(now, datetime) or now.utcoffset() is None:
                raise InvalidQuery(
                    f"clock() must return a timezone-aware datetime, got {show(now, 80)}"
                )
            self._today = local_today(now, self._timezone)
        first, end = cond.value.days(self._today)
        f = cond.field
        if f.kind is FieldType.DATE:
            return AllOf((Condition(f, "gte", first), Condition(f, "lt", end)))
        low, high = (
            datetime.combine(day, time.min, tzinfo=self._timezone).astimezone(UTC)
            for day in (first, end)
        )
        return AllOf((Condition(f, "gte", low), Condition(f, "lt", high)))

    @staticmethod
    def _condition(info: RegisterInfo, flt: Term) -> Condition:
        name, op = flt.name, flt.op
        if op is None:
            if any(f.name == name for f in info.fields) or name in SYSTEM:
                op = "eq"
            elif "__" in name:
                name, op = name.rsplit("__", 1)
                if op not in OPERATORS and not (
                    any(f.name == name for f in info.fields) or name in SYSTEM
                ):
                    info.field(flt.name)  # neither a field nor field__operator
            else:
                op = "eq"
        f = info.field(name)
        if op not in OPERATORS:
            raise InvalidQuery(
                f"unknown operator {show(op)} in {show(flt.name)}; operators for {f.name!r} "
                f"({f.kind.value}): {', '.join(sorted(f.operators))}"
            )
        if op in ("eq", "ne") and flt.value is None:
            op, value = "is_null", op == "eq"
            return Condition(f, op, value)
        if op not in f.operators:
            raise InvalidQuery(
                f"operator {op!r} does not apply to field {f.name!r} ({f.kind.value}); "
                f"allowed: {', '.join(sorted(f.operators))}"
            )
        return Condition(f, op, _coerce_for(f, op, flt.value))

    @staticmethod
    def _range_condition(info: RegisterInfo, rng: _Range) -> Condition:
        f = _date_field(info, rng.field, rng.op)
        value: Any = rng.value
        if f.kind is FieldType.DATE:
            if isinstance(value, datetime):
                raise InvalidValue(
                    f"{rng.op}() on date field {f.name!r} takes a date, got a datetime; "
                    "pass value.date()",
                    field=f.name,
                    value=value,
                )
            return Condition(f, "gte" if rng.op == "since" else "lte", value)
        if isinstance(value, datetime):
            try:
                moment = value.astimezone(UTC)
            except (OverflowError, ValueError):
                raise InvalidValue(
                    f"{rng.op}() takes a datetime within the years 1-9999 in UTC, got "
                    f"{show(value)}",
                    field=f.name,
                    value=value,
                ) from None
            return Condition(f, "gte" if rng.op == "since" else "lte", moment)
        if rng.op == "since":
            return Condition(f, "gte", datetime.combine(value, time.min, tzinfo=UTC))
        return Condition(f, "lte", datetime.combine(value, time.max, tzinfo=UTC))

    # -- terminal methods ----------------------------------------------------------------

    async def scroll(self, page_size: int = 50, cursor: str | None = None) -> Page:
        """One page of keyset pagination: stable while rows are inserted or deleted, same
        cost at any depth. Pass the returned ``next_cursor`` back to continue (``None`` on
        the last page); keep the query otherwise unchanged.

        Example::

            page = await q.scroll(page_size=50)
            while page.next_cursor:
                page = await q.scroll(page_size=50, cursor=page.next_cursor)
        """
        size = _check_size(page_size, "page_size")
        plan = await self.plan()
        after = _cursor.decode(cursor, plan) if cursor is not None else None
        rows = await self._source.fetch_rows(plan, limit=size + 1, after=after)
        more = len(rows) > size
        rows = rows[:size]
        items = await self._with_includes(plan, rows)
        next_cursor = _cursor.encode(plan, items[-1]) if more and items else None
        return Page(items=tuple(items), size=size, next_cursor=next_cursor)

    async def paginate(self, page: int = 1, size: int = 50) -> Page:
        """Page ``page`` (1-based) of ``size`` rows, with the ``total`` count.

        Example::

            page = await q.order_by("number").paginate(page=2, size=20)
            page.total, page.pages
        """
        size = _check_size(size, "size")
        last = INT_MAX // size
        if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= last:
            raise InvalidQuery(f"page must be an int from 1 to {last:,}, got {show(page)}")
        plan = await self.plan()
        rows = await self._source.fetch_rows(plan, limit=size, offset=(page - 1) * size)
        total = await self._source.count_rows(plan)
        items = await self._with_includes(plan, rows)
        return Page(items=tuple(items), size=size, total=total, page=page)

    async def all(self, limit: int | None = None) -> list[RowResult]:
        """Every matching row in order (at most ``limit``).

        Example::

            rows = await q.where(status="draft").all()
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= INT_MAX
        ):
            raise InvalidQuery(
                f"limit must be an int from 0 to {INT_MAX} or None, got {show(limit)}"
            )
        plan = await self.plan()
        rows = await self._source.fetch_rows(plan, limit=limit)
        return await self._with_includes(plan, rows)

    async def first(self) -> RowResult | None:
        """The first matching row in order, or ``None``.

        Example::

            latest = await q.order_by("-issued_at").first()
        """
        rows = await self.all(limit=1)
        return rows[0] if rows else None

    async def count(self) -> int:
        """How many rows match.

        Example::

            n = await q.where(status="paid").count()
        """
        return await self._source.count_rows(await self.plan())

    async def facets(self, *fields: str, limit: int = 20) -> dict[str, tuple[FacetCount, ...]]:
        """Value counts of each field over the matching rows, most frequent first (ties by
        value); multi_select counts each chosen value; ``None`` counts rows without one.

        Example::

            counts = await q.facets("status", "tags")
            counts["status"]  # (FacetCount('paid', 120), FacetCount('draft', 7))
        """
        if not fields:
            raise InvalidQuery("facets() needs at least one field name")
        limit = _check_size(limit, "limit")
        plan = await self.plan()
        chosen: dict[str, Field] = {}
        for name in fields:
            if not isinstance(name, str):
                raise InvalidQuery(f"facets() takes field names, got {show(name, 80)}")
            f = plan.info.field(name)
            if not f.facetable or is_system(f):
                raise InvalidQuery(
                    f"cannot facet on {name!r} ({f.kind.value}); facetable fields: "
                    + ", ".join(repr(x.name) for x in plan.info.fields if x.facetable)
                )
            chosen[name] = f
        together = getattr(self._source, "facet_counts_together", None)
        if together is not None:  # a source that counts several fields at once (Register)
            counted = await together(plan, list(chosen.values()), limit)
            return {name: tuple(counted[name]) for name in chosen}
        return {
            name: tuple(await self._source.facet_counts(plan, f, limit))
            for name, f in chosen.items()
        }

    async def aggregate(
        self,
        aggregates: Mapping[str, Aggregate] | None = None,
        /,
        *,
        limit: int = MAX_PAGE,
        **named: Aggregate,
    ) -> list[AggregateRow]:
        """Aggregates of the matching rows per group of :meth:`group_by` (one row without
        ``group_by``), groups in ascending order of their values (``None`` last), at most
        ``limit`` of them. ``Count()``, ``Sum(field)``, ``Avg(field)``, ``Min(field)``,
        ``Max(field)``; a mapping allows result names that are not identifiers.

        Example::

            rows = await (
                RowQuery(invoices).where(total__gte=100).group_by("status")
                .aggregate(total=Sum("total"), n=Count())
            )
            rows[0]["status"], rows[0]["total"], rows[0]["n"]
        """
        limit = _check_size(limit, "limit")
        if aggregates is not None and not isinstance(aggregates, Mapping):
            raise InvalidQuery(
                f"aggregate() takes a mapping and/or keywords, got {show(aggregates, 80)}"
            )
        plan = await self.plan()
        groups = check_groups(plan.info, self._groups)
        specs = check_aggregates(plan.info, [*(aggregates or {}).items(), *named.items()], groups)
        runner = getattr(self._source, "aggregate_rows", None)
        if runner is None:  # any RegisterSource: aggregate its matching rows in Python
            rows = await self._source.fetch_rows(plan)
            return evaluate_aggregates(plan, rows, groups, specs, limit)
        result: list[AggregateRow] = await runner(plan, groups, specs, limit)
        return result

    async def update(self, values: Mapping[str, Any], *, actor: Any = None) -> int:
        """Change the given fields of every matching row (values coerced and validated
        like an insert's, unique fields enforced), all or nothing; returns how many rows
        changed. Needs a source with ``update_rows`` (``Register``, ``MemoryRegister``).

        Example::

            n = await RowQuery(invoices).where(status="draft").update({"status": "void"},
                                                                      actor=user_id)
        """
        if not isinstance(values, Mapping) or not values:
            raise InvalidValue(
                f"update() takes a non-empty mapping of field name to value, got {show(values, 80)}"
            )
        plan = await self.plan()
        runner = getattr(self._source, "update_rows", None)
        if runner is None:
            raise InvalidQuery(
                f"{self._source!r} cannot update rows: the source has no update_rows()"
            )
        changed: int = await runner(plan, values, actor=actor)
        return changed

    async def archive(self) -> int:
        """Soft-archive the matching active rows; returns how many were archived.

        Example::

            await RowQuery(invoices).where(status="void").archive()
        """
        plan = replace(await self.plan(), archived="active")
        return await self._source.archive_rows(plan, True)

    async def restore(self) -> int:
        """Restore the matching archived rows; returns how many were restored.

        Example::

            await RowQuery(invoices).where(status="void").restore()
        """
        plan = replace(await self.plan(), archived="archived")
        return await self._source.archive_rows(plan, False)

    async def delete(self) -> int:
        """Hard-delete the matching rows (active ones, or as chosen with ``archived()`` /
        ``with_archived()``); returns how many. Rows still referenced elsewhere raise
        :class:`ReferenceViolation` and nothing is deleted.

        Example::

            await RowQuery(invoices).archived().delete()
        """
        return await self._source.delete_rows(await self.plan())

    async def _with_includes(self, plan: QueryPlan, rows: list[RowResult]) -> list[RowResult]:
        rows = await self._with_linked(plan, rows)
        if not self._computed or not rows:
            return rows
        extra: dict[uuid.UUID, dict[str, Any]] = {row.id: {} for row in rows}
        for kind, name, spec, query in self._computed:
            if kind == "formula":
                formula = compile_formula(spec, plan.info)
                values = {row.id: formula.evaluate(row.values) for row in rows}
            elif kind == "lookup":
                values = await lookup_values(self._source, plan.info, spec, rows)
            else:
                aggregate, via = spec
                values = await rollup_values(plan.info, aggregate, query, via, rows)
            for row in rows:
                extra[row.id][name] = values[row.id]
        return [replace(row, included={**row.included, **extra[row.id]}) for row in rows]

    async def _with_linked(self, plan: QueryPlan, rows: list[RowResult]) -> list[RowResult]:
        if not plan.includes or not rows:
            return rows
        extra: dict[uuid.UUID, dict[str, Any]] = {row.id: {} for row in rows}
        for f in plan.includes:
            ids: list[uuid.UUID] = []
            for row in rows:
                value = row.values.get(f.name)
                if value is not None:
                    ids.extend(value if f.many else [value])
            targets = await self._source.fetch_targets(f, list(dict.fromkeys(ids)))
            for row in rows:
                value = row.values.get(f.name)
                if f.many:
                    extra[row.id][f.name] = tuple(targets[v] for v in (value or ()) if v in targets)
                else:
                    extra[row.id][f.name] = targets.get(value) if value is not None else None
        return [replace(row, included={**row.included, **extra[row.id]}) for row in rows]

    def __repr__(self) -> str:
        parts = [f"RowQuery({self._source!r})"]
        parts += [
            f".where({f!r})" if isinstance(f, Q) else f".where({f.name!r}, {f.op!r}, {f.value!r})"
            for f in self._filters
        ]
        if self._sort:
            parts.append(f".order_by{self._sort!r}")
        return "".join(parts)


async def _reverse(info: RegisterInfo, query: RowQuery, name: str) -> Filter:
    """The filter of ``linked_from(query, name)``: a :class:`Referenced` node when both
    registers are stored ones (Postgres runs it as a subquery), else the ids the other
    query's rows point to."""
    other = await query.plan()
    f = other.info.field(name)
    if f.kind is not FieldType.REFERENCE or f.target != info.name or is_system(f):
        refs = [
            x.name
            for x in other.info.fields
            if x.kind is FieldType.REFERENCE and x.target == info.name
        ]
        raise InvalidQuery(
            f"linked_from() needs a reference field of {other.info.name!r} pointing to "
            f"{info.name!r}; {name!r} is not one; such fields: "
            f"{', '.join(map(repr, refs)) or '(none)'}"
        )
    if info.register_id is not None and other.info.register_id is not None:
        return Referenced(f, other)
    ids: dict[uuid.UUID, None] = {}
    for row in await query.source.fetch_rows(other):
        value = row.values.get(f.name)
        for target in (value or ()) if f.many else ((value,) if value is not None else ()):
            ids[target] = None
    return Condition(ID, "in", tuple(ids))


def _link_path(info: RegisterInfo, item: Term) -> tuple[Field, str] | None:
    """``(reference field, rest)`` when a filter names a field of linked rows —
    ``customer.country``, ``customer.country__icontains`` or ``customer__country`` — and
    not a field (or ``field__operator``) of the register itself."""
    name = item.name
    names = {f.name for f in info.fields}
    if name in names or name in SYSTEM:
        return None
    if item.op is None and "__" in name:
        head, op = name.rsplit("__", 1)
        if op in OPERATORS and (head in names or head in SYSTEM):
            return None
    for sep in (".", "__"):
        head, found, rest = name.partition(sep)
        if not found or not rest:
            continue
        f = next((x for x in info.fields if x.name == head), None)
        if f is not None and f.kind is FieldType.REFERENCE:
            return f, rest
    return None


def _date_field(info: RegisterInfo, name: str | None, op: str) -> Field:
    if name is not None:
        f = info.field(name)
    elif info.date_field is not None:
        f = info.field(info.date_field)
    else:
        dated = [f for f in info.fields if f.kind in (FieldType.DATE, FieldType.DATETIME)]
        if len(dated) > 1:
            raise InvalidQuery(
                f"{op}() cannot pick a date field: register {info.name!r} has "
                f"{', '.join(repr(f.name) for f in dated)}; pass field=... or set the "
                "register's date_field"
            )
        f = dated[0] if dated else SYSTEM["created_at"]
    if f.kind not in (FieldType.DATE, FieldType.DATETIME):
        raise InvalidQuery(f"{op}() needs a date or datetime field; {f.name!r} is {f.kind.value}")
    return f


def _check_size(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE:
        raise InvalidQuery(f"{what} must be an int from 1 to {MAX_PAGE}, got {show(value)}")
    return value
