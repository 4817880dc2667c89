# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signed URLs of different purposes never verify as each other.

One client signs callbacks and filesystem file URLs with the same secret under the same base
URL. For every signed form (callback, file read, file write, upload form) a look-alike of
every other form is minted — same path, same parameters — and the whole matrix of
(minted form x verifier) is checked: only the diagonal verifies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from forktex_core.storage import PublicAccess, SignatureInvalid, StorageClient

SECRET = b"k" * 32
BASE = "https://app.example.com/svc"
KEY = "evil/upload.bin"
FORMS = ("callback", "file-read", "file-write", "file-post")


@pytest.fixture
async def client(tmp_path: Path) -> StorageClient:
    fs = StorageClient(
        endpoint=f"file://{tmp_path}",
        bucket="files",
        callback_secret=SECRET,
        callback_base_url=BASE,  # the same host and path as the file URLs
        public_base_url=BASE,
    )
    await fs.ensure_bucket()
    return fs


def _shape(url: str) -> tuple[str, dict[str, str]]:
    """Path relative to BASE and the unsigned parameters of a signed URL."""
    parts = urlsplit(url)
    params = {k: v for k, v in parse_qsl(parts.query) if k not in ("ftx-expires", "ftx-signature")}
    return unquote(parts.path)[len(urlsplit(BASE).path) :], params


async def _minted(client: StorageClient) -> dict[str, list[str]]:
    """Every form, plus callback look-alikes of every file form and the 0.3 write shape."""
    file_urls = {
        "file-read": await client.signed_url(KEY, access=PublicAccess.read),
        "file-write": await client.signed_url(KEY, access=PublicAccess.write),
        "file-post": (await client.signed_post(KEY, content_type="image/png", max_bytes=100)).url,
    }
    callbacks = [client.callback_url("/files/" + KEY, {"access": "write"})]
    for url in file_urls.values():
        path, params = _shape(url)
        callbacks.append(client.callback_url(path, params))
    return {"callback": callbacks, **{k: [v] for k, v in file_urls.items()}}


def _verifiers(client: StorageClient) -> dict[str, Callable[[str], Awaitable[Any]]]:
    async def callback(url: str) -> Any:
        return client.verify_callback(url)

    async def read(url: str) -> Any:
        return client.verify_signed_url(url, access=PublicAccess.read)

    async def write(url: str) -> Any:
        return client.verify_signed_url(url, access=PublicAccess.write)

    async def post(url: str) -> Any:
        return await client.receive_signed_post(
            url, {"key": KEY, "Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"
        )

    return {"callback": callback, "file-read": read, "file-write": write, "file-post": post}


async def test_cross_purpose_matrix(client: StorageClient) -> None:
    minted = await _minted(client)
    verifiers = _verifiers(client)
    outcome: dict[tuple[str, str], list[str]] = {}
    for form, urls in minted.items():
        for name, verify in verifiers.items():
            for url in urls:
                try:
                    await verify(url)
                except SignatureInvalid:
                    result = "refused"
                except Exception as exc:  # anything else is a failure of its own
                    result = type(exc).__name__
                else:
                    result = "verified"
                outcome.setdefault((form, name), []).append(result)
    wrong = {
        cell: results
        for cell, results in outcome.items()
        if results != ["verified" if cell[0] == cell[1] else "refused"] * len(results)
    }
    assert wrong == {}
    assert len(outcome) == len(FORMS) ** 2


async def test_callback_shaped_like_a_write_url_is_not_a_write_url(client: StorageClient) -> None:
    url = client.callback_url("/files/" + KEY, {"access": "write"})
    assert client.verify_callback(url).path == "/files/" + KEY  # a valid callback ...
    with pytest.raises(SignatureInvalid):  # ... that grants nothing on files
        client.verify_signed_url(url, access=PublicAccess.write)
    file_url = await client.signed_url(KEY, access=PublicAccess.write)
    with pytest.raises(SignatureInvalid):
        client.verify_callback(file_url)


def test_each_purpose_has_its_own_key_and_its_own_signed_string() -> None:
    from forktex_core.storage._signing import PURPOSES, canonical, derive_key

    keys = {derive_key(SECRET, p) for p in PURPOSES}
    assert len(keys) == len(PURPOSES) and SECRET not in keys
    strings = {canonical(p, "/files/a", {"x": "1"}, 1_800_000_000) for p in PURPOSES}
    assert len(strings) == len(PURPOSES)
    for purpose in PURPOSES:  # the purpose is inside the MAC'd text, not only in the key
        assert f"\n{purpose}\n".encode() in canonical(purpose, "/a", {}, 1)


TRICKY = ["a/100%.txt", "a/q?x=1#frag.txt", "a/p+lus & semi;colon=eq.txt", "é/ü 漢字.pdf",
          "a/%2F-not-a-slash.txt", "a/..dots../x", "a/~tilde'quote\"(paren).txt"]  # fmt: skip


@pytest.mark.parametrize("key", TRICKY)
async def test_tricky_keys_and_paths_round_trip(client: StorageClient, key: str) -> None:
    for access in PublicAccess:
        url = await client.signed_url(key, access=access)
        assert client.verify_signed_url(url, access=access) == key
    form = await client.signed_post(key, max_bytes=10)
    assert (await client.receive_signed_post(form.url, form.fields, b"x")).key == key
    params = {key: key}  # parameter names and values may hold anything
    path = "/" + key.replace("?", "").replace("#", "").replace(" ", "")  # callback paths may not
    verified = client.verify_callback(client.callback_url(path, params), path=path)
    assert verified.path == path and verified.params == params
