# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The :class:`Vault`: Fernet encryption of JSON payloads under one or more KEKs."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ._errors import InvalidKey, MalformedToken, PayloadDecodeError, PayloadEncodeError
from ._errors import VaultDecryptError as _VaultDecryptError
from ._keys import fingerprint, generate_key, parse_key

# Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity. Built once: calling
# json.dumps with keyword arguments would build a new encoder on every call.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_encode = _ENCODER.encode
_decode = json.loads

_TOKEN_ALPHABET = re.compile(rb"[A-Za-z0-9_-]+={0,2}")
# version (1) + timestamp (8) + IV (16) + at least one AES block (16) + HMAC (32)
_MIN_TOKEN_BYTES = 1 + 8 + 16 + 16 + 32
_JSON_SCALARS = (str, int, float, bool, type(None))


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

    __slots__ = ("_decrypt_with", "_fernets", "_fingerprints", "_primary")

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        """Prefer :meth:`from_key` / :meth:`from_keys`; this is what they call.

        Example::

            vault = Vault([new_key, old_key])
        """
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
        for i, key in enumerate(parsed):
            if key in seen:
                raise InvalidKey(
                    f"key #{i} repeats key #{seen[key]} (fingerprint {prints[i]}); list each "
                    "key once, newest first"
                )
            seen[key] = i
        self._fernets = tuple(Fernet(key) for key in parsed)
        self._primary = self._fernets[0]
        self._fingerprints = prints
        # One key: call Fernet directly (MultiFernet only adds a loop and a try/except).
        self._decrypt_with = self._primary.decrypt if len(parsed) == 1 else self._decrypt_any

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
        return self._fingerprints[0]

    @property
    def fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of every configured key, newest (primary) first.

        Example::

            assert Vault.from_keys([new, old]).fingerprints[0] == Vault.from_key(new).fingerprint
        """
        return self._fingerprints

    def __repr__(self) -> str:
        return f"Vault(fingerprints={list(self._fingerprints)!r})"

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
        (finite), bool or None. Anything else raises :class:`PayloadEncodeError` naming the
        type and where it sits. Returns the Fernet token as ASCII text.

        Example::

            token = vault.encrypt({"api_key": "...", "scopes": ["read"]})
        """
        try:
            _check_keys(payload)
            plaintext = _encode(payload)
        except (TypeError, ValueError, RecursionError):
            problem = _describe_unencodable(payload)
        else:
            return self._primary.encrypt(plaintext.encode("utf-8")).decode("ascii")
        # Raised outside the except block: the json error is not chained onto ours.
        raise PayloadEncodeError(problem)

    def decrypt(self, token: str | bytes) -> Any:
        """Open ``token`` with any configured key and return the JSON payload.

        Raises :class:`MalformedToken` when the value is not a Fernet token (wrong type,
        truncated, not base64), :class:`VaultDecryptError` when no configured key opens it
        (rotated or wrong KEK, or a modified token; the message lists key fingerprints), and
        :class:`PayloadDecodeError` when it opens but does not hold UTF-8 JSON.

        Example::

            payload = vault.decrypt(row.token)
        """
        try:
            plaintext = self._decrypt_with(token)
        except (InvalidToken, TypeError, ValueError):
            error = self._explain_failure(token)
        else:
            try:
                return _decode(plaintext)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError carry the plaintext
                error = PayloadDecodeError(
                    "a configured key opened the token, but its plaintext is not UTF-8 JSON, "
                    "so it was not written by Vault.encrypt; decrypt it with "
                    "cryptography.fernet.Fernet if it holds raw bytes"
                )
        raise error

    def key_for(self, token: str | bytes) -> str | None:
        """Fingerprint of the configured key that opens ``token``, or ``None`` if none does.

        Useful to audit which rows are still on an old key. Never raises for bad tokens.

        Example::

            if vault.key_for(token) != vault.fingerprint:
                print("not yet on the primary key")
        """
        for fernet, print_ in zip(self._fernets, self._fingerprints, strict=True):
            try:
                fernet.decrypt(token)
            except (InvalidToken, TypeError, ValueError):
                continue
            return print_
        return None

    # -- internals used by rotate_blobs ------------------------------------------------------

    def _decrypt_any(self, token: str | bytes) -> bytes:
        for fernet in self._fernets:
            try:
                return fernet.decrypt(token)
            except InvalidToken:
                continue
        raise InvalidToken

    def _opens_with_primary(self, token: str | bytes) -> bool:
        try:
            self._primary.decrypt(token)
        except (InvalidToken, TypeError, ValueError):
            return False
        return True

    def _open_raw(self, token: str | bytes) -> bytes | None:
        try:
            return self._decrypt_any(token)
        except (InvalidToken, TypeError, ValueError):
            return None

    def _seal_raw(self, plaintext: bytes) -> str:
        return self._primary.encrypt(plaintext).decode("ascii")

    def _explain_failure(self, token: object) -> _VaultDecryptError:
        shape = _token_problem(token)
        if shape is not None:
            return MalformedToken(
                f"the value is not a Fernet token: {shape}. Check the column is not truncating "
                "it and that it was produced by Vault.encrypt (or another Fernet encoder)"
            )
        assert isinstance(token, str | bytes)
        minted = _token_time(token)
        return _VaultDecryptError(
            f"no configured key opens this token (minted {minted}); configured key "
            f"fingerprints {list(self._fingerprints)}. Likely causes: the KEK was rotated or "
            "this process runs with the wrong key (compare fingerprints across processes; "
            "during a rotation use Vault.from_keys([new, old])), or the token was modified or "
            "corrupted after encryption"
        )


