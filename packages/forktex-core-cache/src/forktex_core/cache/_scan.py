# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Deleting every key a ``SCAN MATCH`` pattern finds, in ``UNLINK`` batches.

The one place keys are deleted by pattern: ``delete_pattern`` and
``CachedFunction.invalidate_all`` both end here, so the refusal of a pattern that could match
every key guards every path.
"""

from __future__ import annotations

from ._client import command, state
from ._errors import InvalidArgument
from ._glob import literal_head


async def delete_raw_pattern(match: str, batch_size: int = 500) -> int:
    """SCAN MATCH ``match`` (already prefixed) and UNLINK in batches; returns how many went.

    Refuses (a programming error, never user input) a ``match`` with no literal head, which
    could match every key.

    Example::

        await delete_raw_pattern(glob_escape(state().prefix) + "user:profile:*")
    """
    if not literal_head(match):
        raise InvalidArgument(f"refusing SCAN MATCH {match!r}: it could match every key")

    current = state()
    client = current.client
    what = f"delete_pattern({match!r})"
    deleted = 0
    batch: list[bytes] = []
    # Each SCAN page and each UNLINK is one command, bounded by command_timeout on its own:
    # a large keyspace may take longer than that in total.
    keys = client.scan_iter(match=match, count=batch_size)
    try:
        while True:
            try:
                key = await command(current, what, anext(keys))
            except StopAsyncIteration:
                break
            batch.append(key)
            if len(batch) >= batch_size:
                deleted += int(await command(current, what, client.unlink(*batch)))
                batch.clear()
        if batch:
            deleted += int(await command(current, what, client.unlink(*batch)))
    finally:
        await keys.aclose()
    return deleted
