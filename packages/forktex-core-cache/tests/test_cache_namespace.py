# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Namespace validation and key building."""

from __future__ import annotations

import asyncio
import enum
import json
import string
import uuid
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

import pytest
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from forktex_core import cache
from forktex_core.cache import InvalidKey, InvalidNamespace, Namespace, cached


def test_both_separators_name_the_same_namespace() -> None:
    assert Namespace("user.profile") == Namespace("user:profile")
    assert hash(Namespace("user.profile")) == hash(Namespace("user:profile"))
    assert Namespace("user.profile").name == "user:profile"
    assert Namespace("user.profile").key(42) == "user:profile::42"
    assert Namespace("user.profile").key("42", "v2") == "user:profile::42:v2"
    assert Namespace("a-b_C.9").key("x") == "a-b_C:9::x"
    assert str(Namespace("a.b")) == "a:b" and repr(Namespace("a.b")) == "Namespace('a:b')"
    assert Namespace("user.profile") != Namespace("user.profiles")


def test_child_and_pattern() -> None:
    ns = Namespace("user").child("profile")
    assert ns == Namespace("user.profile")
    assert ns.child("avatar.small").key(1) == "user:profile:avatar:small::1"
    assert ns.pattern() == "user:profile:*"
    assert ns.pattern("4?") == "user:profile::4?"


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


# -- key encoding: injective, no hash tags, no globs -------------------------------------------

_SEGMENTS = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=6)
_NAMESPACES = st.lists(_SEGMENTS, min_size=1, max_size=3).map(".".join)
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.characters(categories=["Cs"]),  # lone surrogates
        st.sampled_from(list(":{}*?[]\\%.~ \n")),
    ),
    min_size=1,
    max_size=12,
)


@st.composite
def _looks_encoded(draw: st.DrawFn) -> str:
    """A part that looks like an already encoded part or a piece of a key."""
    inner = draw(_TEXT)
    encoded = quote_from_bytes(inner.encode("utf-8", "surrogatepass"), safe="")
    return draw(
        st.sampled_from(
            [encoded, encoded + ":" + encoded, ":" + encoded, encoded + "::", "%" + encoded[1:]]
        )
    )


_PARTS = st.one_of(
    _TEXT,
    _looks_encoded(),
    st.integers(),
    st.uuids(),
    st.sampled_from(["::", ":", "%3A", "%253A", "a%3Ab", "{x}", "*", "avatar", "avatar:42"]),
)


def _decode_key(key: str) -> tuple[str, tuple[str, ...]]:
    """The inverse of Namespace.key: (namespace, part texts). Its existence proves that the
    encoding is injective."""
    namespace, sep, rest = key.partition("::")
    assert sep and namespace and rest
    texts = tuple(
        unquote_to_bytes(piece).decode("utf-8", "surrogatepass") for piece in rest.split(":")
    )
    return namespace, texts


def _text(part: Any) -> str:
    return str(part)


@settings(max_examples=400, deadline=None, database=None)
@given(namespace=_NAMESPACES, parts=st.lists(_PARTS, min_size=1, max_size=4))
def test_keys_decode_back_to_their_namespace_and_parts(namespace: str, parts: list[Any]) -> None:
    ns = Namespace(namespace)
    key = ns.key(*parts)
    assert _decode_key(key) == (ns.name, tuple(_text(p) for p in parts))
    assert key.isascii() and key.isprintable() and " " not in key
    assert not set(key) & set("{}*?[]\\"), key  # no hash tag, no glob
    assert key.startswith(ns.name + "::")


@settings(max_examples=400, deadline=None, database=None)
@given(
    a=st.tuples(_NAMESPACES, st.lists(_PARTS, min_size=1, max_size=3)),
    b=st.tuples(_NAMESPACES, st.lists(_PARTS, min_size=1, max_size=3)),
)
def test_distinct_namespaces_and_parts_never_share_a_key(
    a: tuple[str, list[Any]], b: tuple[str, list[Any]]
) -> None:
    (ns_a, parts_a), (ns_b, parts_b) = a, b
    same = Namespace(ns_a) == Namespace(ns_b) and [_text(p) for p in parts_a] == [
        _text(p) for p in parts_b
    ]
    assert (Namespace(ns_a).key(*parts_a) == Namespace(ns_b).key(*parts_b)) == same
    # a child namespace is never reachable through parts of its parent
    child = Namespace(ns_a).child(ns_b)
    assert child.key(*parts_b) != Namespace(ns_a).key(*ns_b.split("."), *parts_b)


