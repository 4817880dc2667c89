# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``Repository[Model]``: typed CRUD + filter / sort / paginate on SQLAlchemy 2 ``select()``."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import _cursor
from ._errors import InvalidArgument, InvalidFilter, NotFound
from ._filters import ModelInfo, keyset_after, model_info, shown
from ._rejections import rejected_by_postgres
from ._tenant import current_org

ModelT = TypeVar("ModelT")

Filters = Mapping[str, Any]
Sort = Sequence[str] | str


@dataclass(frozen=True)
class Page(Generic[ModelT]):
    """One page of :meth:`Repository.list`: ``items`` plus the ``total`` matching rows.

    Example::

        page = await repo.list(limit=20, offset=40)
        print(len(page.items), "of", page.total)
    """

    items: list[ModelT]
    total: int
    offset: int
    limit: int

    @property
    def has_more(self) -> bool:
        """Whether rows exist after this page."""
        return self.offset + len(self.items) < self.total


@dataclass(frozen=True)
class CursorPage(Generic[ModelT]):
    """One page of :meth:`Repository.scroll`: ``items`` and the cursor of the next page
    (``None`` once the end is reached).

    Example::

        page = await repo.scroll(limit=100)
        while page.next_cursor:
            page = await repo.scroll(limit=100, cursor=page.next_cursor)
    """

    items: list[ModelT]
    next_cursor: str | None


