# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The :class:`Vault`: Fernet encryption of JSON payloads under one or more KEKs."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from . import _payload
from ._errors import InvalidArgument
from ._keyring import Keyring
from ._keys import generate_key


class Vault:
    """Encrypts JSON-serialisable payloads into Fernet tokens, and back.

    Build one per process from the platform KEK and share it; it is thread- and task-safe.
    ``Vault.from_keys([new, old])`` holds several keys during a rotation: it encrypts with the
    first (newest) and decrypts with any of them.

    Tokens are standard Fernet tokens (AES-128-CBC + HMAC-SHA256, url-safe base64 text): any
    Fernet implementation with the same key opens them, and :meth:`decrypt` opens theirs as
    long as the plaintext is UTF-8 JSON.

    Example::

        vault = Vault.from_key(settings.master_key)
        token = vault.encrypt({"hetzner_token": "...", "ssh_key_id": 12345})
        assert vault.decrypt(token) == {"hetzner_token": "...", "ssh_key_id": 12345}
        print(vault)  # Vault(fingerprints=['3f9c0a1b']) - never the key itself
    """

    __slots__ = ("_keyring",)

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        """Prefer :meth:`from_key` / :meth:`from_keys`; this is what they call.

        Example::

            vault = Vault([new_key, old_key])
        """
        self._keyring = Keyring(keys)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_key(cls, key: str | bytes) -> Vault:
        """A vault holding exactly one key (the platform KEK).

        ``key`` is a Fernet key: 44 characters of url-safe base64 (str or ASCII bytes);
        surrounding whitespace is ignored. A malformed key raises :class:`InvalidKey` whose
        message describes the value's shape without echoing it.

        Example::

            vault = Vault.from_key(settings.master_key)
        """
        return cls([key])

    @classmethod
    def from_keys(cls, keys: Iterable[str | bytes]) -> Vault:
        """A vault for a rotation window: encrypts with ``keys[0]``, decrypts with any key.

        Deploy ``Vault.from_keys([new, old])`` everywhere, run :func:`rotate_blobs`, then
        deploy ``Vault.from_key(new)``. Keys must be distinct.

        Example::

            vault = Vault.from_keys([settings.master_key, settings.previous_master_key])
        """
        return cls(keys)

    @staticmethod
    def generate_key() -> str:
        """A new random Fernet key: url-safe base64 of 32 bytes from the OS CSPRNG (44 chars).

        Example::

            new_key = Vault.generate_key()  # store it in your secrets manager
        """
        return generate_key()

    # -- identity ----------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the primary (encrypting) key: 8 hex characters of
        HMAC-SHA256(key, "forktex-vault-fingerprint"). Safe to log and compare.

        Example::

            log.info("vault ready, KEK %s", vault.fingerprint)
        """
        return self._keyring.fingerprints[0]

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of every configured key, newest (primary) first.

        Example::

            assert Vault.from_keys([new, old]).fingerprints[0] == Vault.from_key(new).fingerprint
        """
        return self._keyring.fingerprints

    def __repr__(self) -> str:
        return f"Vault(fingerprints={list(self._keyring.fingerprints)!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError(
            "a Vault holds key material and cannot be pickled; build it in each process "
            "with Vault.from_key(...)"
        )

    # -- encryption --------------------------------------------------------------------------

    def encrypt(self, payload: Any) -> str:
        """Serialise ``payload`` as canonical JSON and encrypt it with the primary key.

        ``payload`` may be any JSON value: dict (with str keys), list/tuple, str, int, float
        (finite), bool or None, nested at most :data:`MAX_DEPTH` levels. Anything else raises
        :class:`PayloadEncodeError` naming the type and where it sits. Returns the Fernet token
        as ASCII text.

        Example::

            token = vault.encrypt({"api_key": "...", "scopes": ["read"]})
        """
        return self._seal_raw(_payload.encode(payload))

    def decrypt(self, token: str | bytes, *, ttl: float | None = None) -> Any:
        """Open ``token`` with any configured key and return the JSON payload.

        Only the canonical text of a Fernet token is read (nothing outside url-safe base64,
        padding as encoded, no stray bits). With ``ttl`` (seconds), a token minted longer ago
        than that - or stamped more than 60 s in the future - raises :class:`TokenExpired`.

        Raises :class:`MalformedToken` when the value is not a Fernet token (wrong type,
        truncated, not canonical base64), :class:`VaultDecryptError` when no configured key
        opens it (rotated or wrong KEK, or a modified token; the message lists key
        fingerprints), and :class:`PayloadDecodeError` when it opens but does not hold UTF-8
        JSON.

        Example::

            payload = vault.decrypt(row.token)
            session = vault.decrypt(cookie, ttl=3600)  # refuse tokens older than an hour
        """
        if ttl is not None:
            ttl = _check_ttl(ttl)
        return _payload.decode(self._open(token, ttl=ttl, now=time.time()))

    def key_for(self, token: str | bytes) -> str | None:
        """Fingerprint of the configured key that opens ``token``, or ``None`` if none does.

        Useful to audit which rows are still on an old key. Never raises for bad tokens.

        Example::

            if vault.key_for(token) != vault.fingerprint:
                print("not yet on the primary key")
        """
        return self._keyring.key_for(token)

    # -- the token pipeline (plaintext bytes <-> tokens, under this vault's keys) ------------

    def _open(self, token: object, *, ttl: float | None, now: float) -> bytes:
        """The plaintext of ``token`` (see :meth:`Keyring.open`); ``now`` is the current time."""
        return self._keyring.open(token, ttl=ttl, now=now)

    def _seal_raw(
        self, plaintext: bytes, *, now: int | None = None, iv: bytes | None = None
    ) -> str:
        """A token of ``plaintext`` under the primary key (see :meth:`Keyring.seal`)."""
        return self._keyring.seal(plaintext, now=now, iv=iv)


def keyring_of(vault: Vault) -> Keyring:
    """The keys of ``vault``, for work on tokens as bytes inside this package.

    :func:`rotate_blobs` re-seals plaintexts from the old vault's keys under the new vault's
    primary key without decoding their JSON, so tokens it did not write rotate too.

    Example::

        plaintext = keyring_of(old).open_or_none(token)
        token = keyring_of(new).seal(plaintext)
    """
    return vault._keyring


def _check_ttl(ttl: object) -> float:
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise InvalidArgument(
            f"ttl must be a positive number of seconds (or None for no age limit), got "
            f"{type(ttl).__name__} {ttl!r}"[:160]
        )
    return float(ttl)
