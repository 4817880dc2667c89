# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every official Fernet test vector (tests/fernet_spec/, see its SOURCE) against the vault.

``generate``: the vault's sealing, at the vector's time and IV, gives the vector's token.
``verify``: the vault opens the token at the vector's time with its TTL, to the exact source.
``invalid``: every token is refused with a ``VaultDecryptError`` - through the same pipeline
``Vault.decrypt`` runs, at the vector's time and TTL, and through the public ``decrypt``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from forktex_core.vault import (
    MalformedToken,
    PayloadDecodeError,
    TokenExpired,
    Vault,
    VaultDecryptError,
)

VECTORS = Path(__file__).parent / "fernet_spec"


def _load(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())
    assert vectors, f"{name} holds no vectors"
    return vectors


def _now(vector: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(vector["now"]).timestamp())


GENERATE = _load("generate.json")
VERIFY = _load("verify.json")
INVALID = _load("invalid.json")


def test_the_vectors_are_the_unmodified_official_ones() -> None:
    source = (VECTORS / "SOURCE").read_text()
    assert "github.com/fernet/spec" in source and "unmodified" in source
    assert len(GENERATE) == 1 and len(VERIFY) == 1 and len(INVALID) == 8


@pytest.mark.parametrize("vector", GENERATE, ids=lambda v: v["src"])
def test_generate_vectors(vector: dict[str, Any]) -> None:
    vault = Vault.from_key(vector["secret"])
    token = vault._seal_raw(vector["src"].encode(), now=_now(vector), iv=bytes(vector["iv"]))
    assert token == vector["token"]
    # and the vault reads back what it sealed, at that time, with any TTL that covers it
    assert vault._open(token, ttl=1, now=_now(vector)) == vector["src"].encode()


@pytest.mark.parametrize("vector", VERIFY, ids=lambda v: v["src"])
def test_verify_vectors(vector: dict[str, Any]) -> None:
    vault = Vault.from_key(vector["secret"])
    plaintext = vault._open(vector["token"], ttl=vector["ttl_sec"], now=_now(vector))
    assert plaintext == vector["src"].encode()
    assert vault.key_for(vector["token"]) == vault.fingerprint
    # Public API: the token opens (its plaintext is not JSON, hence PayloadDecodeError, raised
    # only after a key authenticated and decrypted it) ...
    with pytest.raises(PayloadDecodeError):
        vault.decrypt(vector["token"])
    # ... and with the vector's TTL on today's clock it is long expired.
    with pytest.raises(TokenExpired, match="more than ttl=60 s ago"):
        vault.decrypt(vector["token"], ttl=vector["ttl_sec"])


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["desc"])
def test_invalid_vectors_are_refused(vector: dict[str, Any]) -> None:
    vault = Vault.from_key(vector["secret"])
    with pytest.raises(VaultDecryptError) as info:
        vault._open(vector["token"], ttl=vector["ttl_sec"], now=_now(vector))
    assert type(info.value) is not PayloadDecodeError  # refused before any plaintext exists
    # Public API, today's clock, with and without the TTL.
    with pytest.raises(VaultDecryptError):
        vault.decrypt(vector["token"], ttl=vector["ttl_sec"])
    if "TS" in vector["desc"] or "TTL" in vector["desc"]:
        # only the clock makes these invalid: authentic tokens, refused for their age
        assert isinstance(info.value, TokenExpired)
        with pytest.raises(PayloadDecodeError):  # without a TTL they open ("hello" is not JSON)
            vault.decrypt(vector["token"])
    else:
        with pytest.raises(VaultDecryptError) as public:
            vault.decrypt(vector["token"])
        assert type(public.value) is not PayloadDecodeError
        assert vault.key_for(vector["token"]) is None or "padding" in vector["desc"]


def test_invalid_vectors_name_their_cause() -> None:
    causes = {}
    for vector in INVALID:
        vault = Vault.from_key(vector["secret"])
        try:
            vault._open(vector["token"], ttl=vector["ttl_sec"], now=_now(vector))
        except VaultDecryptError as exc:
            causes[vector["desc"]] = (type(exc), str(exc))
    assert causes["incorrect mac"][0] is VaultDecryptError
    assert "no configured key opens" in causes["incorrect mac"][1]
    assert causes["too short"][0] is MalformedToken
    assert causes["invalid base64"][0] is MalformedToken
    assert "outside url-safe base64" in causes["invalid base64"][1]
    assert causes["payload size not multiple of block size"][0] is MalformedToken
    assert "invalid padding" in causes["payload padding error"][1]
    assert "invalid padding" in causes["incorrect IV (causes padding error)"][1]
    assert "in the future" in causes["far-future TS (unacceptable clock skew)"][1]
    assert "more than ttl=60 s ago" in causes["expired TTL"][1]


def test_every_padding_length_interoperates_with_the_reference_implementation() -> None:
    key = Vault.generate_key()
    vault, reference = Vault.from_key(key), Fernet(key)
    for size in range(0, 50):  # every PKCS#7 pad length, several times over
        plaintext = bytes(range(size))
        ours = vault._seal_raw(plaintext)
        assert reference.decrypt(ours) == plaintext
        theirs = reference.encrypt(plaintext).decode()
        assert vault._open(theirs, ttl=None, now=0) == plaintext
