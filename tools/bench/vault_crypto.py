# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""vault: ``Vault.encrypt`` / ``Vault.decrypt`` of a small dict vs raw Fernet + json.

Baseline is what a service writes without the library::

    Fernet(key).encrypt(json.dumps(payload).encode())
    json.loads(Fernet(key).decrypt(token))

Run alone: ``uv run python tools/bench/vault_crypto.py --quick``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Row, interleave, main

from forktex_core.vault import Vault

PAYLOAD = {
    "hetzner_token": "hz_0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij",
    "ssh_key_id": 12345,
    "region": "fsn1",
    "scopes": ["read", "write"],
}


def _timed(op: Callable[[], object], n: int) -> Callable[[], Awaitable[float]]:
    """One measured run: microseconds per call of ``op`` over ``n`` calls."""

    async def measure() -> float:
        start = time.perf_counter()
        for _ in range(n):
            op()
        return (time.perf_counter() - start) / n * 1e6

    return measure


async def run(quick: bool) -> list[Row]:
    key, newer = Vault.generate_key(), Vault.generate_key()
    vault = Vault.from_key(key)
    window = Vault.from_keys([newer, key])  # rotation window: 2 keys
    fernet = Fernet(key)
    multi = MultiFernet([Fernet(newer), fernet])
    n, runs = (2_000, 7) if quick else (20_000, 15)

    ours_token = vault.encrypt(PAYLOAD)
    raw_token = fernet.encrypt(json.dumps(PAYLOAD).encode())
    assert vault.decrypt(raw_token) == json.loads(fernet.decrypt(ours_token)) == PAYLOAD

    cases: list[tuple[str, str, Callable[[], object], Callable[[], object]]] = [
        (
            "encrypt small dict",
            "raw Fernet + json",
            lambda: vault.encrypt(PAYLOAD),
            lambda: fernet.encrypt(json.dumps(PAYLOAD).encode()),
        ),
        (
            "decrypt small dict",
            "raw Fernet + json",
            lambda: vault.decrypt(ours_token),
            lambda: json.loads(fernet.decrypt(raw_token)),
        ),
        (
            "decrypt old-key token, 2-key vault",
            "raw MultiFernet + json",
            lambda: window.decrypt(ours_token),
            lambda: json.loads(multi.decrypt(raw_token)),
        ),
    ]
    rows = []
    for workload, baseline_name, ours, baseline in cases:
        ours_us, base_us = await interleave(_timed(ours, n), _timed(baseline, n), runs)
        rows.append(Row("vault", workload, ours_us, "µs/op", baseline_name, base_us, runs))
    return rows


if __name__ == "__main__":
    main(run)