def test_the_reported_collisions_are_gone() -> None:
    ns = Namespace("user.profile")
    assert ns.key("avatar:42") != ns.child("avatar").key(42)
    assert ns.key("avatar", 42) != ns.child("avatar").key(42)
    assert ns.key("avatar:42") == "user:profile::avatar%3A42"
    assert ns.key("a:b", "c") != ns.key("a", "b:c")
    assert ns.key("%3A") != ns.key(":")
    assert ns.key("x{tag}*?") == "user:profile::x%7Btag%7D%2A%3F"


def test_uuid_int_and_str_parts() -> None:
    user_id = uuid.UUID("6f1c2b9e-0d7a-4c3e-9f00-1234567890ab")
    ns = Namespace("user.profile")
    assert ns.key(user_id) == "user:profile::6f1c2b9e-0d7a-4c3e-9f00-1234567890ab"
    assert ns.key(user_id) == ns.key(str(user_id))  # a part is identified by its text
    assert ns.key(42) == ns.key("42") and ns.key(-7) == "user:profile::-7"

    class Kind(enum.StrEnum):
        ADMIN = "admin"

    class Level(enum.IntEnum):
        HIGH = 3

    assert ns.key(Kind.ADMIN) == ns.key("admin") and ns.key(Level.HIGH) == ns.key(3)


@pytest.mark.parametrize(
    ("part", "match"),
    [
        ("", "non-empty str, int"),
        (True, "got bool"),
        (None, "got NoneType"),
        (1.5, "got float"),
        (b"x", "got bytes"),
        (uuid.uuid4().bytes, "got bytes"),
        (10**5000, "more digits than Python writes"),
    ],
    ids=["empty", "bool", "none", "float", "bytes", "uuid-bytes", "huge-int"],
)
def test_bad_key_parts_are_refused(part: Any, match: str) -> None:
    with pytest.raises(InvalidKey, match=match):
        Namespace("user").key(part)


def test_pattern_without_and_with_a_glob() -> None:
    ns = Namespace("user.profile")
    assert ns.pattern() == "user:profile:*"
    assert ns.pattern("42:*") == "user:profile::42:*"
    for bad in ("", 5, b"*"):
        with pytest.raises(InvalidKey, match="glob must be a non-empty str"):
            ns.pattern(bad)  # type: ignore[arg-type]


async def test_a_namespace_key_cannot_poison_a_cached_entry(
    cache_client: str, raw: redis.asyncio.Redis
) -> None:
    """The text of a @cached key used as a Namespace key part (e.g. from a request) writes
    its own, encoded key - never the @cached entry."""

    @cached(ttl=60, namespace="user.profile")
    async def get_profile(user_id: str) -> dict[str, str]:
        return {"user": user_id, "role": "member"}

    assert await get_profile("victim") == {"user": "victim", "role": "member"}
    target = get_profile.key_for("victim")
    ns = Namespace("user.profile")
    forged = target.removeprefix(cache_client + ns.name + ":")  # '<module>.get_profile:{...}'
    assert "{" in forged and ns.key(forged) != target.removeprefix(cache_client)
    await cache.set_json(ns.key(forged), {"user": "victim", "role": "admin"})
    assert await get_profile("victim") == {"user": "victim", "role": "member"}
    assert json.loads(await raw.get(target) or b"null") == {"user": "victim", "role": "member"}


def test_cached_keys_and_namespace_keys_are_disjoint(forktex_redis: Any) -> None:
    """Every @cached key (and its lock) holds '{', no Namespace key does: the two key spaces
    cannot meet, whatever the namespace, the parts or the arguments."""
    loop = asyncio.new_event_loop()
    loop.run_until_complete(cache.init(forktex_redis.url, prefix="", verify=False))

    @settings(max_examples=300, deadline=None, database=None)
    @given(namespace=_NAMESPACES, parts=st.lists(_PARTS, min_size=1, max_size=3), arg=_PARTS)
    def check(namespace: str, parts: list[Any], arg: Any) -> None:
        @cached(ttl=1, namespace=namespace)
        async def fetch(x: Any) -> None: ...

        ns_key = Namespace(namespace).key(*parts)
        cached_key = fetch.key_for(arg)
        assert "{" in cached_key and "{" not in ns_key
        assert ns_key not in (cached_key, cached_key + ":lock")

    try:
        check()
    finally:
        loop.run_until_complete(cache.close())
        loop.close()
