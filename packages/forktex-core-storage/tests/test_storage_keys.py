# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Key validation and the key builder."""

from __future__ import annotations

import pytest

from forktex_core.storage import InvalidKey, build_key, validate_key


@pytest.mark.parametrize(
    "key",
    [
        "invoices/2026-04/INV-123.pdf",
        "a",
        "ünïcode/файл.txt",
        "spaces are fine.txt",
        "dots.in.names/..hidden/x..y",
        "k" * 1024,
        "é" * 512,
    ],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        (" ", "only whitespace"),
        ("\u3000 ", "only whitespace"),
        ("../etc/passwd", "'..' segment"),
        ("a/../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("./a", "'.' segment"),
        ("/abs/path", "absolute"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x85b", "control character"),
        ("a\\b", "backslash"),
        ("k" * 1025, "1025 bytes"),
        ("é" * 513, "1026 bytes"),
        ("bad\udc80", "UTF-8"),
    ],
)
def test_invalid_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason) as exc:
        validate_key(key)
    assert "allowed" in str(exc.value)
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize("key", [None, 1, b"bytes", ["a"]])
def test_non_str_keys(key: object) -> None:
    with pytest.raises(InvalidKey, match="must be a str"):
        validate_key(key)


def test_long_key_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidKey) as exc:
        validate_key("k" * 2000)
    assert len(str(exc.value)) < 400


def test_build_key() -> None:
    assert build_key("invoices", "2026-04", "INV-123.pdf") == "invoices/2026-04/INV-123.pdf"
    assert build_key("single") == "single"
    with pytest.raises(InvalidKey, match="at least one"):
        build_key()
    with pytest.raises(InvalidKey, match="no '/'"):
        build_key("invoices", "a/b.pdf")
    with pytest.raises(InvalidKey, match="non-empty"):
        build_key("invoices", "")
    with pytest.raises(InvalidKey, match=r"'\.\.' segment"):
        build_key("invoices", "..")
    with pytest.raises(InvalidKey, match="must be a str"):
        build_key("invoices", 7)  # type: ignore[arg-type]
