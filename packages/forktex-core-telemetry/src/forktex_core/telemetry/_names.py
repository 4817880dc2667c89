# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""What ``error.type`` says about an exception: a class name, never a message."""

from __future__ import annotations

from ._errors import InvalidArgument


def qualified_name(cls: type) -> str:
    """The public dotted name of ``cls``: private modules left out, ``builtins`` dropped.

    Example::

        qualified_name(ConnectionRefusedError)  # 'ConnectionRefusedError'
        qualified_name(CacheUnavailable)  # 'forktex_core.cache.CacheUnavailable'
    """
    if not isinstance(cls, type):
        raise InvalidArgument(
            f"qualified_name() takes a class, got a {type(cls).__name__}: pass type(exc)"
        )
    module = ".".join(p for p in cls.__module__.split(".") if not p.startswith("_"))
    if module in ("", "builtins"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def root_cause(exc: BaseException) -> BaseException:
    """The original error ``exc`` wraps: the end of its ``__cause__`` chain (``exc`` itself
    when it wraps nothing). A chain that loops ends where it would repeat.

    Example::

        try:
            ...
        except CacheUnavailable as exc:
            root_cause(exc)  # the redis ConnectionError it was raised from
    """
    if not isinstance(exc, BaseException):
        raise InvalidArgument(f"root_cause() takes an exception, got a {type(exc).__name__}")
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def error_type(exc: BaseException) -> str:
    """The default ``error.type`` of ``exc``: the qualified class name of its root cause.
    Never the message: messages may quote keys, arguments or primary keys.

    Example::

        error_type(ValueError("secret"))  # 'ValueError'
    """
    return qualified_name(type(root_cause(exc)))
