# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Redaction of what the console shows: values under secret-looking keys never leave it.

Every value the console renders (a run's input, output, error and metadata, step results,
signal payloads) passes through the host's redactor first. The default,
:data:`redact_secrets`, replaces the value of every object key that looks like a secret
(``password``, ``secret``, ``token``, ``api_key``, ``authorization``, ...), at any depth,
with ``"[redacted]"``. A redactor that raises fails closed: the value is not shown at all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("forktex_core.console")

REDACTED = "[redacted]"
WITHHELD = "[not shown: the redactor failed]"

Redactor = Callable[[Any], Any]
"""``value -> value to show``: given JSON-like data (dicts, lists, scalars)."""

#: Fragments that mark a secret anywhere in a key (case and ``-``/``_`` ignored).
SECRET_FRAGMENTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "authorization",
    "credential",
    "cookie",
    "signature",
)
#: Words that mark a secret when they are a whole word of a key (``api_key``, ``signingKey``,
#: ``auth``, ``session_id``): as fragments they would match ``monkey`` or ``shipping``.
SECRET_WORDS = ("key", "auth", "pwd", "pin", "cvv", "cvc", "ssn", "iban", "otp", "session", "jwt")


class SecretRedactor:
    """Replace the values of secret-looking keys, at any depth, with ``"[redacted]"``.

    A key is secret when, lower-cased and without separators, it contains one of
    ``fragments`` (default :data:`SECRET_FRAGMENTS`), or when one of its words (split at
    ``_``, ``-``, ``.``, spaces and camelCase) is one of ``words`` (default
    :data:`SECRET_WORDS`, plus ``extra``). Over-redacting (``sort_key``) is the safe side.

    Example::

        redact = SecretRedactor(extra=("dob",))
        redact({"user": "ada", "db_password": "x", "nested": [{"apiKey": "y"}], "dob": 1})
        # {'user': 'ada', 'db_password': '[redacted]', 'nested': [{'apiKey': '[redacted]'}],
        #  'dob': '[redacted]'}
    """

    def __init__(
        self,
        *,
        extra: Iterable[str] = (),
        fragments: Iterable[str] = SECRET_FRAGMENTS,
        words: Iterable[str] = SECRET_WORDS,
    ) -> None:
        frags = [_squash(f) for f in fragments]
        whole = {w.lower() for w in (*words, *extra)}
        if any(not isinstance(w, str) or not w for w in (*frags, *whole)):
            raise ValueError("secret words and fragments must be non-empty strings")
        self._fragments = re.compile("|".join(re.escape(f) for f in frags)) if frags else None
        self._words = frozenset(whole)

    def is_secret(self, key: str) -> bool:
        """True when ``key`` names a secret.

        Example::

            redact_secrets.is_secret("X-Api-Key")  # True
        """
        if self._fragments is not None and self._fragments.search(_squash(key)):
            return True
        return any(w in self._words for w in _words(key))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: REDACTED if isinstance(k, str) and self.is_secret(k) else self(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


def _squash(key: str) -> str:
    return re.sub(r"[\s_\-.]", "", key.lower())


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


redact_secrets: Redactor = SecretRedactor()
"""The default redactor (:class:`SecretRedactor` with its default words)."""


def shown(redactor: Redactor, value: Any) -> Any:
    """``redactor(value)``, or a placeholder when the redactor fails (fail closed)."""
    if value is None:
        return None
    try:
        return redactor(value)
    except Exception:
        log.exception("console: the redactor failed; the value is withheld")
        return WITHHELD
