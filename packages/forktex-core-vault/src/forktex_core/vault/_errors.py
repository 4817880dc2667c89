# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The vault exception hierarchy, rooted in :class:`VaultError`.

Every message says what is wrong and what to do about it, and none ever contains a key,
a token's plaintext or a payload value: keys appear only as their fingerprints.
"""

from __future__ import annotations

from sqlalchemy.exc import DontWrapMixin

from ._report import RotationReport


class VaultError(Exception, DontWrapMixin):
    """Base class of every error raised by ``forktex_core.vault``.

    Raised from inside a SQLAlchemy statement (an ``EncryptedJSON`` value that cannot be
    encrypted), it propagates as itself: SQLAlchemy does not wrap it in a ``StatementError``,
    whose message would print the statement's parameters - the plaintext being written.

    Example::

        try:
            payload = vault.decrypt(token)
        except VaultError as exc:
            log.error("credential unusable: %s", exc)  # safe: never holds key or plaintext
    """


class InvalidKey(VaultError, ValueError):
    """A key given to :meth:`Vault.from_key` / :meth:`Vault.from_keys` is not a Fernet key.

    The message describes the shape of the bad value (type, length), never the value.

    Example::

        try:
            Vault.from_key("not-a-key")
        except InvalidKey as exc:
            print(exc)  # "... expected 44 characters of url-safe base64 ..."
    """


class InvalidArgument(VaultError, ValueError):
    """A :class:`Vault` method got an argument it cannot use (e.g. ``decrypt(ttl=-1)``).

    Example::

        try:
            vault.decrypt(token, ttl=0)
        except InvalidArgument as exc:
            print(exc)  # "ttl must be a positive number of seconds ..."
    """


class PayloadEncodeError(VaultError, TypeError):
    """:meth:`Vault.encrypt` was given something JSON cannot represent exactly.

    The message names the offending Python type and where it sits in the payload (dict keys
    only, never values). Payloads nested deeper than :data:`MAX_DEPTH` levels, reference
    cycles, ints beyond Python's int-to-str digit limit and strings holding lone surrogates
    are refused the same way.

    Example::

        try:
            vault.encrypt({"at": datetime.now()})
        except PayloadEncodeError as exc:
            print(exc)  # "payload['at'] is a datetime ..."
    """


class VaultDecryptError(VaultError):
    """A token could not be turned back into its payload.

    Raised as is when no configured key opens the token: the token was encrypted under a
    different KEK (a rotated-away or wrong key) or was modified after encryption. The message
    shows the fingerprints of the configured keys so they can be compared across processes.
    Its subclasses narrow the cause.

    Example::

        try:
            vault.decrypt(token)
        except VaultDecryptError as exc:
            print(exc)  # "no configured key opens this token ... fingerprints ['1a2b3c4d']"
    """


class MalformedToken(VaultDecryptError, ValueError):
    """The value is not a Fernet token at all: wrong type, not url-safe base64, not the
    canonical base64 spelling of its bytes (stray characters, missing padding, stray bits),
    truncated (for example by a too-short column), an unknown version byte, or an authentic
    token whose ciphertext does not unpad (not made by a Fernet encoder).

    Example::

        try:
            vault.decrypt(token[:20])
        except MalformedToken as exc:
            print(exc)  # "... is not a Fernet token: ... truncated ..."
    """


class TokenExpired(VaultDecryptError):
    """:meth:`Vault.decrypt` was given ``ttl`` and the (authentic) token is older than that,
    or stamped more than 60 seconds in the future (clock skew).

    Example::

        try:
            vault.decrypt(token, ttl=3600)
        except TokenExpired as exc:
            print(exc)  # "... minted 2026-01-01T10:00:00Z, more than ttl=3600 s ago"
    """


class PayloadDecodeError(VaultDecryptError):
    """A configured key opened the token, but its plaintext is not UTF-8 JSON (or nests deeper
    than :data:`MAX_DEPTH` levels).

    The token was produced by some other Fernet user, not by :meth:`Vault.encrypt`.

    Example::

        raw = Fernet(key).encrypt(b"\\x00 not json")
        try:
            vault.decrypt(raw)
        except PayloadDecodeError:
            ...
    """


class RotationError(VaultError, ValueError):
    """:func:`rotate_blobs` was called with arguments it cannot work with (unknown column, a
    column that is not ``EncryptedJSON``, the same key for ``old`` and ``new``, a session with
    a transaction already open, ...). Nothing was read or written.

    Example::

        try:
            await rotate_blobs(session, table=Cred, column="nope", old=old, new=new)
        except RotationError as exc:
            print(exc)  # "... has no column 'nope'; its columns are ..."
    """


class RotationInterrupted(VaultError):
    """:func:`rotate_blobs` stopped part-way. Every batch before the failing one is
    committed; the failing batch was rolled back as a whole. Re-run the same call to resume:
    rows already on the new key are detected and skipped.

    ``report`` holds the progress made up to the interruption; ``__cause__`` is the underlying
    error, when there is one.

    Example::

        try:
            report = await rotate_blobs(session, table=Cred, column="payload", old=o, new=n)
        except RotationInterrupted as exc:
            print(exc.report.rotated, "rows done before the failure; re-run to resume")
    """

    def __init__(self, message: str, report: RotationReport) -> None:
        super().__init__(message)
        self.report = report
