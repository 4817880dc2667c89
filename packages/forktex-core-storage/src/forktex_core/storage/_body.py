# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Turn a ``put`` body (bytes, async byte stream, file path) into one async reader.

The reader never holds more than what the caller asks for via ``read(n)`` plus one chunk of
the source stream, so a multipart upload of a huge stream needs about one part of memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO, Union

from ._errors import AccessDenied, InvalidArgument, show

Body = Union[bytes, bytearray, memoryview, "os.PathLike[str]", AsyncIterable[bytes]]
"""What :meth:`StorageClient.put` accepts."""


class BodyReader:
    """An async ``read(n)`` / ``peek(n)`` view of any :data:`Body`; ``length`` if known.

    With ``max_bytes``, a body longer than that raises :class:`AccessDenied` before more than
    one chunk past the limit has been read (a known length is checked up front).
    """

    def __init__(self, body: object, *, max_bytes: int | None = None) -> None:
        self._max = max_bytes
        self._seen = 0
        self._buf = bytearray()
        self._iter: AsyncIterator[bytes] | None = None
        self._file: BinaryIO | None = None
        self._eof = False
        self.length: int | None
        if isinstance(body, (bytes, bytearray, memoryview)):
            self._buf = bytearray(body)
            self._eof = True
            self.length = len(self._buf)
        elif isinstance(body, os.PathLike):
            try:
                path = Path(body)
                if not path.is_file():
                    raise InvalidArgument(
                        f"body path {show(str(path))} is not an existing regular file"
                    )
                self._file = path.open("rb")
                self.length = os.fstat(self._file.fileno()).st_size
            except (OSError, TypeError) as exc:
                raise InvalidArgument(
                    f"body path {show(body)} cannot be read ({type(exc).__name__}: {exc})"
                ) from None
        elif isinstance(body, AsyncIterable):
            self._iter = aiter(body)
            self.length = None
        elif isinstance(body, str):
            raise InvalidArgument(
                "body is a str: pass bytes (text.encode()) for content or pathlib.Path(...) "
                "for a file"
            )
        else:
            raise InvalidArgument(
                f"body must be bytes, an os.PathLike file path or an AsyncIterable[bytes], "
                f"got {type(body).__name__}"
            )
        if self._max is not None and self.length is not None and self.length > self._max:
            self.close()
            raise self._too_large()

    def _too_large(self) -> AccessDenied:
        return AccessDenied(
            f"the body is larger than the allowed {self._max} bytes (e.g. the max_bytes an "
            "upload form was signed for); nothing was stored"
        )

    async def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._eof:
            if self._file is not None:
                try:
                    chunk = await asyncio.to_thread(self._file.read, max(n - len(self._buf), 65536))
                except OSError as exc:
                    raise InvalidArgument(
                        f"the body file could not be read ({type(exc).__name__}: "
                        f"{exc.strerror or exc}); nothing was stored"
                    ) from exc
            else:
                assert self._iter is not None
                try:
                    chunk = await anext(self._iter)
                except StopAsyncIteration:
                    chunk = b""
                    self._eof = True
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise InvalidArgument(
                        f"body stream yielded {type(chunk).__name__}; it must yield bytes"
                    )
                if isinstance(chunk, memoryview):
                    chunk = chunk.tobytes()  # len() of a memoryview counts items, not bytes
                if not chunk:
                    continue
            if not chunk:
                self._eof = True
            self._seen += len(chunk)
            if self._max is not None and self._seen > self._max:
                raise self._too_large()
            self._buf += chunk

    async def peek(self, n: int) -> bytes:
        """Up to ``n`` leading bytes, without consuming them."""
        await self._fill(n)
        return bytes(self._buf[:n])

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all remaining for ``n < 0``); ``b""`` at the end."""
        if n < 0:
            while not self._eof:
                await self._fill(len(self._buf) + 1)
            data = bytes(self._buf)
            self._buf.clear()
            return data
        await self._fill(n)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def chunks(self, size: int = 1 << 20) -> AsyncIterator[bytes]:
        """The remaining body in chunks of at most ``size`` bytes."""
        while True:
            data = await self.read(size)
            if not data:
                return
            yield data

    def close(self) -> None:
        """Close the underlying file (streams are left to their owner)."""
        if self._file is not None:
            self._file.close()
            self._file = None
