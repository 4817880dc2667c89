# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Namespace validation and key building."""

from __future__ import annotations

from typing import Any

import pytest

from forktex_core.cache import InvalidKey, InvalidNamespace, Namespace


def test_both_separators_name_the_same_namespace() -> None:
    assert Namespace("user.profile") == Namespace("user:profile")
    assert hash(Namespace("user.profile")) == hash(Namespace("user:profile"))
    assert Namespace("user.profile").name == "user:profile"
    assert Namespace("user.profile").key(42) == "user:profile:42"
    assert Namespace("user.profile").key("42", "v2") == "user:profile:42:v2"
    assert Namespace("a-b_C.9").key("x") == "a-b_C:9:x"
    assert str(Namespace("a.b")) == "a:b" and repr(Namespace("a.b")) == "Namespace('a:b')"
    assert Namespace("user.profile") != Namespace("user.profiles")


def test_child_and_pattern() -> None:
    ns = Namespace("user").child("profile")
    assert ns == Namespace("user.profile")
    assert ns.child("avatar.small").key(1) == "user:profile:avatar:small:1"
    assert ns.pattern() == "user:profile:*"
    assert ns.pattern("4?") == "user:profile:4?"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "user profile",
        "user..profile",
        ".user",
        "user.",
        "user:*",
        "a{b}",
        "ü",
        "a/b",
        "x" * 65,
        ".".join(["ab"] * 70),
        None,
        5,
        b"user",
    ],
)
def test_invalid_namespaces_are_refused(name: Any) -> None:
    with pytest.raises(InvalidNamespace, match="allowed: one or more segments"):
        Namespace(name)


def test_invalid_key_parts_and_children() -> None:
    ns = Namespace("user")
    with pytest.raises(InvalidKey, match="at least one part"):
        ns.key()
    for bad in ["", True, None, 1.5, b"x"]:
        with pytest.raises(InvalidKey):
            ns.key(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidNamespace):
        ns.child("has space")
    with pytest.raises(InvalidNamespace):
        ns.child("")
    with pytest.raises(InvalidKey):
        ns.pattern("")
