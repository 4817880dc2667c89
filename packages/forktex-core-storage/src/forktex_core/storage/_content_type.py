# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Content-type sniffing from the body's leading bytes and the key's extension.

Order: magic bytes first (they cannot lie about the format), then the extension, then a
text check, then ``application/octet-stream``. See the table in the package README.
"""

from __future__ import annotations

import json

from ._errors import InvalidArgument

OCTET_STREAM = "application/octet-stream"
SNIFF_BYTES = 512
"""How many leading bytes :func:`sniff_content_type` looks at."""

_EXTENSIONS: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "zip": "application/zip",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "xml": "application/xml",
    "mp4": "video/mp4",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# Formats whose container is a ZIP: the extension refines the magic bytes.
_ZIP_FAMILY = {"docx", "xlsx"}


def _magic(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "application/zip"
    return None


def _looks_like_text(head: bytes, complete: bool) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off at the end of the sniff window is still text.
        if complete or exc.reason != "unexpected end of data":
            return False
    return all(b >= 0x20 or b in (0x09, 0x0A, 0x0C, 0x0D) for b in head)


def _looks_like_json(head: bytes, complete: bool) -> bool:
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if not stripped.startswith((b"{", b"[")):
        return False
    if complete:
        try:
            json.loads(head.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return False
        return True
    return _looks_like_text(head, complete)


def sniff_content_type(key: str, head: bytes, *, complete: bool = False) -> str:
    """Guess a content type from ``key``'s extension and the body's first bytes (``head``).

    ``complete`` says ``head`` is the whole body (then JSON is parsed, not just eyeballed).

    Example::

        >>> sniff_content_type("scan", b"%PDF-1.7 ...")
        'application/pdf'
        >>> sniff_content_type("notes.txt", b"hello")
        'text/plain; charset=utf-8'
        >>> sniff_content_type("blob", b"\\x00\\x01")
        'application/octet-stream'
    """
    if not isinstance(key, str):
        raise InvalidArgument(f"key must be a str, got {type(key).__name__}")
    if not isinstance(head, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"head must be bytes, got {type(head).__name__}")
    head = bytes(head)
    ext = key.rsplit("/", 1)[-1].rpartition(".")[2].lower() if "." in key.rsplit("/", 1)[-1] else ""
    magic = _magic(head)
    if magic is not None:
        if magic == "application/zip" and ext in _ZIP_FAMILY:
            return _EXTENSIONS[ext]
        return magic
    if (
        ext in _EXTENSIONS
        and ext not in _ZIP_FAMILY
        and ext not in {"pdf", "png", "jpg", "jpeg", "gif", "webp", "zip"}
    ):
        return _EXTENSIONS[ext]
    if head and _looks_like_json(head, complete):
        return "application/json"
    if head and _looks_like_text(head, complete):
        return "text/plain; charset=utf-8"
    if not head and ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    return OCTET_STREAM
