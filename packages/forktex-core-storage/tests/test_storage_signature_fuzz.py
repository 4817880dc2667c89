# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Every malformed signed URL is ``SignatureInvalid`` — never another exception — and no
mutation of a valid URL verifies with a different meaning.

Hypothesis mutates valid callback, file and upload-form URLs: every parameter's value
(unicode digits, huge numbers, signs, whitespace, empty), duplicated and dropped parameters,
renamed parameters, raw and broken percent-escapes, inserted characters (NUL, surrogates,
``#?&=[``), truncation, and entirely arbitrary strings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from forktex_core.storage import (
    CallbackSigner,
    FilesystemBackend,
    SignatureInvalid,
    StorageClient,
)

SECRET = b"f" * 32
NOW = 1_800_000_000.0
BASE = "https://api.example.com/v1"

_WEIRD_VALUES = [
    "²",
    "١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits: str.isdigit() and int() accept them
    "１８０００００１００",  # fullwidth digits
    "9" * 5000,  # past int()'s digit limit
    "9" * 30,
    "-1",
    "+1800000100",
    " 1800000100",
    "1800000100 ",
    "01800000100",
    "0x10",
    "1e12",
    "",
    "\x00",
    "\ud800",
    "%",
    "%FF",
    "A" * 64,
    "0" * 64,
]


def _client(root: Path) -> StorageClient:
    files = FilesystemBackend(root, "files", secret=SECRET, base_url=BASE, clock=lambda: NOW)
    return StorageClient(backend=files, callback_secret=SECRET, callback_base_url=BASE)


CLIENT = _client(Path("/nonexistent"))  # a fixed clock: the URLs below never expire
SIGNER = CallbackSigner(SECRET, BASE, clock=lambda: NOW)


def _urls() -> dict[str, str]:
    read = asyncio.run(CLIENT.signed_url("a/report 1.pdf", ttl_seconds=600))
    post = asyncio.run(CLIENT.signed_post("a/up.png", content_type="image/png", max_bytes=1000))
    return {
        "callback": SIGNER.url("/hooks/done", {"key": "a/b c.pdf", "n": "1", "é": "ü"}, 600),
        "read": read,
        "post": post.url,
    }


def _verifiers() -> dict[str, Callable[[str], Any]]:
    return {
        "callback": SIGNER.verify,
        "read": CLIENT.verify_signed_url,
        "post": lambda url: CLIENT.backend.verify_signed_post(url),  # type: ignore[attr-defined]
    }


URLS = _urls()
VERIFY = _verifiers()


@st.composite
def mutated(draw: st.DrawFn, url: str) -> str:
    head, _, query = url.partition("?")
    pairs = [p.partition("=")[::2] for p in query.split("&")]
    text = st.one_of(st.sampled_from(_WEIRD_VALUES), st.text(max_size=30))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.integers(0, 9))
        i = draw(st.integers(0, max(0, len(pairs) - 1)))
        if op == 0 and pairs:  # replace a value, raw
            pairs[i] = (pairs[i][0], draw(text))
        elif op == 1 and pairs:  # replace a value, percent-encoded
            pairs[i] = (pairs[i][0], quote(draw(text), safe="", errors="surrogatepass"))
        elif op == 2 and pairs:  # duplicate a parameter
            pairs.insert(i, (pairs[i][0], draw(st.sampled_from([pairs[i][1], draw(text)]))))
        elif op == 3 and pairs:  # drop a parameter
            pairs.pop(i)
        elif op == 4 and pairs:  # rename a parameter
            pairs[i] = (draw(st.sampled_from([pairs[i][0].upper(), draw(text)])), pairs[i][1])
        elif op == 5:  # add a parameter
            pairs.insert(i, (draw(text), draw(text)))
        elif op == 6:  # mutate the path
            cut = draw(st.integers(0, len(head)))
            head = head[:cut] + draw(
                st.sampled_from(
                    ["%", "%2F", "%FF", "%C3", "/", "//", "\x00", "\ud800", "#", "?", "[", " "]
                )
            )
            head += url.partition("?")[0][cut:]
        elif op == 7 and pairs:  # percent-encode one whole value
            pairs[i] = (
                pairs[i][0],
                "".join(f"%{b:02X}" for b in pairs[i][1].encode("utf-8", "surrogatepass")),
            )
    out = head + "?" + "&".join(f"{k}={v}" for k, v in pairs)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(out)))
        insert = draw(st.sampled_from(["", "&", "=", "#", "?", "%", "\x00", "\ud800", "&&", ";"]))
        out = out[:cut] + insert + out[cut:]
    if draw(st.integers(0, 9)) == 0:
        out = out[: draw(st.integers(0, len(out)))]
    return out


def _check(kind: str, url: str) -> None:
    original = VERIFY[kind](URLS[kind])
    try:
        result = VERIFY[kind](url)
    except SignatureInvalid:
        return
    # Only another spelling of the very same URL may verify, with the very same meaning.
    assert result == original, url


FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", sorted(URLS))
def test_mutated_urls_are_refused_cleanly(kind: str) -> None:
    @FUZZ
    @given(url=mutated(URLS[kind]))
    @example(url=URLS[kind].replace("ftx-expires=", "ftx-expires=²&x="))
    def run(url: str) -> None:
        _check(kind, url)

    run()


@pytest.mark.parametrize("kind", sorted(URLS))
@pytest.mark.parametrize("value", _WEIRD_VALUES)
@pytest.mark.parametrize("param", ["ftx-expires", "ftx-signature"])
def test_crafted_expiry_and_signature_values(kind: str, param: str, value: str) -> None:
    head, _, query = URLS[kind].partition("?")
    pairs = [p.partition("=")[::2] for p in query.split("&")]
    for spelling in (value, quote(value, safe="", errors="surrogatepass")):
        crafted = head + "?" + "&".join(f"{k}={spelling if k == param else v}" for k, v in pairs)
        with pytest.raises(SignatureInvalid):
            VERIFY[kind](crafted)


@pytest.mark.parametrize("kind", sorted(URLS))
def test_arbitrary_strings_are_refused_cleanly(kind: str) -> None:
    @FUZZ
    @given(url=st.one_of(st.text(), st.from_regex(r"https?://[^?]*\?.*", fullmatch=True)))
    def run(url: str) -> None:
        _check(kind, url)

    run()


def test_the_client_maps_crafted_urls_the_same_way() -> None:
    url = CLIENT.callback_url("/hooks/done", {"n": "1"})
    for bad in ("²", "9" * 5000, "١٢٣"):
        for template in (url, URLS["read"]):
            crafted = template.replace("ftx-expires=", f"ftx-expires={bad}&old=")
            with pytest.raises(SignatureInvalid):
                CLIENT.verify_callback(crafted)
            with pytest.raises(SignatureInvalid):
                CLIENT.verify_signed_url(crafted)
    for junk in ("http://[::1/x?ftx-expires=1&ftx-signature=" + "0" * 64, "\ud800", "", "?&"):
        with pytest.raises(SignatureInvalid):
            CLIENT.verify_callback(junk)
        with pytest.raises(SignatureInvalid):
            CLIENT.verify_signed_url(junk)
