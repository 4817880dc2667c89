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
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet, MultiFernet

from forktex_core.vault import (
    InvalidKey,
    MalformedToken,
    PayloadDecodeError,
    PayloadEncodeError,
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
