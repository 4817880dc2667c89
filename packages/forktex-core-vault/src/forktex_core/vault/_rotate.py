# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``rotate_blobs``: re-encrypt an ``EncryptedJSON`` column from one KEK to another."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from . import _telemetry as tm
from ._column import EncryptedJSON
from ._errors import RotationError, RotationInterrupted
from ._report import RotationFailure, RotationReport
from ._vault import Vault, keyring_of

ProgressCallback = Callable[[RotationReport], Awaitable[None] | None]


async def rotate_blobs(
    session: AsyncSession,
    *,
    table: Any,
    column: str,
    old: Vault,
    new: Vault,
    batch_size: int = 500,
    progress: ProgressCallback | None = None,
    resume_after: Any = None,
    max_failures: int = 1000,
) -> RotationReport:
    """Re-encrypt every non-NULL value of ``table.column`` from ``old`` to ``new``.

    ``table`` is an ORM class or a Core ``Table``; ``column`` names an ``EncryptedJSON``
    column (the ORM attribute name or the Core column key). Rows are read in keyset order of
    the primary key, ``batch_size`` at a time, so memory stays bounded on any table size.

    Each batch is one transaction committed on ``session`` - pass a session with no
    transaction open. Within a batch the rows are locked (``SELECT ... FOR UPDATE``), so a
    concurrent writer waits for the batch and its own write then wins: nothing is lost. A
    failing batch is rolled back whole and :class:`RotationInterrupted` is raised with the
    progress so far. Values already on ``new``'s primary key are skipped, which makes a re-run
    after any crash safe and cheap. Values neither vault opens are reported in
    ``report.failed``, never changed; after ``max_failures`` of them rotation stops (``old`` is
    probably the wrong key).

    ``progress`` (sync or async) is called with the running :class:`RotationReport` after
    every committed batch. ``resume_after`` starts the scan after that primary key (a
    ``report.last_pk``).

    Example::

        old_vault = Vault.from_key(old_master_key)
        new_vault = Vault.from_key(new_master_key)
        async with sessionmaker() as session:
            report = await rotate_blobs(
                session, table=OrgProviderCredential, column="payload",
                old=old_vault, new=new_vault,
            )
        assert report.complete and not report.failed
    """
    target, blob, pk_cols = _resolve(table, column)
    _check_args(session, old, new, batch_size, max_failures)
    old_keys, new_keys = keyring_of(old), keyring_of(new)

    where_base = blob.is_not(None)
    raw = sa.type_coerce(blob, sa.Text()).label("blob")
    update = (
        sa.update(target)
        .where(*(col == sa.bindparam(f"_vault_pk_{i}") for i, col in enumerate(pk_cols)))
        .values({blob.key: sa.bindparam("_vault_blob", type_=sa.Text())})
    )
    single = len(pk_cols) == 1
    keyset = pk_cols[0] if single else sa.tuple_(*pk_cols)

    started = time.monotonic()
    report = RotationReport(last_pk=resume_after)
    failures: list[RotationFailure] = []
    cursor = resume_after
    name = f"{target.fullname}.{blob.name}"
    attributes = _span_attributes(session, target, blob, old, new, batch_size, resume_after)
    with tm.operation(f"vault.rotate_blobs {name}", attributes=attributes) as span:
        try:
            while True:
                query = sa.select(*pk_cols, raw).where(where_base)
                if cursor is not None:
                    query = query.where(keyset > (cursor if single else sa.tuple_(*cursor)))
                query = query.order_by(*pk_cols).limit(batch_size).with_for_update(of=target)
                rotated = skipped = 0
                new_failures: list[RotationFailure] = []
                with tm.operation(
                    f"vault.rotate_blobs.batch {name}", attributes=attributes
                ) as batch_span:
                    try:
                        rows = (await session.execute(query)).all()
                        if not rows:
                            await session.commit()
                            if batch_span.is_recording():
                                _record_batch(batch_span, 0, 0, 0, 0)
                            break
                        params: list[dict[str, Any]] = []
                        for row in rows:
                            pk = row[0] if single else tuple(row[: len(pk_cols)])
                            token: Any = row[-1]
                            if new_keys.opens_with_primary(token):
                                skipped += 1
                                continue
                            plaintext = old_keys.open_or_none(token)
                            if plaintext is None:
                                plaintext = new_keys.open_or_none(token)
                            if plaintext is None:
                                new_failures.append(RotationFailure(pk, _failure_reason(old, new)))
                                continue
                            param = {f"_vault_pk_{i}": row[i] for i in range(len(pk_cols))}
                            param["_vault_blob"] = new_keys.seal(plaintext)
                            params.append(param)
                            rotated += 1
                        if params:
                            await session.execute(update, params)
                        await session.commit()
                    except BaseException as exc:
                        await _rollback_quietly(session)
                        report = dataclasses.replace(
                            report,
                            failed=tuple(failures),
                            elapsed_seconds=time.monotonic() - started,
                        )
                        if not isinstance(exc, Exception):
                            raise  # cancellation / KeyboardInterrupt: the batch is rolled back
                        raise RotationInterrupted(
                            f"rotation of {target.name}.{blob.name} stopped in the batch after "
                            f"primary key {cursor!r}: {type(exc).__name__}. That batch was rolled "
                            f"back; {report.batches} earlier batches ({report.rotated} rows "
                            "rotated) are committed. Fix the cause and re-run the same call: "
                            "rows already on the new key are skipped",
                            report,
                        ) from exc
                    if batch_span.is_recording():
                        _record_batch(batch_span, len(rows), rotated, skipped, len(new_failures))
                failures.extend(new_failures)
                last = rows[-1]
                cursor = last[0] if single else tuple(last[: len(pk_cols)])
                report = RotationReport(
                    scanned=report.scanned + len(rows),
                    rotated=report.rotated + rotated,
                    skipped_already_new=report.skipped_already_new + skipped,
                    failed=tuple(failures),
                    batches=report.batches + 1,
                    last_pk=cursor,
                    complete=False,
                    elapsed_seconds=time.monotonic() - started,
                )
                if progress is not None:
                    outcome = progress(report)
                    if inspect.isawaitable(outcome):
                        await outcome
                if len(failures) > max_failures:
                    raise RotationInterrupted(
                        f"rotation of {target.name}.{blob.name} stopped: {len(failures)} rows "
                        f"open with neither old (fingerprints {list(old.fingerprints)}) nor new "
                        f"(fingerprints {list(new.fingerprints)}), more than "
                        f"max_failures={max_failures}. Is `old` the key these rows were written "
                        "with? Batches so far are committed; re-run with the right key to resume",
                        report,
                    )
            report = dataclasses.replace(
                report, complete=True, elapsed_seconds=time.monotonic() - started
            )
            return report
        finally:
            if span.is_recording():
                _record_report(span, report)


