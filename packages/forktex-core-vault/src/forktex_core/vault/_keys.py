# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Fernet key parsing, generation and non-secret fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from ._errors import InvalidKey

#: A Fernet key: 32 bytes, url-safe base64 with padding -> 43 alphabet chars and one "=".
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}=")
_FINGERPRINT_LABEL = b"forktex-vault-fingerprint"
_HINT = "Generate a key with Vault.generate_key() (or Fernet.generate_key())."


def parse_key(key: object, *, position: str = "key") -> bytes:
    """Validate ``key`` and return the 32 raw key bytes it encodes.

    Surrounding whitespace (a trailing newline from a secrets file) is ignored. Only the
    canonical spelling is accepted: 44 characters whose last data character carries no bits
    beyond the 32 bytes (four different strings decode to every key; only the one
    ``base64.urlsafe_b64encode`` produces is a key here), so one key has exactly one text.
    Errors describe the value's type and length only, never its content.
    """
    if isinstance(key, bytes | bytearray | memoryview):
        raw = bytes(key)
        if len(raw) == 32 and not _KEY_SHAPE.fullmatch(raw.decode("latin-1")):
            raise InvalidKey(
                f"{position} is 32 raw bytes, but a Fernet key is their url-safe base64 "
                "encoding (44 characters); pass base64.urlsafe_b64encode(raw_key). " + _HINT
            )
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidKey(
                f"{position} is {len(raw)} bytes that are not ASCII; a Fernet key is 44 "
                "characters of url-safe base64 encoding 32 bytes. " + _HINT
            ) from None
    elif isinstance(key, str):
        text = key
    else:
        raise InvalidKey(
            f"{position} must be str or bytes holding a url-safe base64 Fernet key, "
            f"got {type(key).__name__}. " + _HINT
        )
    text = text.strip()
    if not text:
        raise InvalidKey(f"{position} is empty. " + _HINT)
    if not _KEY_SHAPE.fullmatch(text):
        detail = (
            "contains characters outside the url-safe base64 alphabet (A-Z a-z 0-9 - _ =)"
            if re.search(r"[^A-Za-z0-9_=-]", text)
            else f"has {len(text)} characters"
        )
        raise InvalidKey(
            f"{position} is not a Fernet key: it {detail}; expected 44 characters of url-safe "
            "base64 encoding 32 bytes (ending in '='). " + _HINT
        )
    # The regex admits only 43 alphabet characters and '=', which always decode to 32 bytes.
    decoded = base64.urlsafe_b64decode(text)
    if base64.urlsafe_b64encode(decoded) != text.encode("ascii"):
        raise InvalidKey(
            f"{position} is not the canonical spelling of a Fernet key: its last character "
            "before '=' sets bits beyond the 32 key bytes, so another text decodes to the same "
            "key. Use the key exactly as generated. " + _HINT
        )
    return decoded


def fingerprint(key: bytes) -> str:
    """A short, non-secret identifier of a key (its 32 raw bytes, as :func:`parse_key`
    returns them): 8 hex chars of HMAC-SHA256(key, "forktex-vault-fingerprint").

    Being keyed, it reveals nothing usable about the key, yet two processes holding the same
    key show the same fingerprint.
    """
    return hmac.new(key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:8]


def generate_key() -> str:
    """A fresh random Fernet key (32 bytes from the OS CSPRNG, url-safe base64, 44 chars)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
