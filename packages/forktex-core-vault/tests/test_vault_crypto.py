# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Vault: keys, round trips, Fernet interoperability, rotation window, diagnostics, no leaks."""

from __future__ import annotations

import base64
import copy
import datetime
import decimal
import json
import logging
import pickle
import string
import time
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet
from hypothesis import given, settings
from hypothesis import strategies as st

from forktex_core.vault import (
    MAX_DEPTH,
    InvalidArgument,
    InvalidKey,
    MalformedToken,
    PayloadDecodeError,
    PayloadEncodeError,
    TokenExpired,
    Vault,
    VaultDecryptError,
    VaultError,
)

SECRET = "s3cr3t-hetzner-token-do-not-leak"


def _assert_no_leak(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        # nor a recognisable chunk of a key (its base64 body, or the raw bytes' hex)
        if len(secret) == 44:
            assert secret[:16] not in text
            assert base64.urlsafe_b64decode(secret).hex()[:16] not in text


def _exc_text(exc: BaseException) -> str:
    parts = [str(exc), repr(exc)]
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None:
        parts += [str(cause), repr(cause), repr(getattr(cause, "doc", ""))]
        parts += [repr(getattr(cause, "object", ""))]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


# -- keys ---------------------------------------------------------------------------------------


def test_generate_key_is_a_fernet_key() -> None:
    key = Vault.generate_key()
    assert isinstance(key, str) and len(key) == 44
    assert len(base64.urlsafe_b64decode(key)) == 32
    Fernet(key)  # accepted by the reference implementation
    assert Vault.generate_key() != key


def test_from_key_accepts_str_bytes_and_surrounding_whitespace(old_key: str) -> None:
    token = Vault.from_key(old_key).encrypt({"a": 1})
    assert Vault.from_key(old_key.encode()).decrypt(token) == {"a": 1}
    assert Vault.from_key(f"  {old_key}\n").decrypt(token) == {"a": 1}
    assert Vault.from_key(Fernet.generate_key()).fingerprint


@pytest.mark.parametrize(
    ("make_bad", "expected"),
    [
        (lambda k: "", "empty"),
        (lambda k: "   \n", "empty"),
        (lambda k: k[:-1], "43 characters"),
        (lambda k: k + "AAAA", "48 characters"),
        (lambda k: k[:-2] + "+=", "outside the url-safe base64 alphabet"),
        (lambda k: "é" * 44, "outside the url-safe base64 alphabet"),
        (lambda k: k.encode()[:-3], "41 characters"),
        (lambda k: base64.urlsafe_b64decode(k), "32 raw bytes"),
        (lambda k: b"\xff" * 44, "not ASCII"),
        (lambda k: 12345, "got int"),
        (lambda k: None, "got NoneType"),
    ],
)
def test_malformed_key_is_rejected_without_echoing_it(
    make_bad: Any, expected: str, old_key: str
) -> None:
    bad = make_bad(old_key)
    with pytest.raises(InvalidKey) as info:
        Vault.from_key(bad)
    text = _exc_text(info.value)
    assert expected in text
    assert "Vault.generate_key()" in text
    assert isinstance(info.value, ValueError) and isinstance(info.value, VaultError)
    _assert_no_leak(text, old_key)
    if isinstance(bad, str) and len(bad.strip()) > 4:
        assert bad.strip() not in text


def test_from_keys_rejects_empty_duplicate_and_bare_string(old_key: str, new_key: str) -> None:
    with pytest.raises(InvalidKey, match="at least one key"):
        Vault.from_keys([])
    with pytest.raises(InvalidKey, match=r"key #2 repeats key #0") as info:
        Vault.from_keys([new_key, old_key, new_key])
    _assert_no_leak(_exc_text(info.value), new_key, old_key)
    with pytest.raises(InvalidKey, match="list of keys"):
        Vault.from_keys(new_key)  # type: ignore[arg-type]
    with pytest.raises(InvalidKey, match=r"key #1 .* 3 characters"):
        Vault.from_keys([new_key, "abc"])


def test_fingerprint_is_stable_keyed_and_short(old_key: str, new_key: str) -> None:
    a, b = Vault.from_key(old_key), Vault.from_key(old_key)
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 8 and int(a.fingerprint, 16) >= 0
    assert Vault.from_key(new_key).fingerprint != a.fingerprint
    # keyed: not simply a hash of the key text or bytes
    import hashlib

    raw = base64.urlsafe_b64decode(old_key)
    for plain in (hashlib.sha256(raw).hexdigest(), hashlib.sha256(old_key.encode()).hexdigest()):
        assert not plain.startswith(a.fingerprint)
    both = Vault.from_keys([new_key, old_key])
    assert both.fingerprints == (Vault.from_key(new_key).fingerprint, a.fingerprint)
    assert both.fingerprint == both.fingerprints[0]


def test_repr_and_str_show_fingerprints_only(old_key: str, new_key: str) -> None:
    vault = Vault.from_keys([new_key, old_key])
    for text in (repr(vault), str(vault), f"{vault}", repr([vault])):
        assert vault.fingerprints[0] in text and vault.fingerprints[1] in text
        _assert_no_leak(text, old_key, new_key)


def test_vault_refuses_pickling_and_copies_share_nothing_secret(old_key: str) -> None:
    vault = Vault.from_key(old_key)
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(vault)
    _assert_no_leak(_exc_text(info.value), old_key)
    with pytest.raises(TypeError):
        copy.deepcopy(vault)


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"hetzner_token": SECRET, "ssh_key_id": 12345},
        {},
        [],
        "plain string",
        "",
        "ünïcødé ✓ \u0000 \n\t\"'\\",
        0,
        -(2**70),
        3.5,
        -0.0,
        1e308,
        True,
        False,
        None,
        [1, "two", 3.0, None, True, {"nested": [[], {}]}],
        {"deep": {"er": {"est": [1, {"x": None}]}}, "z": 1, "a": 2},
    ],
    ids=lambda p: type(p).__name__ + ":" + json.dumps(p)[:20],
)
def test_round_trip_every_json_type(payload: Any, old_vault: Vault) -> None:
    token = old_vault.encrypt(payload)
    assert isinstance(token, str) and token.isascii()
    out = old_vault.decrypt(token)
    assert out == payload and type(out) is type(payload)
    assert old_vault.decrypt(token.encode()) == payload


