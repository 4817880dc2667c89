# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The token pipeline of a set of keys: seal plaintext bytes with the primary key, open a token
with whichever key made it.

A :class:`Keyring` works on plaintext *bytes*; :class:`Vault` puts JSON payloads and argument
checks on top, and :func:`rotate_blobs` re-seals plaintexts from one keyring under another
without decoding them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from . import _fernet
from ._errors import InvalidKey, VaultDecryptError
from ._fernet import FernetKey
from ._keys import fingerprint, parse_key


class Keyring:
    """Distinct Fernet keys, newest (primary) first: seals with the primary, opens with any.

    Built from key texts, which are validated here (:class:`InvalidKey` describes a bad key's
    shape, never its value). Its ``repr`` shows fingerprints only, and it cannot be pickled.

    Example::

        keys = Keyring([new_key, old_key])
        token = keys.seal(b"plaintext")
        assert keys.open(token, ttl=None, now=time.time()) == b"plaintext"
        keys.key_for(token)        # fingerprint of new_key
    """

    __slots__ = ("_fingerprints", "_keys", "_primary")

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        if isinstance(keys, str | bytes | bytearray):
            raise InvalidKey(
                "Vault(...) / Vault.from_keys(...) takes a list of keys, newest first; "
                "for a single key use Vault.from_key(key)"
            )
        parsed = [parse_key(key, position=f"key #{i}") for i, key in enumerate(keys)]
        if not parsed:
            raise InvalidKey(
                "a Vault needs at least one key; pass [new_key] or, during a rotation, "
                "[new_key, old_key]"
            )
        prints = tuple(fingerprint(key) for key in parsed)
        seen: dict[bytes, int] = {}
        for i, key in enumerate(parsed):  # raw key bytes: one entry per key, however spelled
            if key in seen:
                raise InvalidKey(
                    f"key #{i} repeats key #{seen[key]} (fingerprint {prints[i]}); list each "
                    "key once, newest first"
                )
            seen[key] = i
        self._keys = tuple(FernetKey(key) for key in parsed)
        self._primary = self._keys[0]
        self._fingerprints = prints

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of the keys, primary first (safe to log).

        Example::

            Keyring([new_key, old_key]).fingerprints   # ('3f9c0a1b', '77d0e2aa')
        """
        return self._fingerprints

    def seal(self, plaintext: bytes, *, now: int | None = None, iv: bytes | None = None) -> str:
        """A token of ``plaintext`` under the primary key, stamped ``now`` (default: the
        current time) and encrypted with ``iv`` (default: 16 fresh random bytes).

        Example::

            token = keys.seal(b'{"a":1}')
        """
        return self._primary.seal(
            plaintext,
            now=int(time.time()) if now is None else now,
            iv=os.urandom(16) if iv is None else iv,
        )

    def open(self, token: object, *, ttl: float | None, now: float) -> bytes:
        """The plaintext of ``token``: canonical spelling, version and length; the HMAC under
        any key; the age when ``ttl`` is given (``now`` is the current time); the padding.
        Raises the matching :class:`VaultDecryptError`.

        Example::

            plaintext = keys.open(token, ttl=3600, now=time.time())
        """
        raw = _fernet.decode(token)
        key = self._key_opening(raw)
        if key is None:
            raise self._no_key_opens(raw)
        if ttl is not None:
            _fernet.check_age(raw, ttl, now)
        return key.decrypt(raw)

    def open_or_none(self, token: object) -> bytes | None:
        """The plaintext of ``token`` whatever its age, or ``None`` when no key opens it (or
        it is no Fernet token).

        Example::

            plaintext = old_keys.open_or_none(token) or new_keys.open_or_none(token)
        """
        try:
            return self.open(token, ttl=None, now=0.0)
        except VaultDecryptError:
            return None

    def opens_with_primary(self, token: object) -> bool:
        """Whether ``token`` is authentic under the primary key (its plaintext is not read).

        Example::

            if keys.opens_with_primary(token):
                ...  # already on the newest key
        """
        raw = _decode_or_none(token)
        return raw is not None and self._primary.authentic(raw)

    def key_for(self, token: object) -> str | None:
        """Fingerprint of the key that opens ``token``, or ``None`` if none does (never raises
        for bad tokens).

        Example::

            keys.key_for(token)   # '3f9c0a1b'
        """
        raw = _decode_or_none(token)
        if raw is None:
            return None
        for key, print_ in zip(self._keys, self._fingerprints, strict=True):
            if key.authentic(raw):
                return print_
        return None

    def _key_opening(self, raw: bytes) -> FernetKey | None:
        for key in self._keys:
            if key.authentic(raw):
                return key
        return None

    def _no_key_opens(self, raw: bytes) -> VaultDecryptError:
        minted = _fernet.format_time(_fernet.timestamp(raw))
        return VaultDecryptError(
            f"no configured key opens this token (minted {minted}); configured key "
            f"fingerprints {list(self._fingerprints)}. Likely causes: the KEK was rotated or "
            "this process runs with the wrong key (compare fingerprints across processes; "
            "during a rotation use Vault.from_keys([new, old])), or the token was modified or "
            "corrupted after encryption"
        )

    def __repr__(self) -> str:
        return f"<Keyring fingerprints={list(self._fingerprints)!r}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a keyring holds key material and cannot be pickled or copied")


def _decode_or_none(token: object) -> bytes | None:
    try:
        return _fernet.decode(token)
    except VaultDecryptError:
        return None