class Repository(Generic[ModelT]):
    """Typed CRUD for one model, bound to one ``AsyncSession``.

    Construct per unit of work (cheap: model metadata is compiled once per class), either
    ``Repository(session, Invoice)`` or via a subclass that sets ``model``. Writes flush (so
    constraint and tenant errors surface at the call) but never commit: the session's owner
    (e.g. ``get_session()``) commits.

    Filters and sorts usually come from user input, so only allow-listed fields can be
    named: ``filter_fields`` / ``sort_fields`` on the repository (class attributes or
    constructor arguments), else ``__filter_fields__`` / ``__sort_fields__`` on the model,
    else only the primary key. ``"__all__"`` allows every scalar column, deliberately.
    Values are checked against the column before anything is sent (integer width, text
    length, NUL / invalid UTF-8, datetime range, ``in`` list size): bad input raises
    :class:`InvalidFilter` / :class:`InvalidSort` / :class:`InvalidCursor` /
    :class:`InvalidValue`, never a driver error.

    Filters: ``{"field": value}`` (equality; ``None`` means IS NULL) or
    ``{"field__op": value}`` with op one of ``eq ne lt lte gt gte in not_in like ilike
    is_null between``. Sort: ``["-issued_at", "number"]`` (``-`` = descending; the primary
    key is always added as the final tie-break; NULLs sort last).

    Example::

        class Invoices(Repository[Invoice]):
            model = Invoice
            filter_fields = ("status", "amount", "issued_at")

        async with get_session() as session:
            repo = Invoices(session)
            page = await repo.list(filters={"status": "paid", "amount__gte": 100},
                                   sort=["-issued_at"], limit=20)
    """

    model: type[ModelT]
    filter_fields: Collection[str] | str | None = None
    sort_fields: Collection[str] | str | None = None
    max_limit: int = 1000

    def __init__(
        self,
        session: AsyncSession,
        model: type[ModelT] | None = None,
        *,
        filter_fields: Collection[str] | str | None = None,
        sort_fields: Collection[str] | str | None = None,
    ) -> None:
        if not isinstance(session, AsyncSession):
            raise InvalidArgument(
                f"session must be an sqlalchemy AsyncSession (e.g. from get_session()), "
                f"got {session!r}"
            )
        if model is None:
            model = getattr(type(self), "model", None)
            if model is None:
                raise InvalidArgument(
                    "Repository needs a model: Repository(session, Invoice), or a subclass "
                    "that sets 'model = Invoice'"
                )
        self._info: ModelInfo = model_info(
            model,
            self.filter_fields if filter_fields is None else filter_fields,
            self.sort_fields if sort_fields is None else sort_fields,
        )
        self.model = model
        self.session = session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.model.__name__}>"

    # -- reads -------------------------------------------------------------------------
    def _pk(self, ident: Any) -> Any:
        pk = self._info.pk
        try:
            return pk.value(ident, "id")
        except InvalidFilter:
            raise InvalidArgument(
                f"{self.model.__name__} id {shown(ident)} is not a valid value for primary key "
                f"{pk.name!r}"
            ) from None

    async def get_or_none(self, ident: Any) -> ModelT | None:
        """The row with primary key ``ident``, or ``None`` (also when outside the tenant).

        Example::

            invoice = await repo.get_or_none(invoice_id)
        """
        ident = self._pk(ident)
        with rejected_by_postgres(reading=True):
            result: ModelT | None = await self.session.get(self.model, ident)
        return result

    async def get(self, ident: Any) -> ModelT:
        """The row with primary key ``ident``; raises :class:`NotFound` if there is none.

        Example::

            invoice = await repo.get(invoice_id)
        """
        obj = await self.get_or_none(ident)
        if obj is None:
            raise NotFound(self._not_found(ident))
        return obj

    def _not_found(self, ident: Any) -> str:
        scope = current_org()
        where = f" in tenant_scope({scope})" if scope is not None else ""
        return f"{self.model.__name__} with {self._info.pk.name}={shown(ident)} not found{where}"

    def _check_limits(self, limit: Any, offset: Any = 0) -> None:
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= self.max_limit
        ):
            raise InvalidArgument(f"limit must be an int from 1 to {self.max_limit}, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgument(f"offset must be an int >= 0, got {offset!r}")

    async def list(
        self,
        *,
        filters: Filters | None = None,
        sort: Sort | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[ModelT]:
        """A page of rows matching ``filters`` in ``sort`` order, with the ``total`` count.

        One query: the total comes from ``count(*) OVER ()`` next to the rows (a second
        count query is made only when the page is past the end).

        Example::

            page = await repo.list(filters={"status": "paid", "amount__gte": 100},
                                   sort=["-issued_at"], offset=0, limit=20)
        """
        self._check_limits(limit, offset)
        info = self._info
        where = info.where(filters)
        keys = info.sort_keys(sort)
        stmt = (
            select(self.model, func.count().over())
            .where(*where)
            .order_by(*(k.order_by() for k in keys))
            .offset(offset)
            .limit(limit)
        )
        with rejected_by_postgres(reading=True):
            rows = (await self.session.execute(stmt)).all()
        if rows:
            total = int(rows[0][1])
            items: list[ModelT] = [row[0] for row in rows]
        else:
            items = []
            total = await self.count(filters=filters) if offset else 0
        return Page(items=items, total=total, offset=offset, limit=limit)

    async def scroll(
        self,
        *,
        filters: Filters | None = None,
        sort: Sort | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> CursorPage[ModelT]:
        """Keyset pagination: the next ``limit`` rows after ``cursor`` (``None``: from the start).

        Stable under concurrent inserts and deletes (no row is returned twice and no row that
        existed throughout is skipped), and O(limit) per page however deep you go. Keep
        ``filters`` and ``sort`` unchanged while scrolling; ties on non-unique sort columns
        are broken by the primary key.

        Example::

            page = await repo.scroll(sort=["-created_at"], limit=100)
            while page.next_cursor:
                page = await repo.scroll(sort=["-created_at"], limit=100,
                                         cursor=page.next_cursor)
        """
        self._check_limits(limit)
        info = self._info
        where = info.where(filters)
        keys = info.sort_keys(sort)
        fp = _cursor.fingerprint(self.model, keys, filters)
        if cursor is not None:
            where.append(keyset_after(keys, _cursor.decode(cursor, keys, fp)))
        stmt = (
            select(self.model)
            .where(*where)
            .order_by(*(k.order_by() for k in keys))
            .limit(limit + 1)
        )
        with rejected_by_postgres(reading=True):
            items = list((await self.session.scalars(stmt)).all())
        next_cursor = None
        if len(items) > limit:
            del items[limit:]
            last = items[-1]
            next_cursor = _cursor.encode(keys, [getattr(last, k.field.name) for k in keys], fp)
        return CursorPage(items=items, next_cursor=next_cursor)

    async def count(self, *, filters: Filters | None = None) -> int:
        """How many rows match ``filters``.

        Example::

            unpaid = await repo.count(filters={"status__ne": "paid"})
        """
        where = self._info.where(filters)
        stmt = select(func.count(self._info.pk.attr)).where(*where)
        with rejected_by_postgres(reading=True):
            return int((await self.session.execute(stmt)).scalar_one())

    async def exists(self, *, filters: Filters | None = None) -> bool:
        """Whether at least one row matches ``filters``.

        Example::

            if await repo.exists(filters={"number": "INV-1"}): ...
        """
        where = self._info.where(filters)
        stmt = select(self._info.pk.attr).where(*where).limit(1)
        with rejected_by_postgres(reading=True):
            return (await self.session.execute(stmt)).first() is not None

    # -- writes ------------------------------------------------------------------------
    def _check_values(self, values: Mapping[str, Any], what: str) -> None:
        names = self._info.attribute_names
        unknown = [
            key if isinstance(key, str) and len(key) <= 80 else shown(key)
            for key in values
            if key not in names
        ]
        if unknown:
            raise InvalidArgument(
                f"{what}: unknown field(s) {unknown[:10]} for {self.model.__name__}; allowed: "
                f"{', '.join(sorted(names))}"
            )
        fields = self._info.fields
        for key, value in values.items():
            field = fields.get(key)
            if field is not None:
                field.check_write(value, what)

    async def create(self, **values: Any) -> ModelT:
        """Insert one row from keyword values and flush; returns the new object.

        Example::

            invoice = await repo.create(status="draft", amount=120)
        """
        self._check_values(values, "create()")
        obj = self.model(**values)
        self.session.add(obj)
        with rejected_by_postgres(reading=False):
            await self.session.flush()
        return obj

    async def create_many(self, rows: Iterable[Mapping[str, Any]]) -> builtins.list[ModelT]:
        """Insert several rows (batched INSERT) in one flush; all or nothing.

        Example::

            await repo.create_many([{"amount": 1}, {"amount": 2}])
        """
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
            raise InvalidArgument(
                f"create_many() takes an iterable of mappings (dicts of field values), "
                f"got {shown(rows)}"
            )
        objs: builtins.list[ModelT] = []
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise InvalidArgument(
                    f"create_many(): row {index} must be a mapping of field values, got "
                    f"{shown(row)}"
                )
            self._check_values(row, f"create_many() row {index}")
            objs.append(self.model(**row))
        self.session.add_all(objs)
        with rejected_by_postgres(reading=False):
            await self.session.flush()
        return objs

    async def _resolve(self, target: ModelT | Any) -> ModelT:
        if isinstance(target, self.model):
            return target
        return await self.get(target)

    async def update(self, target: ModelT | Any, **values: Any) -> ModelT:
        """Set the given fields (partial update) on an object or the row with that id; flush.

        Raises :class:`NotFound` for a missing id. The primary key cannot be changed.

        Example::

            invoice = await repo.update(invoice_id, status="paid")
        """
        self._check_values(values, "update()")
        pk = self._info.pk.name
        if pk in values:
            raise InvalidArgument(
                f"update(): the primary key {pk!r} of {self.model.__name__} cannot be changed"
            )
        obj = await self._resolve(target)
        for key, value in values.items():
            setattr(obj, key, value)
        with rejected_by_postgres(reading=False):
            await self.session.flush()
        return obj

    async def delete(self, target: ModelT | Any) -> None:
        """Delete an object or the row with that id; flush. Raises :class:`NotFound` if missing.

        Example::

            await repo.delete(invoice_id)
        """
        obj = await self._resolve(target)
        await self.session.delete(obj)
        await self.session.flush()