def test_tuples_become_lists(old_vault: Vault) -> None:
    assert old_vault.decrypt(old_vault.encrypt({"t": (1, 2)})) == {"t": [1, 2]}


def test_serialisation_is_canonical(old_key: str, old_vault: Vault) -> None:
    plain = Fernet(old_key).decrypt(old_vault.encrypt({"b": 1, "a": [1, {"d": 2, "c": "é"}]}))
    assert plain == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()


def test_each_encryption_is_fresh(old_vault: Vault) -> None:
    assert old_vault.encrypt({"a": 1}) != old_vault.encrypt({"a": 1})


# -- interoperability with plain cryptography.fernet -------------------------------------------


def test_tokens_are_standard_fernet_both_ways(old_key: str, old_vault: Vault) -> None:
    payload = {"hetzner_token": SECRET, "n": [1, 2.5, None]}
    ours = old_vault.encrypt(payload)
    assert json.loads(Fernet(old_key).decrypt(ours)) == payload
    assert json.loads(Fernet(old_key.encode()).decrypt(ours.encode())) == payload
    theirs = Fernet(old_key).encrypt(json.dumps(payload).encode())
    assert old_vault.decrypt(theirs) == payload
    assert old_vault.decrypt(theirs.decode()) == payload


def test_multifernet_interop_during_rotation(old_key: str, new_key: str) -> None:
    multi = MultiFernet([Fernet(new_key), Fernet(old_key)])
    window = Vault.from_keys([new_key, old_key])
    assert window.decrypt(multi.encrypt(b'{"x":1}')) == {"x": 1}
    assert json.loads(Fernet(new_key).decrypt(window.encrypt({"x": 1}))) == {"x": 1}


