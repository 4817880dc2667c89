# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""Shared fixtures of the vault tests: keys and vaults (Postgres: forktex-core-testing)."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from forktex_core.vault import Vault

# Hypothesis caches go to a temporary directory removed at exit, not to the work tree (they are
# written while test modules are imported, before any fixture could redirect them).
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="forktex-vault-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


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