def _check_keys(value: Any) -> None:
    """Reject dict keys JSON would silently turn into strings (exact round trips)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError
            if type(item) in (dict, list, tuple):
                _check_keys(item)
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) in (dict, list, tuple):
                _check_keys(item)


def _describe_unencodable(payload: Any) -> str:
    """Find the first value JSON cannot represent; name its type and path (keys, not values)."""
    found = _find_unencodable(payload, "payload", set())
    if found is None:  # pragma: no cover - defensive: json refused something we accept
        return "the payload could not be serialised as JSON; pass dict/list/str/int/float/bool/None"
    return found


def _find_unencodable(value: Any, path: str, active: set[int]) -> str | None:
    allowed = "use only dict (str keys), list, str, int, float, bool and None"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path} is a non-finite float, which JSON cannot represent; {allowed}"
    if isinstance(value, _JSON_SCALARS):
        return None
    if isinstance(value, dict | list | tuple):
        if id(value) in active:
            return f"{path} contains itself (a reference cycle); JSON needs a tree"
        active.add(id(value))
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return (
                            f"{path} has a key of type {type(key).__name__}; JSON object keys "
                            "must be str (convert them explicitly so the round trip is exact)"
                        )
                    found = _find_unencodable(item, f"{path}[{key!r}]", active)
                    if found:
                        return found
            else:
                for i, item in enumerate(value):
                    found = _find_unencodable(item, f"{path}[{i}]", active)
                    if found:
                        return found
        finally:
            active.discard(id(value))
        return None
    return (
        f"{path} is a {type(value).__module__}.{type(value).__qualname__}, which JSON cannot "
        f"represent; convert it first (e.g. str(), .isoformat(), float()) - {allowed}"
    )


def _token_problem(token: object) -> str | None:
    """Why ``token`` is structurally not a Fernet token, or ``None`` if it looks like one."""
    if isinstance(token, str):
        try:
            data = token.encode("ascii")
        except UnicodeEncodeError:
            return "it contains non-ASCII characters"
    elif isinstance(token, bytes):
        data = token
    else:
        return f"expected str or bytes, got {type(token).__name__}"
    if not data:
        return "it is empty"
    if not _TOKEN_ALPHABET.fullmatch(data):
        return "it contains characters outside url-safe base64"
    try:
        raw = base64.urlsafe_b64decode(data)
    except (binascii.Error, ValueError):
        return f"its {len(data)} characters are not valid base64 (truncated?)"
    if raw[0] != 0x80:
        return f"unknown version byte 0x{raw[0]:02x} (Fernet tokens start with 0x80)"
    if len(raw) < _MIN_TOKEN_BYTES or (len(raw) - 57) % 16:
        return f"it decodes to {len(raw)} bytes, which no Fernet token has (truncated?)"
    return None


def _token_time(token: str | bytes) -> str:
    raw = base64.urlsafe_b64decode(token)
    (seconds,) = struct.unpack(">Q", raw[1:9])
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "at an invalid timestamp"