# -- rotation window ---------------------------------------------------------------------------


def test_from_keys_encrypts_with_newest_and_decrypts_with_any(old_key: str, new_key: str) -> None:
    old, new = Vault.from_key(old_key), Vault.from_key(new_key)
    window = Vault.from_keys([new_key, old_key])
    old_token, new_token = old.encrypt({"v": "old"}), new.encrypt({"v": "new"})
    assert window.decrypt(old_token) == {"v": "old"}
    assert window.decrypt(new_token) == {"v": "new"}
    fresh = window.encrypt({"v": "window"})
    assert new.decrypt(fresh) == {"v": "window"}  # newest key only
    with pytest.raises(VaultDecryptError):
        old.decrypt(fresh)
    assert window.key_for(old_token) == old.fingerprint
    assert window.key_for(new_token) == new.fingerprint
    assert window.key_for("garbage") is None
    assert window.key_for(12) is None  # type: ignore[arg-type]
    assert new.key_for(old_token) is None


# -- diagnostics -------------------------------------------------------------------------------


def test_wrong_key_names_the_likely_cause_and_fingerprints(old_key: str, new_key: str) -> None:
    token = Vault.from_key(old_key).encrypt({"secret": SECRET})
    configured = Vault.from_keys([new_key, Vault.generate_key()])
    with pytest.raises(VaultDecryptError) as info:
        configured.decrypt(token)
    text = _exc_text(info.value)
    assert type(info.value) is VaultDecryptError
    assert "rotated" in text and "wrong key" in text and "corrupted" in text
    for fp in configured.fingerprints:
        assert fp in text
    assert "minted 20" in text
    _assert_no_leak(text, SECRET, old_key, new_key)


def test_tampered_token_is_refused(old_vault: Vault, old_key: str) -> None:
    token = old_vault.encrypt({"secret": SECRET})
    raw = bytearray(base64.urlsafe_b64decode(token))
    for index in (10, 30, len(raw) - 40, len(raw) - 1):  # IV, ciphertext, HMAC
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        with pytest.raises(VaultDecryptError, match="modified or corrupted") as info:
            old_vault.decrypt(base64.urlsafe_b64encode(bytes(tampered)))
        _assert_no_leak(_exc_text(info.value), SECRET, old_key)
    bad_version = bytearray(raw)
    bad_version[0] = 0x81
    with pytest.raises(MalformedToken, match="version byte 0x81"):
        old_vault.decrypt(base64.urlsafe_b64encode(bytes(bad_version)))


@pytest.mark.parametrize("cut", [1, 4, 16, 60, 100])
def test_truncated_token_is_malformed(cut: int, old_vault: Vault, old_key: str) -> None:
    token = old_vault.encrypt({"secret": SECRET})
    with pytest.raises(VaultDecryptError) as info:
        old_vault.decrypt(token[:-cut])
    text = _exc_text(info.value)
    assert isinstance(info.value, MalformedToken)
    assert "truncated" in text
    _assert_no_leak(text, SECRET, old_key)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "empty"),
        (b"", "empty"),
        ("not a token!", "outside url-safe base64"),
        ("tökén", "non-ASCII"),
        (123, "got int"),
        (None, "got NoneType"),
        ({"a": 1}, "got dict"),
    ],
)
def test_non_tokens_are_malformed(token: Any, expected: str, old_vault: Vault) -> None:
    with pytest.raises(MalformedToken, match=expected):
        old_vault.decrypt(token)


def test_non_json_plaintext_is_a_clear_error(old_key: str, old_vault: Vault) -> None:
    for plaintext in (SECRET.encode(), b"\xff\xfe" + SECRET.encode(), b"{'a': 1}"):
        with pytest.raises(PayloadDecodeError, match="not UTF-8 JSON") as info:
            old_vault.decrypt(Fernet(old_key).encrypt(plaintext))
        assert isinstance(info.value, VaultDecryptError)
        text = _exc_text(info.value)
        _assert_no_leak(text, SECRET, old_key)
        assert info.value.__context__ is None and info.value.__cause__ is None