def _span_attributes(
    session: AsyncSession,
    target: sa.Table,
    blob: sa.Column[Any],
    old: Vault,
    new: Vault,
    batch_size: int,
    resume_after: Any,
) -> dict[str, Any]:
    """What a rotation's spans carry: the table and column, the keys' fingerprints (never a
    key) and whether it resumes (never the primary key it resumes after)."""
    attributes: dict[str, Any] = {
        tm.DB_TABLE: target.fullname,
        tm.COLUMN: blob.name,
        tm.BATCH_SIZE: batch_size,
        tm.RESUMED: resume_after is not None,
        tm.OLD_KEYS: list(old.fingerprints),
        tm.NEW_KEY: new.fingerprint,
    }
    if session.bind is not None:
        attributes[tm.DB_SYSTEM] = session.bind.dialect.name
    return attributes


def _record_batch(span: Any, rows: int, rotated: int, skipped: int, failed: int) -> None:
    span.set_attributes(
        {tm.SCANNED: rows, tm.ROTATED: rotated, tm.SKIPPED: skipped, tm.FAILED: failed}
    )
    if failed:
        span.add_event(tm.UNOPENABLE_EVENT, {tm.FAILED: failed})


def _record_report(span: Any, report: RotationReport) -> None:
    span.set_attributes(
        {
            tm.SCANNED: report.scanned,
            tm.ROTATED: report.rotated,
            tm.SKIPPED: report.skipped_already_new,
            tm.FAILED: len(report.failed),
            tm.BATCHES: report.batches,
            tm.COMPLETE: report.complete,
        }
    )


