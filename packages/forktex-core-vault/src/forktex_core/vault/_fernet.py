# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The Fernet token format (https://github.com/fernet/spec), read strictly.

A token is the url-safe base64 text (with ``=`` padding) of::

    0x80 | timestamp (8, big-endian seconds) | IV (16) | AES-128-CBC ciphertext (16n) | HMAC (32)

The HMAC-SHA256 covers everything before it and is keyed by the first 16 bytes of the 32-byte
key; the last 16 are the AES key. Only the canonical text of a token is read: exactly what
encoding its bytes gives, so characters outside the alphabet, missing padding or stray bits in
the last character are refused instead of silently skipped - one token, one spelling.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ._errors import MalformedToken, TokenExpired

VERSION = 0x80
#: How far in the future a token's timestamp may be when a ``ttl`` is checked (the spec's 60 s).
MAX_CLOCK_SKEW = 60
_HEADER = 1 + 8 + 16  # version, timestamp, IV
_MAC = 32
_BLOCK = 16
_ALPHABET = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


def _malformed(problem: str) -> MalformedToken:
    return MalformedToken(
        f"the value is not a Fernet token: {problem}. Check the column is not truncating it "
        "and that it was produced by Vault.encrypt (or another Fernet encoder)"
    )


def decode(token: object) -> bytes:
    """The bytes of ``token`` (str or bytes), or :class:`MalformedToken` saying why not.

    Checks the spelling (canonical url-safe base64), the version byte and the length; not the
    HMAC, which needs a key (:meth:`FernetKey.authentic`).
    """
    if isinstance(token, str):
        if not token.isascii():
            raise _malformed("it contains non-ASCII characters")
        text = token.encode("ascii")
    elif isinstance(token, bytes):
        text = token
    else:
        raise _malformed(f"expected str or bytes, got {type(token).__name__}")
    if not text:
        raise _malformed("it is empty")
    raw: bytes | None
    try:
        raw = base64.urlsafe_b64decode(text)
    except (binascii.Error, ValueError):
        raw = None
    # Raised outside the except block: nothing is chained onto the error.
    if raw is None or base64.urlsafe_b64encode(raw) != text:
        raise _malformed(_spelling_problem(text))
    if raw[0] != VERSION:
        raise _malformed(f"unknown version byte 0x{raw[0]:02x} (Fernet tokens start with 0x80)")
    if len(raw) < _HEADER + _BLOCK + _MAC or (len(raw) - _HEADER - _MAC) % _BLOCK:
        raise _malformed(f"it decodes to {len(raw)} bytes, which no Fernet token has (truncated?)")
    return raw


def _spelling_problem(text: bytes) -> str:
    if not _ALPHABET.fullmatch(text):
        return (
            "it contains characters outside url-safe base64 (A-Z a-z 0-9 - _, then at most "
            "two '=' of padding)"
        )
    if len(text) % 4:
        return f"its {len(text)} characters are not valid base64 (truncated or unpadded?)"
    return (
        "it is not the canonical base64 spelling of its bytes (its last character sets bits "
        "beyond the data, or its padding is wrong)"
    )


def timestamp(raw: bytes) -> int:
    """The token's creation time, seconds since the epoch (not authenticated by itself)."""
    seconds: int = struct.unpack_from(">Q", raw, 1)[0]
    return seconds


def format_time(seconds: int) -> str:
    """``seconds`` as an ISO 8601 UTC timestamp, for messages."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "at an invalid timestamp"


def check_age(raw: bytes, ttl: float, now: float) -> None:
    """:class:`TokenExpired` unless ``raw`` was minted within ``ttl`` seconds before ``now``
    (and at most :data:`MAX_CLOCK_SKEW` seconds after it)."""
    minted = timestamp(raw)
    if minted + ttl < now:
        raise TokenExpired(
            f"the token was minted {format_time(minted)}, more than ttl={ttl:g} s ago; "
            "it is authentic but too old to be accepted"
        )
    if now + MAX_CLOCK_SKEW < minted:
        raise TokenExpired(
            f"the token is stamped {format_time(minted)}, more than {MAX_CLOCK_SKEW} s in the "
            "future; check the clocks of the processes that mint and read tokens"
        )


class FernetKey:
    """One 32-byte Fernet key: seals plaintexts into tokens and opens tokens sealed with it.

    Its ``repr`` never shows the key, and it cannot be pickled or copied.
    """

    __slots__ = ("_aes", "_signing")

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:  # pragma: no cover - parse_key always gives 32 bytes
            raise ValueError("a Fernet key is 32 bytes")
        self._signing = key[:16]
        self._aes = algorithms.AES(key[16:])

    def seal(self, plaintext: bytes, *, now: int, iv: bytes) -> str:
        """The Fernet token of ``plaintext``, stamped ``now``, encrypted with ``iv``."""
        pad = _BLOCK - len(plaintext) % _BLOCK  # PKCS#7: 1-16 bytes, each holding the count
        padded = plaintext + bytes((pad,)) * pad
        encryptor = Cipher(self._aes, modes.CBC(iv)).encryptor()
        body = (
            bytes((VERSION,))
            + now.to_bytes(8, "big")
            + iv
            + encryptor.update(padded)
            + encryptor.finalize()
        )
        token = body + hmac.digest(self._signing, body, "sha256")
        return base64.urlsafe_b64encode(token).decode("ascii")

    def authentic(self, raw: bytes) -> bool:
        """Whether the HMAC of ``raw`` (a :func:`decode` result) verifies under this key."""
        expected = hmac.digest(self._signing, memoryview(raw)[:-_MAC], "sha256")
        return hmac.compare_digest(expected, raw[-_MAC:])

    def decrypt(self, raw: bytes) -> bytes:
        """The plaintext of an :meth:`authentic` token; :class:`MalformedToken` when its
        ciphertext does not unpad (an authentic token no Fernet encoder produces)."""
        view = memoryview(raw)
        decryptor = Cipher(self._aes, modes.CBC(raw[9:25])).decryptor()
        padded = decryptor.update(view[_HEADER:-_MAC]) + decryptor.finalize()
        # PKCS#7, checked after the HMAC verified: the padding of an authentic token is no
        # oracle for anyone without the key.
        pad = padded[-1]
        if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes((pad,)) * pad:
            raise _malformed(
                "its HMAC verifies but its ciphertext has invalid padding, so no Fernet encoder "
                "made it"
            )
        return padded[:-pad]

    def __repr__(self) -> str:
        return "<FernetKey>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Fernet key cannot be pickled or copied")