class _Opaque:
    def __repr__(self) -> str:
        return SECRET


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"at": datetime.datetime(2026, 1, 1)}, r"payload\['at'\] is a datetime\.datetime"),
        ({"amount": decimal.Decimal("1.5")}, r"payload\['amount'\] is a decimal\.Decimal"),
        ([1, {"id": uuid.uuid4()}], r"payload\[1\]\['id'\] is a uuid.UUID"),
        ({"s": {1, 2}}, "builtins.set"),
        ({"b": SECRET.encode()}, "builtins.bytes"),
        ({"o": _Opaque()}, "_Opaque"),
        (float("nan"), "non-finite float"),
        ({"x": [float("inf")]}, r"payload\['x'\]\[0\] is a non-finite float"),
        ({1: SECRET}, "key of type int"),
        ({"n": {None: SECRET}}, r"payload\['n'\] has a key of type NoneType"),
        ({("a",): 1}, "key of type tuple"),
    ],
)
def test_non_json_payload_is_rejected_naming_the_type(
    payload: Any, expected: str, old_vault: Vault
) -> None:
    with pytest.raises(PayloadEncodeError, match=expected) as info:
        old_vault.encrypt(payload)
    assert isinstance(info.value, TypeError)
    text = _exc_text(info.value)
    _assert_no_leak(text, SECRET)
    assert info.value.__context__ is None


def test_cyclic_payload_is_rejected(old_vault: Vault) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(PayloadEncodeError, match="reference cycle"):
        old_vault.encrypt(loop)


def test_nothing_secret_reaches_logs(
    caplog: pytest.LogCaptureFixture, old_key: str, new_key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("app")
    vault = Vault.from_keys([new_key, old_key])
    log.info("vault ready: %s (%r)", vault, vault)
    token = vault.encrypt({"secret": SECRET})
    for bad in (
        lambda: Vault.from_key(new_key[:-1]),
        lambda: Vault.from_key(old_key).decrypt(
            Vault.from_key(Vault.generate_key()).encrypt({"secret": SECRET})
        ),
        lambda: vault.encrypt({"d": datetime.date.today(), "secret": SECRET}),
        lambda: vault.decrypt(Fernet(new_key).encrypt(SECRET.encode())),
    ):
        try:
            bad()
        except VaultError:
            log.exception("vault operation failed")
    assert vault.decrypt(token) == {"secret": SECRET}
    assert len(caplog.records) == 5
    _assert_no_leak(caplog.text, SECRET, old_key, new_key)


# -- canonical keys: one text per key ----------------------------------------------------------

_B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
_HYPOTHESIS = settings(max_examples=150, deadline=None, database=None)


def _spelling(key: str, bits: int) -> str:
    """``key`` with the two unused low bits of its last data character set to ``bits``:
    another text that decodes to the very same 32 bytes."""
    last = _B64.index(key[42])
    return key[:42] + _B64[(last & ~0b11) | bits] + "="


@_HYPOTHESIS
@given(raw=st.binary(min_size=32, max_size=32), bits=st.integers(1, 3))
def test_only_the_canonical_spelling_of_a_key_is_accepted(raw: bytes, bits: int) -> None:
    key = base64.urlsafe_b64encode(raw).decode()
    other = _spelling(key, bits)
    assert other != key and base64.urlsafe_b64decode(other) == raw  # the same key, respelt
    assert Vault.from_key(key).fingerprint == Vault.from_key(key.encode()).fingerprint
    for spelling in (other, other.encode(), f" {other}\n"):
        with pytest.raises(InvalidKey, match="not the canonical spelling") as info:
            Vault.from_key(spelling)
        _assert_no_leak(_exc_text(info.value), key, other)
    with pytest.raises(InvalidKey) as info:  # the repeated-key check cannot be bypassed
        Vault.from_keys([key, other])
    _assert_no_leak(_exc_text(info.value), key, other)


@_HYPOTHESIS
@given(text=st.text(alphabet=_B64 + "=+/ .\n\u00e9", min_size=42, max_size=46))
def test_a_key_text_is_accepted_exactly_when_it_is_a_canonical_key(text: str) -> None:
    stripped = text.strip()
    canonical = (
        len(stripped) == 44
        and all(c in _B64 for c in stripped[:43])
        and stripped[43] == "="
        and base64.urlsafe_b64encode(base64.urlsafe_b64decode(stripped)).decode() == stripped
    )
    try:
        vault = Vault.from_key(text)
    except InvalidKey as exc:
        assert not canonical, f"refused a canonical key: {exc}"
        if len(stripped) > 8:
            assert stripped not in _exc_text(exc)
    else:
        assert canonical, "accepted a key that is not canonical"
        assert vault.decrypt(vault.encrypt([1])) == [1]


# -- canonical tokens: one text per token ------------------------------------------------------

_NOT_B64 = st.characters(codec="utf-8").filter(lambda c: c not in _B64)


@st.composite
def _respelt(draw: st.DrawFn, token: str) -> str:
    """``token`` changed by a few edits that leave its decoded bytes the same or nearly so:
    stray characters, the other base64 alphabet, dropped padding, set unused bits."""
    text = token
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["insert", "alphabet", "unpad", "bits", "replace"]))
        if edit == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(_NOT_B64) + text[at:]
        elif edit == "alphabet":
            text = text.replace("-", "+").replace("_", "/")
        elif edit == "unpad":
            text = text.rstrip("=")
        elif edit == "bits" and text.endswith("="):
            data = text.rstrip("=")
            unused = 0b11 if text.endswith("==") is False else 0b1111
            last = _B64.index(data[-1]) if data[-1] in _B64 else 0
            text = data[:-1] + _B64[last | draw(st.integers(1, unused))] + text[len(data) :]
        elif edit == "replace":
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + draw(st.sampled_from(_B64 + "=")) + text[at + 1 :]
    return text


