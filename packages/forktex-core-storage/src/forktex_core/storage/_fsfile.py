# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""One object of the filesystem backend = one file: its bytes, then a JSON record (key,
size, ETag, content type, modification time, metadata), then the record's length and a
magic marker.

Bytes and record live in the same file so that a single ``os.replace`` publishes both: a
reader sees the old object or the new one, never the new bytes with the old record. New files
are written under a temporary name in the same directory and flushed to disk before the
rename. Everything here is blocking; the backend runs it in a worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from ._errors import StorageError

_MAGIC = b"FTXOBJ1\n"
_TRAILER = 4 + len(_MAGIC)
TEMP_PREFIX = ".tmp-"
"""Names of files still being written; never objects."""


class ObjectWriter:
    """A new object file, invisible until :meth:`commit` renames it over ``final``.

    Example::

        writer = ObjectWriter(path)
        try:
            writer.write(b"hello")
            writer.commit({"key": "a.txt", "size": 5, ...})
        except BaseException:
            writer.discard()
            raise
    """

    def __init__(self, final: Path) -> None:
        self._final = final
        fd, name = tempfile.mkstemp(dir=final.parent, prefix=TEMP_PREFIX)
        self._tmp = name
        self._fh: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        """Append object bytes."""
        assert self._fh is not None
        self._fh.write(data)

    def commit(self, record: dict[str, Any]) -> None:
        """Append the record, flush to disk and publish the file under its final name."""
        fh = self._fh
        assert fh is not None
        header = json.dumps(record, separators=(",", ":")).encode("utf-8")
        fh.write(header + len(header).to_bytes(4, "big") + _MAGIC)
        fh.flush()
        os.fsync(fh.fileno())
        self._fh = None
        fh.close()
        os.replace(self._tmp, self._final)

    def discard(self) -> None:
        """Drop the unfinished file (never raises)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def read_record(fh: BinaryIO, where: str) -> dict[str, Any]:
    """The record of an open object file; ``fh`` is left at the start of the bytes.
    ``where`` names the object in the error a damaged file raises."""
    end = fh.seek(0, os.SEEK_END)
    damaged = StorageError(f"the file of {where} is damaged (not written by this backend)")
    if end < _TRAILER:
        raise damaged
    fh.seek(end - _TRAILER)
    tail = fh.read(_TRAILER)
    length = int.from_bytes(tail[:4], "big")
    if tail[4:] != _MAGIC or length > end - _TRAILER:
        raise damaged
    fh.seek(end - _TRAILER - length)
    try:
        record: dict[str, Any] = json.loads(fh.read(length))
    except ValueError:
        raise damaged from None
    if not isinstance(record, dict) or record.get("size") != end - _TRAILER - length:
        raise damaged
    fh.seek(0)
    return record
