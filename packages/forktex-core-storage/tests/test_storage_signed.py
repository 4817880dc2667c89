# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Signed URLs on S3.

moto (the embedded server) accepts any presigned signature and ignores expiry, so signatures
are checked independently here: a from-scratch SigV4 query-signature verifier written from the
AWS documentation (canonical request -> string to sign -> HMAC chain), cross-checked against
botocore's presigner at the same instant. Fetching the URLs over HTTP shows they serve the object.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import aiohttp
import pytest

from forktex_core.storage import (
    MAX_TTL_SECONDS,
    AccessDenied,
    InvalidArgument,
    PublicAccess,
    StorageClient,
)


class Rejected(Exception):
    pass


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _enc(s: str) -> str:
    return quote(s, safe="-_.~")


def sigv4_verify(
    url: str, method: str, *, secret_key: str, now: datetime | None = None
) -> dict[str, str]:
    """Verify a SigV4 presigned S3 URL; return its query params or raise Rejected."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    try:
        signature = params["X-Amz-Signature"]
        amz_date = params["X-Amz-Date"]
        expires = int(params["X-Amz-Expires"])
        _access_key, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    except (KeyError, ValueError) as exc:
        raise Rejected(f"malformed presigned URL: {exc}") from None
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or terminator != "aws4_request":
        raise Rejected("wrong algorithm")
    if params.get("X-Amz-SignedHeaders") != "host" or service != "s3":
        raise Rejected("unexpected signed headers/service")
    if not amz_date.startswith(date):
        raise Rejected("credential date differs from X-Amz-Date")
    canonical_query = "&".join(
        f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs) if k != "X-Amz-Signature"
    )
    canonical_uri = quote(unquote(parts.path), safe="/-_.~")
    canonical_request = "\n".join(
        [
            method,
            canonical_uri,
            canonical_query,
            f"host:{parts.netloc}\n",
            "host",
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = f"{date}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_key).encode(), date)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Rejected("signature mismatch")
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if (now or datetime.now(UTC)) >= signed_at + timedelta(seconds=expires):
        raise Rejected("expired")
    return params


def botocore_signature(url: str, method: str, s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """botocore's presigner, run at the X-Amz-Date of ``url``, for the same host/path/TTL."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: at)
    request = AWSRequest(method=method, url=f"{parts.scheme}://{parts.netloc}{parts.path}")
    botocore.auth.S3SigV4QueryAuth(
        BotoCredentials(s3.access_key, s3.secret_key),
        "s3",
        s3.region,
        expires=int(params["X-Amz-Expires"]),
    ).add_auth(request)
    return dict(parse_qsl(urlsplit(request.prepare().url).query))["X-Amz-Signature"]


@pytest.fixture
async def s3(make_s3: Any) -> Any:
    client: StorageClient = make_s3()
    yield client
    await client.aclose()


def _tamper(url: str, index: int) -> str:
    ch = url[index]
    return url[:index] + ("b" if ch != "b" else "c") + url[index + 1 :]