def _failure_reason(old: Vault, new: Vault) -> str:
    return (
        f"neither old (fingerprints {list(old.fingerprints)}) nor new (fingerprints "
        f"{list(new.fingerprints)}) opens the value: written under another key, or corrupted"
    )


async def _rollback_quietly(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except Exception:  # pragma: no cover - connection already gone; the DB rolls back itself
        pass


def _resolve(table: Any, column: str) -> tuple[sa.Table, sa.Column[Any], Sequence[sa.Column[Any]]]:
    """The Core table, the blob column and the primary-key columns for ``table.column``."""
    if not isinstance(column, str):
        raise RotationError(
            f"column must be the column's name as a str, got {type(column).__name__}"
        )
    if isinstance(table, sa.Table):
        target = table
        found = target.c.get(column)
        names = sorted(target.c.keys())
    else:
        mapper = sa.inspect(table, raiseerr=False)
        if not isinstance(mapper, Mapper) or not isinstance(mapper.local_table, sa.Table):
            raise RotationError(
                f"table must be a mapped ORM class or a sqlalchemy Table, got "
                f"{table!r} ({type(table).__name__})"
            )
        target = mapper.local_table
        attr = mapper.columns.get(column)
        found = attr if attr is not None and attr.table is target else target.c.get(column)
        names = sorted(mapper.columns.keys())
    if found is None:
        raise RotationError(f"{target.name} has no column {column!r}; its columns are {names}")
    if not isinstance(found, sa.Column):  # pragma: no cover - column_property expressions
        raise RotationError(f"{target.name}.{column} is not a plain table column")
    if not isinstance(found.type, EncryptedJSON):
        raise RotationError(
            f"{target.name}.{column} is of type {found.type!r}, not EncryptedJSON; rotate_blobs "
            "only re-encrypts columns declared as mapped_column(EncryptedJSON(vault))"
        )
    pk_cols = list(target.primary_key.columns)
    if not pk_cols:
        raise RotationError(
            f"{target.name} has no primary key; rotate_blobs pages by primary key, so it needs one"
        )
    if found in pk_cols:  # pragma: no cover - encrypted primary keys make no sense
        raise RotationError(f"{target.name}.{column} is part of the primary key")
    return target, found, pk_cols


def _check_args(session: Any, old: Any, new: Any, batch_size: Any, max_failures: Any) -> None:
    if not isinstance(session, AsyncSession):
        raise RotationError(
            f"session must be a sqlalchemy AsyncSession, got {type(session).__name__}"
        )
    for name, vault in (("old", old), ("new", new)):
        if not isinstance(vault, Vault):
            raise RotationError(
                f"{name} must be a Vault (Vault.from_key(...)), got {type(vault).__name__}"
            )
    if old.fingerprint == new.fingerprint:
        raise RotationError(
            f"old and new encrypt with the same key (fingerprint {new.fingerprint}); there is "
            "nothing to rotate. Build new from a fresh Vault.generate_key()"
        )
    if type(batch_size) is not int or batch_size < 1:
        raise RotationError(f"batch_size must be a positive int, got {batch_size!r}")
    if type(max_failures) is not int or max_failures < 0:
        raise RotationError(f"max_failures must be an int >= 0, got {max_failures!r}")
    if session.in_transaction():
        raise RotationError(
            "the session already has a transaction open; rotate_blobs commits after every "
            "batch, so it would commit your work too. Commit or roll back first, or pass a "
            "fresh session"
        )