@_HYPOTHESIS
@given(data=st.data(), secret=st.text(max_size=40))
def test_only_the_exact_token_text_opens(data: st.DataObject, secret: str) -> None:
    key = Vault.generate_key()
    vault = Vault.from_key(key)
    token = vault.encrypt({"secret": secret})
    other = data.draw(_respelt(token))
    assert vault.decrypt(token) == {"secret": secret}
    if other == token:
        return
    for spelling in (other, other.encode("utf-8", "surrogatepass")):
        with pytest.raises(VaultDecryptError) as info:
            vault.decrypt(spelling)
        assert vault.key_for(spelling) is None
        if len(secret) > 4:
            _assert_no_leak(_exc_text(info.value), secret, key)


@pytest.mark.parametrize(
    ("respell", "message"),
    [
        (lambda t: t[:20] + "\n" + t[20:], "outside url-safe base64"),
        (lambda t: t + "\n", "outside url-safe base64"),
        (lambda t: " " + t, "outside url-safe base64"),
        (lambda t: t[:30] + "!*" + t[30:], "outside url-safe base64"),
        (lambda t: t.replace("-", "+").replace("_", "/"), "outside url-safe base64"),
        (lambda t: t.rstrip("="), "truncated or unpadded"),
        (lambda t: t + "==", "outside url-safe base64|not valid base64"),
    ],
)
def test_non_canonical_tokens_are_malformed(
    respell: Any, message: str, old_vault: Vault, old_key: str
) -> None:
    # payload sizes giving tokens with 0, 1 and 2 padding characters
    for size in (0, 16, 32):
        token = old_vault.encrypt("x" * size)
        assert json.loads(Fernet(old_key).decrypt(token)) == "x" * size
        other = respell(token)
        if other == token:
            continue
        with pytest.raises(MalformedToken, match=message):
            old_vault.decrypt(other)


