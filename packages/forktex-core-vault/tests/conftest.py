# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared fixtures of the vault tests: keys and vaults (Postgres: forktex-core-testing)."""

from __future__ import annotations

import pytest

from forktex_core.vault import Vault


@pytest.fixture
def old_key() -> str:
    return Vault.generate_key()


@pytest.fixture
def new_key() -> str:
    return Vault.generate_key()


@pytest.fixture
def old_vault(old_key: str) -> Vault:
    return Vault.from_key(old_key)


@pytest.fixture
def new_vault(new_key: str) -> Vault:
    return Vault.from_key(new_key)
