# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Typed results: :class:`RowResult`, :class:`Page`, :class:`FacetCount`, :class:`TypeChange`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class RowResult:
    """One row: its id, typed field values (by field name) and system timestamps.

    ``included`` holds the rows of references requested with ``RowQuery.include(...)``:
    a :class:`RowResult` (or ``None``) for a single reference, a tuple for many.

    Example::

        row = await invoices.get(row_id)
        row["amount"]            # Decimal('120.00')
        row.get("note")          # None when unset
        row.included["customer"]["name"]  # after .include("customer")
    """

    id: uuid.UUID
    register: str
    values: Mapping[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived_at: datetime | None = None
    included: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    created_by: str | None = None
    """Who created the row, as the writer named them (``actor=``)."""
    updated_by: str | None = None
    """Who last changed it (``None`` when the last write named nobody)."""

    def __post_init__(self) -> None:
        if not isinstance(self.values, MappingProxyType):
            object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        if not isinstance(self.included, MappingProxyType):
            object.__setattr__(self, "included", MappingProxyType(dict(self.included)))

    def __getitem__(self, name: str) -> Any:
        if name == "id":
            return self.id
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(
                f"register {self.register!r} has no field {name!r}; fields: "
                f"{', '.join(map(repr, self.values)) or '(none)'}"
            ) from None

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name``, or ``default`` when it is unset or unknown."""
        value = self.values.get(name)
        return default if value is None else value

    @property
    def archived(self) -> bool:
        """Whether the row is soft-archived."""
        return self.archived_at is not None

    def to_dict(self) -> dict[str, Any]:
        """``{"id": ..., <field>: <value>, ...}`` (typed Python values)."""
        return {"id": self.id, **self.values}


@dataclass(frozen=True)
class Page:
    """A page of rows. ``scroll()`` fills ``next_cursor`` (``None`` on the last page);
    ``paginate()`` fills ``total`` and ``page``.

    Example::

        page = await RowQuery(invoices).scroll(page_size=50)
        for row in page: ...
        if page.next_cursor:
            page = await RowQuery(invoices).scroll(page_size=50, cursor=page.next_cursor)
    """

    items: tuple[RowResult, ...]
    size: int
    next_cursor: str | None = None
    total: int | None = None
    page: int | None = None

    def __iter__(self) -> Iterator[RowResult]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_more(self) -> bool:
        """Whether another page follows."""
        if self.next_cursor is not None:
            return True
        if self.total is not None and self.page is not None:
            return self.page * self.size < self.total
        return False

    @property
    def pages(self) -> int | None:
        """Number of pages (``paginate()`` only)."""
        if self.total is None:
            return None
        return max(1, -(-self.total // self.size))


@dataclass(frozen=True)
class FacetCount:
    """How many matching rows have ``value`` in a field (``None``: rows without a value).

    Example::

        facets = await RowQuery(invoices).facets("status")
        [(f.value, f.count) for f in facets["status"]]  # [('paid', 120), ('draft', 7)]
    """

    value: Any
    count: int


@dataclass(frozen=True)
class TypeChange:
    """What ``Register.change_field_type`` did — or, with ``dry_run=True``, would do.

    ``converted`` rows had a value that converts. ``lossy`` of them lose information: the
    new value does not convert back to the old one, or the change cannot be undone (a
    reference that becomes text); ``losses`` lists up to 100 as ``(row_id, old value, new
    value, reason)``. A dry run also reports the values that cannot convert at all
    (``failed``, ``failures`` as ``(row_id, value, reason)``) instead of raising
    :class:`ConversionFailed`.

    Example::

        report = await invoices.change_field_type("issued_at", "date", dry_run=True)
        if report.lossy:
            print(f"{report.lossy} rows would lose their time of day", report.losses[:3])
    """

    field: str
    old_type: str
    new_type: str
    converted: int
    lossy: int = 0
    losses: tuple[tuple[Any, Any, Any, str], ...] = ()
    failed: int = 0
    failures: tuple[tuple[Any, Any, str], ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class AggregateRow:
    """One group of ``RowQuery.group_by(...).aggregate(...)``: the values of the group_by
    fields (``group``; ``None`` for rows without a value) and the aggregates (``values``).
    ``row[name]`` reads either.

    Example::

        rows = await RowQuery(invoices).group_by("status").aggregate(n=Count())
        rows[0]["status"], rows[0]["n"]  # ('draft', 13)
    """

    group: Mapping[str, Any]
    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        for name in ("group", "values"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    def __getitem__(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.group:
            return self.group[name]
        raise KeyError(
            f"no aggregate or group field {name!r}; names: "
            f"{', '.join(map(repr, [*self.group, *self.values]))}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The group fields then the aggregates, in one dict."""
        return {**self.group, **self.values}


@dataclass(frozen=True)
class RowError:
    """A row an import did not write: its line in the file (1-based; a CSV row's first
    line), why, and the field at fault when there is one.

    Example::

        RowError(line=7, reason="field 'total' takes a decimal, got 'abc'", field="total")
    """

    line: int
    reason: str
    field: str | None = None


@dataclass(frozen=True)
class ImportReport:
    """What ``Register.import_csv`` / ``import_jsonl`` did: ``read`` records, ``written``
    rows, ``failed`` rows not written, the first ``errors`` of them (at most the import's
    ``max_errors``) with line numbers and reasons, and how many ``batches`` committed.

    Example::

        report = await invoices.import_csv("invoices.csv")
        print(report.written, report.failed, report.errors[:3])
    """

    read: int
    written: int
    failed: int
    errors: tuple[RowError, ...]
    batches: int
