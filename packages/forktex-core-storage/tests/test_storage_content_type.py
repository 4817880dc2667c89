# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Content-type sniffing: magic bytes, then extension, then text/JSON, then octet-stream."""

from __future__ import annotations

import pytest

from forktex_core.storage import StorageClient, sniff_content_type

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
GIF = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
ZIP = b"PK\x03\x04\x14\x00\x00\x00"

TABLE = [
    # key, body, expected
    ("scan", PDF, "application/pdf"),
    ("scan.bin", PDF, "application/pdf"),
    ("photo", PNG, "image/png"),
    ("photo.jpg", PNG, "image/png"),  # bytes win over a lying extension
    ("photo", JPEG, "image/jpeg"),
    ("anim", GIF, "image/gif"),
    ("GIF87.gif", b"GIF87a\x01\x00", "image/gif"),
    ("pic", WEBP, "image/webp"),
    ("RIFF.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", "application/octet-stream"),
    ("archive", ZIP, "application/zip"),
    ("report.docx", ZIP, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("data", b'{"a": [1, 2]}', "application/json"),
    ("data", b" [1, 2, 3]\n", "application/json"),
    ("data", b"{not json", "text/plain; charset=utf-8"),
    ("data.json", b"{}", "application/json"),
    ("notes", b"hello world\n", "text/plain; charset=utf-8"),
    ("notes", "grüße\n".encode(), "text/plain; charset=utf-8"),
    ("table.csv", b"a,b\n1,2\n", "text/csv; charset=utf-8"),
    ("page.html", b"<html></html>", "text/html; charset=utf-8"),
    ("blob", b"\x00\x01\x02\x03", "application/octet-stream"),
    ("blob", b"\xff\xfe\xfd", "application/octet-stream"),
    ("fake.pdf", b"\x00\x01garbage", "application/octet-stream"),  # binary ext needs magic
    ("fake.png", b"just text", "text/plain; charset=utf-8"),
    ("empty.pdf", b"", "application/pdf"),
    ("empty", b"", "application/octet-stream"),
    ("UPPER.PDF", b"", "application/pdf"),
    ("dir.v2/file", b"\x00", "application/octet-stream"),
]


@pytest.mark.parametrize(("key", "body", "expected"), TABLE)
def test_sniff_table(key: str, body: bytes, expected: str) -> None:
    assert sniff_content_type(key, body, complete=True) == expected


def test_partial_json_head_is_json_when_not_complete() -> None:
    head = b'{"items": [' + b'"x", ' * 200
    assert sniff_content_type("feed", head[:512], complete=False) == "application/json"
    assert sniff_content_type("feed", head[:512], complete=True) == "text/plain; charset=utf-8"


def test_utf8_cut_at_sniff_window_is_still_text() -> None:
    head = ("ä" * 300).encode()[:511]
    assert sniff_content_type("t", head) == "text/plain; charset=utf-8"


@pytest.mark.parametrize(("key", "body", "expected"), [t for t in TABLE if t[1]][:12])
async def test_put_sniffs_and_explicit_wins(
    storage: StorageClient, prefix: str, key: str, body: bytes, expected: str
) -> None:
    info = await storage.put(prefix + key, body)
    assert info.content_type == expected
    assert (await storage.stat(prefix + key)).content_type == expected
    await storage.put(prefix + key, body, content_type="application/x-custom")
    assert (await storage.stat(prefix + key)).content_type == "application/x-custom"
