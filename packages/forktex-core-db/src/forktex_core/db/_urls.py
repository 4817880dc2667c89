# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Database URLs without their secrets: ``mask_password`` and credential query parameters.

A secret can sit in the userinfo (``user:secret@host``) or in a query / fragment parameter
whose name says it is a credential (``password``, ``sslpassword``, ``secret``, ``token``,
``key``, ``api_key``, ``auth``, ``credentials``, ...); keyword DSNs (``host=db
password=secret``) carry them as ``name=value`` pairs. Every one of them is replaced by
``***``; strings that cannot be parsed are masked as far as they can be, never echoed raw.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from sqlalchemy.engine import URL

from ._errors import InvalidArgument

MASK = "***"

# A parameter name is a credential when it contains one of these (case-insensitive).
_CREDENTIAL_PARTS = ("pass", "pwd", "secret", "token", "key", "auth", "cred", "sig", "session")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:)//(?P<rest>.*)$", re.DOTALL)
_HOSTS = re.compile(r"^[\w.\-~%\[\]:,]*$")
_KEYWORD_PAIR = re.compile(
    r"(?P<name>[A-Za-z_][\w.\-]*)(?P<eq>\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'?|\S*)", re.DOTALL
)


def is_credential_name(name: str) -> bool:
    """Whether a URL query / DSN parameter called ``name`` holds a credential."""
    folded = unquote(name).lower()
    return any(part in folded for part in _CREDENTIAL_PARTS)


def _mask_params(text: str) -> str:
    """``a=1&password=x;token=y`` with every credential value masked."""
    pieces = re.split(r"([&;])", text)
    for index in range(0, len(pieces), 2):
        name, sep, _ = pieces[index].partition("=")
        if sep and is_credential_name(name):
            pieces[index] = f"{name}={MASK}"
    return "".join(pieces)


_LOOSE_USERINFO = re.compile(r"(?P<user>[^\s:/@]*):[^\s@]*@")


def _mask_keywords(text: str) -> str:
    """``host=db password='s e c'`` (a keyword DSN, or text that is not a URL) masked, and
    anything shaped like ``user:secret@``."""

    def replace(match: re.Match[str]) -> str:
        if is_credential_name(match["name"]):
            return f"{match['name']}{match['eq']}{MASK}"
        return match[0]

    text = _LOOSE_USERINFO.sub(lambda m: f"{m['user']}:{MASK}@", text)
    return _KEYWORD_PAIR.sub(replace, text)


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """``(userinfo, host_and_rest)``: the ``@`` that ends the userinfo is the last one that
    is followed by something shaped like a host list (a password may hold ``@`` / ``/``)."""
    position = len(rest)
    while True:
        position = rest.rfind("@", 0, position)
        if position < 0:
            return None, rest
        after = rest[position + 1 :]
        host = re.split(r"[/?#]", after, maxsplit=1)[0]
        if _HOSTS.match(host):
            return rest[:position], after


_ANY_PAIR = re.compile(r"(?P<name>[A-Za-z_][\w.\-%]*)=(?P<value>[^&;#\s]*)")


def _mask_any_pairs(text: str) -> str:
    """Last pass: a credential ``name=value`` wherever it ended up (e.g. an ``@`` inside a
    query value moved it into what looked like the userinfo)."""

    def replace(match: re.Match[str]) -> str:
        if is_credential_name(match["name"]) and match["value"] != MASK:
            return f"{match['name']}={MASK}"
        return match[0]

    return _ANY_PAIR.sub(replace, text)


def _mask_url_text(text: str) -> str:
    match = _SCHEME.match(text)
    if match is None:
        return _mask_keywords(text)
    userinfo, after = _split_userinfo(match["rest"])
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:{MASK}" if colon else user
    head, hash_mark, fragment = after.partition("#")
    base, question, query = head.partition("?")
    masked = base + (question + _mask_params(query) if question else "")
    masked += hash_mark + _mask_params(fragment) if hash_mark else ""
    prefix = f"{userinfo}@" if userinfo is not None else ""
    return _mask_any_pairs(f"{match['scheme']}//{prefix}{masked}")


def mask_password(url: str | URL) -> str:
    """Render a database URL with every secret in it replaced by ``***``: the password of
    the userinfo and credential query parameters (``password``, ``sslpassword``, ``secret``,
    ``token``, ``*key*``, ...). Keyword DSNs (``host=db password=x``) are masked too.

    Works on strings SQLAlchemy cannot parse, so it is safe for error messages.

    Example::

        >>> mask_password("postgresql+asyncpg://app:s3cret@db/app?sslpassword=k3y")
        'postgresql+asyncpg://app:***@db/app?sslpassword=***'
    """
    if isinstance(url, URL):
        return _mask_url_text(url.render_as_string(hide_password=True))
    if not isinstance(url, str):
        raise InvalidArgument(
            f"mask_password() takes a URL string or sqlalchemy.URL, got {type(url).__name__}"
        )
    return _mask_url_text(url)


def without_credentials(url: URL) -> tuple[URL, dict[str, str]]:
    """``url`` without credential query parameters, and those parameters (to pass as
    connect arguments instead: the engine's URL — and so its repr — then holds none)."""
    moved = {name: value for name, value in url.query.items() if is_credential_name(name)}
    if not moved:
        return url, {}
    kept = {name: value for name, value in url.query.items() if name not in moved}
    flat = {name: value if isinstance(value, str) else value[-1] for name, value in moved.items()}
    return url.set(query=kept), flat
