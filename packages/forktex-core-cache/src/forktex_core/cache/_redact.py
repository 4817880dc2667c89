# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Connection URLs made safe to print: every credential-bearing part becomes ``***``."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

#: Query parameter names that carry credentials (redis-py turns ``?password=...`` into the
#: AUTH password): matched anywhere in the name, case-insensitively.
_CREDENTIAL_NAME: Final = re.compile(r"pass|pwd|secret|token|key|auth|cred|sig", re.IGNORECASE)
_SEPARATOR: Final = re.compile(r"([&;])")
MASK: Final = "***"


def mask_url(url: str) -> str:
    """``url`` for logs and errors: the whole userinfo (user name and password), the value of
    every query parameter whose name looks like a credential (``password``, ``pass``, ``pwd``,
    ``secret``, ``token``, ``key``, ``auth``, ``cred``, ``sig``, in any case and anywhere in the
    name, e.g. ``ssl_password``, ``api_key``) and any fragment are replaced by ``***``.

    Example::

        mask_url("redis://app:s3cret@cache:6379/0?password=s3cret&db=1")
        # 'redis://***@cache:6379/0?password=***&db=1'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    _userinfo, at, hostport = netloc.rpartition("@")
    if at:
        netloc = f"{MASK}@{hostport}"
    # Split on ';' as well as '&': a value some parser reads as "0;password=..." is masked too.
    query = "".join(_mask_parameter(piece) for piece in _SEPARATOR.split(parts.query))
    fragment = MASK if parts.fragment else ""
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=fragment))


def _mask_parameter(parameter: str) -> str:
    name, equals, _ = parameter.partition("=")
    if equals and _CREDENTIAL_NAME.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return parameter