async def test_signed_read_url_signature_expiry_and_fetch(
    s3: StorageClient, prefix: str, forktex_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = prefix + "invoices/2026-04/INV 123 ü.pdf"
    await s3.put(key, b"%PDF-1.7 invoice", content_type="application/pdf")
    url = await s3.signed_url(key, access=PublicAccess.read, ttl_seconds=600)
    assert url.startswith(f"{forktex_s3.endpoint_url}/{forktex_s3.bucket}/")
    params = sigv4_verify(url, "GET", secret_key=forktex_s3.secret_key)
    assert params["X-Amz-Expires"] == "600"
    assert forktex_s3.secret_key not in url
    # botocore computes the same signature for the same request at the same instant
    assert botocore_signature(url, "GET", forktex_s3, monkeypatch) == params["X-Amz-Signature"]
    # not valid for PUT, not with another secret, not after expiry
    with pytest.raises(Rejected, match="mismatch"):
        sigv4_verify(url, "PUT", secret_key=forktex_s3.secret_key)
    with pytest.raises(Rejected, match="mismatch"):
        sigv4_verify(url, "GET", secret_key=forktex_s3.secret_key + "x")
    with pytest.raises(Rejected, match="expired"):
        sigv4_verify(
            url,
            "GET",
            secret_key=forktex_s3.secret_key,
            now=datetime.now(UTC) + timedelta(seconds=601),
        )
    # tampering with any one character of path or query is detected
    path_at = url.index(prefix) + 2
    query_at = url.index("X-Amz-Expires=") + len("X-Amz-Expires=")
    sig_at = url.index("X-Amz-Signature=") + len("X-Amz-Signature=") + 5
    for index in (path_at, query_at, sig_at):
        with pytest.raises(Rejected):
            sigv4_verify(_tamper(url, index), "GET", secret_key=forktex_s3.secret_key)
    # and a plain HTTP client gets the object
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == b"%PDF-1.7 invoice"


async def test_signed_write_url_uploads(
    s3: StorageClient, prefix: str, forktex_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = prefix + "uploads/u.bin"
    url = await s3.signed_url(key, access=PublicAccess.write, ttl_seconds=60)
    params = sigv4_verify(url, "PUT", secret_key=forktex_s3.secret_key)
    assert params["X-Amz-Expires"] == "60"
    assert botocore_signature(url, "PUT", forktex_s3, monkeypatch) == params["X-Amz-Signature"]
    with pytest.raises(Rejected):
        sigv4_verify(url, "GET", secret_key=forktex_s3.secret_key)
    async with aiohttp.ClientSession() as http, http.put(url, data=b"from the browser") as resp:
        assert resp.status == 200, await resp.text()
    assert await s3.get(key) == b"from the browser"


async def test_signed_for_public_endpoint_validates_there_and_rewrite_does_not(
    make_s3: Any, prefix: str, forktex_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "localhost:<port>" plays the public host: a different Host than the service's 127.0.0.1.
    public = f"http://localhost:{forktex_s3.port}"
    client: StorageClient = make_s3(public_endpoint=public)
    try:
        key = prefix + "cdn/a.txt"
        await client.put(key, b"public host")
        url = await client.signed_url(key, ttl_seconds=3600)
        assert url.startswith(f"{public}/{forktex_s3.bucket}/")
        params = sigv4_verify(url, "GET", secret_key=forktex_s3.secret_key)
        assert params["X-Amz-Expires"] == "3600"
        assert botocore_signature(url, "GET", forktex_s3, monkeypatch) == params["X-Amz-Signature"]
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == b"public host"
        # string-rewriting an internally signed URL onto the public host breaks SigV4
        internal = await make_s3().signed_url(key, ttl_seconds=3600)
        rewritten = internal.replace(forktex_s3.endpoint_url, public, 1)
        assert rewritten != internal
        with pytest.raises(Rejected, match="mismatch"):
            sigv4_verify(rewritten, "GET", secret_key=forktex_s3.secret_key)
        # https public endpoints on the default port sign "host" without a port
        tls = make_s3(public_endpoint="s3://files.example.com")
        tls_url = await tls.signed_url(key, ttl_seconds=5)
        assert tls_url.startswith(f"https://files.example.com/{forktex_s3.bucket}/")
        sigv4_verify(tls_url, "GET", secret_key=forktex_s3.secret_key)
    finally:
        await client.aclose()


async def test_signed_post_policy_pins_key_type_and_size(
    s3: StorageClient, prefix: str, forktex_s3: Any
) -> None:
    import base64
    import json

    key = prefix + "avatars/u1.png"
    form = await s3.signed_post(key, ttl_seconds=300, content_type="image/png", max_bytes=1000)
    assert form.url == f"{forktex_s3.endpoint_url}/{forktex_s3.bucket}"
    assert form.fields["key"] == key and form.fields["Content-Type"] == "image/png"
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    conds = policy["conditions"]
    assert ["eq", "$key", key] in conds
    assert ["eq", "$Content-Type", "image/png"] in conds
    assert ["content-length-range", 0, 1000] in conds
    assert ["eq", "$bucket", forktex_s3.bucket] in conds
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ")
    delta = expiration.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=290) < delta <= timedelta(seconds=300)
    # the POST policy signature: HMAC chain over the base64 policy
    date = form.fields["x-amz-credential"].split("/")[1]
    k = _hmac(("AWS4" + forktex_s3.secret_key).encode(), date)
    for part in (forktex_s3.region, "s3", "aws4_request"):
        k = _hmac(k, part)
    expected = hmac.new(k, form.fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert form.fields["x-amz-signature"] == expected
    assert forktex_s3.secret_key not in repr(form)
    # a browser-style multipart POST stores the object
    data = aiohttp.FormData()
    for name, value in form.fields.items():
        data.add_field(name, value)
    data.add_field("file", b"\x89PNG\r\n\x1a\nimg", filename="u1.png", content_type="image/png")
    async with aiohttp.ClientSession() as http, http.post(form.url, data=data) as resp:
        assert resp.status in (200, 201, 204), await resp.text()
    assert await s3.get(key) == b"\x89PNG\r\n\x1a\nimg"


@pytest.mark.parametrize(
    ("ttl", "match"),
    [
        (0, "out of range"),
        (-5, "out of range"),
        (MAX_TTL_SECONDS + 1, "out of range"),
        (1.5, "int"),
        ("600", "int"),
        (True, "int"),
        (None, "int"),
    ],
)
async def test_ttl_bounds(s3: StorageClient, ttl: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        await s3.signed_url("a.txt", ttl_seconds=ttl)
    with pytest.raises(InvalidArgument, match=match):
        await s3.signed_post("a.txt", ttl_seconds=ttl)


async def test_ttl_limits_are_inclusive(s3: StorageClient, forktex_s3: Any) -> None:
    for ttl in (1, MAX_TTL_SECONDS):
        url = await s3.signed_url("a.txt", ttl_seconds=ttl)
        assert sigv4_verify(url, "GET", secret_key=forktex_s3.secret_key)["X-Amz-Expires"] == str(
            ttl
        )


async def test_signed_bad_inputs(s3: StorageClient) -> None:
    with pytest.raises(InvalidArgument, match="PublicAccess"):
        await s3.signed_url("a.txt", access="read")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="media type"):
        await s3.signed_post("a.txt", content_type="nope")
    with pytest.raises(InvalidArgument, match="max_bytes"):
        await s3.signed_post("a.txt", max_bytes=0)


async def test_public_urls(make_s3: Any, forktex_s3: Any) -> None:
    cdn = make_s3(public_base_url="https://cdn.example.com/assets/", public_prefixes=("avatars/",))
    assert cdn.public_url("avatars/u 1.png") == "https://cdn.example.com/assets/avatars/u%201.png"
    assert cdn.is_public("avatars/x") and not cdn.is_public("invoices/x")
    with pytest.raises(AccessDenied, match="signed_url"):
        cdn.public_url("invoices/x.pdf")
    with pytest.raises(AccessDenied):
        cdn.public_url("avatarsX/x.png")
    plain = make_s3(public_endpoint="https://files.example.com", public_prefixes=("",))
    assert plain.public_url("a/b.txt") == f"https://files.example.com/{forktex_s3.bucket}/a/b.txt"
    with pytest.raises(InvalidArgument):
        plain.public_url("../x")


async def test_signed_url_without_credentials(forktex_s3: Any) -> None:
    anon = StorageClient(endpoint=forktex_s3.endpoint_url, bucket=forktex_s3.bucket)
    with pytest.raises(InvalidArgument, match="credentials"):
        await anon.signed_url("a.txt")
    with pytest.raises(InvalidArgument, match="credentials"):
        await anon.signed_post("a.txt")
