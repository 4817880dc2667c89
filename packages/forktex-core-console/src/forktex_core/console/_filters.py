# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The filters of the runs page: one :class:`Filter` per query parameter, parsed and checked
once, mapped onto ``Flow.page_runs`` keyword arguments.

Adding a filter is one line in :data:`FILTERS` (and, when flow gains a new one, the matching
``page_runs`` keyword): ``Filter("queue", "Queue", _text)``.
A bad value is reported with the parameter's name and what is allowed, as a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forktex_core.flow import RunStatus

STATUSES = [s.value for s in RunStatus]


class BadFilter(ValueError):
    """A query parameter the runs page cannot use (the message names it)."""


def _text(name: str, values: list[str]) -> str | None:
    value = values[-1].strip()
    if not value:
        return None
    if len(value) > 200 or any(ord(c) < 32 for c in value):
        raise BadFilter(f"{name} must be text of at most 200 characters, got {value[:60]!r}")
    return value


def _version(name: str, values: list[str]) -> int | None:
    value = values[-1].strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 2**31:
        raise BadFilter(f"{name} must be a whole number >= 1, got {value[:60]!r}")
    return int(value)


def _statuses(name: str, values: list[str]) -> list[str] | None:
    chosen = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if not chosen:
        return None
    unknown = [v for v in chosen if v not in STATUSES]
    if unknown:
        raise BadFilter(f"{name} must be one of {', '.join(STATUSES)}; got {unknown[0][:60]!r}")
    return sorted(set(chosen), key=STATUSES.index)


def _metadata(name: str, values: list[str]) -> dict[str, Any] | None:
    """``{"org_id": "o1"}`` (a JSON object) or ``org_id=o1, tier=2`` (values read as JSON
    when they parse, else as text)."""
    text = values[-1].strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise BadFilter(f"{name} is not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise BadFilter(f"{name} must be a JSON object or key=value pairs")
        return value
    out: dict[str, Any] = {}
    for pair in text.split(","):
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise BadFilter(f"{name} takes key=value pairs or a JSON object, got {pair.strip()!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _time(name: str, values: list[str]) -> datetime | None:
    """ISO 8601; without an offset the time is UTC (what the page shows)."""
    text = values[-1].strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(
            f"{name} must be a date and time like 2026-01-31T12:00 (UTC) or with an offset, "
            f"got {text[:60]!r}"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filter:
    """A query parameter of the runs page and the ``page_runs`` keyword it feeds."""

    name: str
    label: str
    parse: Callable[[str, list[str]], Any]
    keyword: str = ""

    @property
    def argument(self) -> str:
        """The ``Flow.page_runs`` keyword (the parameter's name unless set)."""
        return self.keyword or self.name


FILTERS: tuple[Filter, ...] = (
    Filter("workflow", "Workflow", _text),
    Filter("version", "Version", _version),
    Filter("status", "Status", _statuses),
    Filter("metadata", "Metadata", _metadata),
    Filter("from", "Created from", _time, "created_after"),
    Filter("to", "Created before", _time, "created_before"),
    Filter("queue", "Queue", _text),
)


def parse_filters(query: Mapping[str, list[str]]) -> dict[str, Any]:
    """``Flow.page_runs`` keyword arguments from the query (``BadFilter`` names a bad one).

    Example::

        parse_filters({"status": ["failed,dead"], "workflow": ["cloud.deploy"]})
        # {'workflow': 'cloud.deploy', 'status': ['failed', 'dead']}
    """
    out: dict[str, Any] = {}
    for f in FILTERS:
        values = query.get(f.name)
        if values:
            value = f.parse(f.name, values)
            if value is not None:
                out[f.argument] = value
    if "version" in out and "workflow" not in out:
        raise BadFilter("version filters need a workflow: fill in the workflow too")
    return out


def query_pairs(query: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """The filter parameters of ``query`` as pairs (to carry into the next page's link)."""
    names = {f.name for f in FILTERS}
    return [(k, v) for k, values in query.items() if k in names for v in values if v.strip()]
