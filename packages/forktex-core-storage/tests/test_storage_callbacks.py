# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""HMAC callback URLs and the filesystem backend's signed file URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forktex_core.storage import (
    CallbackSigner,
    InvalidArgument,
    PublicAccess,
    SignatureExpired,
    SignatureInvalid,
    StorageClient,
)

SECRET = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_roundtrip_tamper_expiry_and_path() -> None:
    clock = Clock()
    signer = CallbackSigner(SECRET, "https://api.example.com/v1", clock=clock)
    url = signer.url("/uploads/finished", {"key": "invoices/a b.pdf", "n": "1"}, ttl_seconds=60)
    assert url.startswith("https://api.example.com/v1/uploads/finished?")
    cb = signer.verify(url)
    assert cb.path == "/uploads/finished"
    assert dict(cb.params) == {"key": "invoices/a b.pdf", "n": "1"}
    assert cb.expires_at == 1_800_000_060
    assert signer.verify(url, path="/uploads/finished").params["n"] == "1"
    with pytest.raises(SignatureInvalid, match="not '/other'"):
        signer.verify(url, path="/other")
    for tampered in (
        url.replace("n=1", "n=2"),
        url.replace("/uploads/finished", "/uploads/deleted"),
        url.replace("ftx-expires=1800000060", "ftx-expires=1900000060"),
        url + "&extra=1",
        url[:-1] + ("0" if url[-1] != "0" else "1"),
    ):
        with pytest.raises(SignatureInvalid):
            signer.verify(tampered)
    with pytest.raises(SignatureInvalid, match="not signed"):
        signer.verify(url.split("?")[0])
    with pytest.raises(SignatureInvalid, match="repeats"):
        signer.verify(url + "&n=1")
    other = CallbackSigner(b"o" * 32, "https://api.example.com/v1", clock=clock)
    with pytest.raises(SignatureInvalid, match="does not match"):
        other.verify(url)
    clock.now += 59
    signer.verify(url)
    clock.now += 1
    with pytest.raises(SignatureExpired, match="expired"):
        signer.verify(url)


def test_bad_callback_inputs() -> None:
    with pytest.raises(InvalidArgument, match="at least 32"):
        CallbackSigner(b"short", "https://api.example.com")
    with pytest.raises(InvalidArgument, match="bytes or str"):
        CallbackSigner(123, "https://api.example.com")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="absolute http"):
        CallbackSigner(SECRET, "api.example.com")
    signer = CallbackSigner(SECRET, "https://api.example.com")
    with pytest.raises(InvalidArgument, match="starting with '/'"):
        signer.url("hooks/x")
    with pytest.raises(InvalidArgument, match="'/'"):
        signer.url("/hooks?x=1")
    with pytest.raises(InvalidArgument, match="control"):
        signer.url("/hooks/a b")
    with pytest.raises(InvalidArgument, match="reserved"):
        signer.url("/hooks", {"ftx-signature": "x"})
    with pytest.raises(InvalidArgument, match="str to str"):
        signer.url("/hooks", {"n": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="out of range"):
        signer.url("/hooks", ttl_seconds=0)
    with pytest.raises(InvalidArgument, match="must be a str"):
        signer.verify(None)  # type: ignore[arg-type]
    assert "k" * 32 not in repr(signer) and "hidden" in repr(signer)


def test_storage_client_callbacks(make_s3: Any) -> None:
    client: StorageClient = make_s3(
        callback_secret=SECRET, callback_base_url="https://api.example.com"
    )
    url = client.callback_url("/hooks/upload", {"key": "a.pdf"}, ttl_seconds=30)
    assert client.verify_callback(url, path="/hooks/upload").params["key"] == "a.pdf"
    with pytest.raises(SignatureInvalid):
        client.verify_callback(url.replace("a.pdf", "b.pdf"))
    plain: StorageClient = make_s3()
    with pytest.raises(InvalidArgument, match="callback_secret"):
        plain.callback_url("/hooks/upload")
    with pytest.raises(InvalidArgument, match="callback_secret"):
        plain.verify_callback(url)
    with pytest.raises(InvalidArgument, match="callback_secret"):
        make_s3(callback_base_url="https://api.example.com")


async def test_filesystem_signed_urls(tmp_path: Path) -> None:
    fs = StorageClient(
        endpoint=f"file://{tmp_path}",
        bucket="files",
        callback_secret=SECRET,
        public_base_url="https://app.example.com/files",
    )
    await fs.ensure_bucket()
    await fs.put("a/report 1.pdf", b"%PDF-1.7")
    url = await fs.signed_url("a/report 1.pdf", access=PublicAccess.read, ttl_seconds=60)
    assert url.startswith("https://app.example.com/files/files/a/report%201.pdf?")
    assert fs.verify_signed_url(url) == "a/report 1.pdf"
    with pytest.raises(SignatureInvalid, match="another purpose"):
        fs.verify_signed_url(url, access=PublicAccess.write)
    with pytest.raises(SignatureInvalid):
        fs.verify_signed_url(url.replace("report%201", "report%202"))
    put_url = await fs.signed_url("a/up.bin", access=PublicAccess.write, ttl_seconds=60)
    assert fs.verify_signed_url(put_url, access=PublicAccess.write) == "a/up.bin"
    form = await fs.signed_post("a/up.bin", content_type="image/png", max_bytes=10)
    assert form.fields == {"key": "a/up.bin", "Content-Type": "image/png"}
    assert form.url.startswith("https://app.example.com/files/files/a/up.bin?")
    no_secret = StorageClient(endpoint=f"file://{tmp_path}", bucket="files")
    with pytest.raises(InvalidArgument, match="callback_secret"):
        await no_secret.signed_url("a/report 1.pdf")
    with pytest.raises(InvalidArgument, match="filesystem backend"):
        no_secret.verify_signed_url(url)
    with pytest.raises(InvalidArgument, match="public_base_url"):
        StorageClient(
            endpoint=f"file://{tmp_path}", bucket="files", public_prefixes=("",)
        ).public_url("a")
