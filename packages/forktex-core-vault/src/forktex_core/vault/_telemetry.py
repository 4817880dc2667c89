# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Spans through the OpenTelemetry API: a no-op unless the host configures an SDK.

The conventions are those of ``docs/observability.md``. Only key rotations are traced:
encrypting or decrypting one value is pure CPU work of about 15 µs, done once per row a
query returns, so a span each would multiply spans by rows and add several percent to every
call even as a no-op. Payloads, plaintexts, tokens, keys, primary keys and exception
messages are never recorded; key fingerprints (what ``repr(vault)`` shows) are.
"""

from __future__ import annotations

from typing import Final

from forktex_core.telemetry import Tracing

SCOPE: Final = "forktex_core.vault"
#: Failures are the class of the original error (the end of its ``__cause__`` chain, e.g.
#: ``sqlalchemy.exc.OperationalError``), never the message: it may name primary keys.
tracing: Final = Tracing(SCOPE, "forktex-core-vault")
tracer: Final = tracing.tracer
#: ``with operation(name, attributes=attributes) as span: ...``: an internal span, current
#: inside only while it records.
operation: Final = tracing.operation

# Attribute names (semantic conventions where one exists, forktex.vault.* otherwise).
DB_SYSTEM: Final = "db.system.name"
DB_TABLE: Final = "db.collection.name"
COLUMN: Final = "forktex.vault.column"
BATCH_SIZE: Final = "forktex.vault.batch_size"
RESUMED: Final = "forktex.vault.resumed"
OLD_KEYS: Final = "forktex.vault.old.fingerprints"
NEW_KEY: Final = "forktex.vault.new.fingerprint"
SCANNED: Final = "forktex.vault.rows.scanned"
ROTATED: Final = "forktex.vault.rows.rotated"
SKIPPED: Final = "forktex.vault.rows.skipped"
FAILED: Final = "forktex.vault.rows.failed"
BATCHES: Final = "forktex.vault.batches"
COMPLETE: Final = "forktex.vault.complete"
UNOPENABLE_EVENT: Final = "forktex.vault.unopenable_rows"
