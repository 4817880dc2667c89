# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""No credential ever shows: a matrix of URL forms (userinfo, credential-like query and
fragment parameters, unparsable URLs) through every URL-taking parameter, and access/secret
keys through reprs, errors (with their whole exception chain) and log lines."""

from __future__ import annotations

import itertools
import logging
import socket
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from forktex_core.storage import (
    CallbackSigner,
    Credentials,
    StorageClient,
    StorageError,
)

S = "Zq9SeKrit7w"  # the credential that must never show
SECRET = b"k" * 32

_USERINFO = [
    "",
    f"user:{S}@",
    f":{S}@",
    f"{S}@",
    f"{S}:{S}@",
    f"user:{quote(S + '@/?#:', safe='')}@",
    f"user:{S}/?#x@",  # unencoded '/', '?', '#' in the password
    f"user:p@ss{S}@",  # unencoded '@' in the password
]
_QUERY = [
    "",
    f"?password={S}",
    f"?Password={S}",
    f"?secret={S}",
    f"?token={S}",
    f"?access_token={S}",
    f"?api_key={S}",
    f"?apikey={S}",
    f"?key={S}",
    f"?X-Amz-Signature={S}",
    f"?X-Amz-Credential={S}%2F20260101%2Fus-east-1",
    f"?X-Amz-Security-Token={S}",
    f"?ftx-signature={S}",
    f"?auth={S}",
    f"?a=1&pass%77ord={S}&b=2",  # percent-encoded parameter name
    f"?a=1;passwd={S}",
    f"?sessionid={S}#frag",
    f"#access_token={S}",
    f"?x=1#id_token={S}&state=2",
]
_BASES = [
    "http://{u}host.example:9000{q}",
    "https://{u}cdn.example.com/assets{q}",
    "s3://{u}s3.eu-central-1.amazonaws.com{q}",
    "file://{u}/var/tmp/store{q}",
    "http://{u}[::1{q}",  # unparsable: unterminated IPv6 literal
    "http://{u}host:99999{q}",  # unparsable port
    "{u}host.example:9000{q}",  # no scheme
]
URL_FORMS = sorted(
    {base.format(u=u, q=q) for base, u, q in itertools.product(_BASES, _USERINFO, _QUERY) if u or q}
)


def _shown(exc: BaseException) -> str:
    """Everything a log line or an error page could print about ``exc``, chain included."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_url_matrix_is_large() -> None:
    assert len(URL_FORMS) > 400


def test_mask_url_hides_every_credential() -> None:
    from forktex_core.storage._urls import mask_url

    leaked = [url for url in URL_FORMS if S in mask_url(url)]
    assert leaked == []
    for url in URL_FORMS:
        if "@" not in url:  # what is not a credential is still shown
            host = next(h for h in ("example", "amazonaws", "/var/tmp", "host", "[::1") if h in url)
            assert host in mask_url(url)


def test_mask_url_keeps_plain_urls_and_hides_non_strings() -> None:
    from forktex_core.storage._urls import mask_url

    plain = "https://cdn.example.com/a?list-type=2&prefix=x#top"
    assert mask_url(plain) == plain
    assert mask_url(b"https://u:" + S.encode() + b"@h") == "<a bytes>"
    assert len(mask_url("https://h/" + "a" * 5000)) <= 200


def _sinks(url: str, tmp: Path) -> list[Any]:
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENGbPxRfiCY")
    return [
        lambda: StorageClient(endpoint=url, credentials=creds, bucket="b-1"),
        lambda: StorageClient(
            endpoint="http://localhost:9000", credentials=creds, public_endpoint=url
        ),
        lambda: StorageClient(
            endpoint="http://localhost:9000", credentials=creds, public_base_url=url
        ),
        lambda: StorageClient(
            endpoint="http://localhost:9000",
            credentials=creds,
            callback_secret=SECRET,
            callback_base_url=url,
        ),
        lambda: StorageClient(
            endpoint=f"file://{tmp}", callback_secret=SECRET, public_base_url=url
        ),
        lambda: CallbackSigner(SECRET, url),
    ]


def test_no_url_credential_in_errors_reprs_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leaked: list[tuple[int, str]] = []
    for url in URL_FORMS:
        for sink, make in enumerate(_sinks(url, tmp_path)):
            try:
                made = make()
            except StorageError as exc:
                shown = _shown(exc)
            else:
                shown = repr(made) + str(made)
            if S in shown:
                leaked.append((sink, url))
    assert leaked == []
    assert S not in caplog.text


def test_non_string_urls_are_not_echoed(tmp_path: Path) -> None:
    bad = b"https://user:" + S.encode() + b"@cdn.example.com"
    for make in _sinks(bad, tmp_path):  # type: ignore[arg-type]
        with pytest.raises(StorageError) as info:
            make()
        assert S not in _shown(info.value)


ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENGbPxRfiCYSECRETKEY"
TOKEN = "FwoGZXIvYXdzEBYaDSESSIONTOKEN"


def test_credentials_never_show_either_key() -> None:
    creds = Credentials(ACCESS_KEY, SECRET_KEY, session_token=TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        for value in (ACCESS_KEY, SECRET_KEY, TOKEN):
            assert value not in text
        assert "MPLE" in text and "<hidden>" in text  # last 4 of the access key identify it
    same = Credentials("minioadmin", "minioadmin")  # short or equal to the secret: all hidden
    assert "minioadmin" not in repr(same) and "dmin" not in repr(same)
    long_same = Credentials(SECRET_KEY, SECRET_KEY)
    assert SECRET_KEY[-4:] not in repr(long_same)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_keys_absent_from_errors_chains_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = StorageClient(
        endpoint=f"http://127.0.0.1:{_dead_port()}",
        credentials=Credentials(ACCESS_KEY, SECRET_KEY, session_token=TOKEN),
        bucket="b-1",
    )
    errors: list[BaseException] = []
    try:
        for call in (
            client.put("a.txt", b"x"),
            client.get("a.txt"),
            client.stat("a.txt"),
            client.delete("a.txt"),
            client.ensure_bucket(),
        ):
            with pytest.raises(StorageError) as info:
                await call
            errors.append(info.value)
        url = await client.signed_url("a.txt")  # offline: presigning needs no server
        form = await client.signed_post("a.txt", content_type="text/plain", max_bytes=10)
    finally:
        await client.aclose()
    shown = "".join(_shown(e) for e in errors) + repr(client) + repr(form) + caplog.text
    for value in (ACCESS_KEY, SECRET_KEY, TOKEN):
        assert value not in shown
    assert SECRET_KEY not in url and "X-Amz-Signature=" in url  # the URL itself is the grant


async def test_signed_post_repr_masks_the_filesystem_signature(tmp_path: Path) -> None:
    fs = StorageClient(
        endpoint=f"file://{tmp_path}",
        bucket="files",
        callback_secret=SECRET,
        public_base_url="https://app.example.com/files",
    )
    form = await fs.signed_post("a/up.bin", content_type="image/png", max_bytes=10)
    signature = form.url.rpartition("ftx-signature=")[2]
    assert len(signature) == 64 and signature not in repr(form)