def test_a_token_with_unused_bits_set_is_malformed(old_vault: Vault, old_key: str) -> None:
    padded = [t for t in (old_vault.encrypt("x" * n) for n in range(40)) if t.endswith("=")]
    assert any(t.endswith("==") for t in padded) and any(not t.endswith("==") for t in padded)
    for token in padded:
        data = token.rstrip("=")
        respelt = data[:-1] + _B64[_B64.index(data[-1]) | 1] + token[len(data) :]
        assert base64.urlsafe_b64decode(respelt) == base64.urlsafe_b64decode(token)
        Fernet(old_key).decrypt(respelt)  # the reference implementation reads it ...
        with pytest.raises(MalformedToken, match="not the canonical base64 spelling"):
            old_vault.decrypt(respelt)  # ... the vault does not
        assert old_vault.key_for(respelt) is None


# -- nesting depth ----------------------------------------------------------------------------


def _nest(depth: int, kinds: list[str], leaf: Any = 1) -> Any:
    """A payload ``depth`` containers deep, built without recursion."""
    value = leaf
    for level in range(depth):
        kind = kinds[level % len(kinds)]
        value = [value] if kind == "list" else {"k": value} if kind == "dict" else (value,)
    return value


@_HYPOTHESIS
@given(
    depth=st.one_of(st.integers(1, 300), st.sampled_from([MAX_DEPTH, MAX_DEPTH + 1, 5000, 50_000])),
    kinds=st.lists(st.sampled_from(["list", "dict", "tuple"]), min_size=1, max_size=4),
)
def test_nesting_is_bounded_both_ways_without_recursion_errors(
    depth: int, kinds: list[str]
) -> None:
    vault = Vault.from_key(Vault.generate_key())
    payload = _nest(depth, kinds, SECRET)
    if depth <= MAX_DEPTH:
        assert vault.decrypt(vault.encrypt(payload)) == json.loads(json.dumps(payload))
    else:
        with pytest.raises(PayloadEncodeError, match=f"deeper than {MAX_DEPTH} levels") as info:
            vault.encrypt(payload)
        assert SECRET not in _exc_text(info.value) and info.value.__context__ is None


@_HYPOTHESIS
@given(
    depth=st.one_of(st.integers(1, 300), st.sampled_from([MAX_DEPTH + 1, 5000, 200_000])),
    opener=st.sampled_from(["[", '{"k":']),
)
def test_a_deeply_nested_token_from_another_encoder_is_a_decode_error(
    depth: int, opener: str
) -> None:
    key = Vault.generate_key()
    closer = "]" if opener == "[" else "}"
    plaintext = (opener * depth + json.dumps(SECRET) + closer * depth).encode()
    token = Fernet(key).encrypt(plaintext)
    vault = Vault.from_key(key)
    if depth <= MAX_DEPTH:
        assert vault.decrypt(token) == json.loads(plaintext)
    else:
        with pytest.raises(PayloadDecodeError, match=f"deeper than {MAX_DEPTH} levels") as info:
            vault.decrypt(token)
        assert SECRET not in _exc_text(info.value) and info.value.__context__ is None


def test_depth_counts_containers_not_brackets_in_strings(old_vault: Vault, old_key: str) -> None:
    flat = {"brackets": "[" * 500 + "{" * 500}
    assert old_vault.decrypt(old_vault.encrypt(flat)) == flat
    wide = [[i] for i in range(5000)]  # many containers, depth 2
    assert old_vault.decrypt(old_vault.encrypt(wide)) == wide


# -- any payload: round trip exactly or PayloadEncodeError ------------------------------------

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included
    st.text(alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"]))),  # surrogates
    st.integers(4301, 4400).map(lambda digits: 10**digits),  # past int-to-str's limit
    st.sampled_from([b"raw", {1, 2}, datetime.date(2026, 1, 1), decimal.Decimal(1)]),
)
_PAYLOADS = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=5), st.characters(categories=["Cs"]), st.integers()),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@_HYPOTHESIS
@given(payload=_PAYLOADS)
def test_any_payload_round_trips_exactly_or_is_refused_clearly(payload: Any) -> None:
    vault = Vault.from_key(Vault.generate_key())
    marked = {"secret-marker": [SECRET], "payload": payload}
    try:
        token = vault.encrypt(marked)
    except PayloadEncodeError as exc:
        text = _exc_text(exc)
        assert SECRET not in text and exc.__context__ is None and exc.__cause__ is None
        assert "payload" in text
        return
    # accepted: it really is exact JSON (tuples become lists)
    expected = json.loads(json.dumps(marked, allow_nan=False))
    assert vault.decrypt(token) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"s": "\ud800" + SECRET}, r"payload\['s'\] is a str holding a lone surrogate"),
        ({"\udfff": SECRET}, "has a key that is not valid Unicode text"),
        ({"n": [10**5000]}, r"payload\['n'\]\[0\] is an int with more digits"),
    ],
)
def test_text_json_cannot_encode_is_refused_without_quoting_it(
    payload: Any, expected: str, old_vault: Vault
) -> None:
    with pytest.raises(PayloadEncodeError, match=expected) as info:
        old_vault.encrypt(payload)
    text = _exc_text(info.value)
    assert SECRET not in text and info.value.__context__ is None


# -- ttl --------------------------------------------------------------------------------------


def test_ttl_refuses_old_and_future_tokens_only_after_authenticating(
    old_key: str, old_vault: Vault
) -> None:
    now = int(time.time())
    reference = Fernet(old_key)
    fresh = old_vault.encrypt({"s": SECRET})
    assert old_vault.decrypt(fresh, ttl=60) == {"s": SECRET}
    assert old_vault.decrypt(fresh, ttl=0.5 + 60) == {"s": SECRET}
    two_hours = reference.encrypt_at_time(b'{"s":1}', now - 7200)
    assert old_vault.decrypt(two_hours) == {"s": 1}  # no ttl: no age limit
    assert old_vault.decrypt(two_hours, ttl=3 * 3600) == {"s": 1}
    with pytest.raises(TokenExpired, match="more than ttl=3600 s ago") as info:
        old_vault.decrypt(two_hours, ttl=3600)
    assert isinstance(info.value, VaultDecryptError)
    skewed = reference.encrypt_at_time(b'{"s":1}', now + 30)
    assert old_vault.decrypt(skewed, ttl=10) == {"s": 1}  # within the 60 s clock skew
    future = reference.encrypt_at_time(b'{"s":1}', now + 3600)
    with pytest.raises(TokenExpired, match="in the future"):
        old_vault.decrypt(future, ttl=10)
    stranger = Fernet(Vault.generate_key()).encrypt_at_time(b"{}", now - 7200)
    with pytest.raises(VaultDecryptError, match="no configured key opens"):
        old_vault.decrypt(stranger, ttl=60)  # the age of an unauthenticated token means nothing


@pytest.mark.parametrize("ttl", [0, -1, True, "60", float("nan"), float("inf"), [60]])
def test_bad_ttl_is_refused(ttl: Any, old_vault: Vault) -> None:
    token = old_vault.encrypt({"a": 1})
    with pytest.raises(InvalidArgument, match="ttl must be a positive number of seconds"):
        old_vault.decrypt(token, ttl=ttl)


# -- nothing reachable from a vault shows key material -----------------------------------------


def test_no_attribute_of_a_vault_or_its_column_type_shows_key_material(
    old_key: str, new_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from forktex_core.vault import EncryptedJSON

    vault = Vault.from_keys([new_key, old_key])
    texts = [repr(vault), str(vault), repr(EncryptedJSON(vault))]
    texts.append(repr(EncryptedJSON(lambda: vault)))
    # what a debugger, an error reporter or a careless log line would print of it
    for name in dir(vault):
        value = getattr(vault, name)
        texts.append(repr(value))
        for item in value if isinstance(value, tuple) else ():
            texts.append(repr(item))
            if not isinstance(item, str):  # the key objects refuse to be copied or pickled
                with pytest.raises(TypeError):
                    copy.copy(item)
                with pytest.raises(TypeError):
                    pickle.dumps(item)
    with pytest.raises(TypeError):
        copy.copy(vault)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("app").debug("vault %s %r %s", vault, vault, vars(type(vault)))
    texts.append(caplog.text)
    _assert_no_leak("\n".join(texts), old_key, new_key)
