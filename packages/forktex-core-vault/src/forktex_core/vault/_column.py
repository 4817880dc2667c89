# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""``EncryptedJSON``: a SQLAlchemy column type that stores Fernet tokens, transparently."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import Text, TypeDecorator

from ._errors import VaultError
from ._vault import Vault


class EncryptedJSON(TypeDecorator[Any]):
    """Column type: JSON values encrypted with a :class:`Vault`, stored as opaque text.

    Writes call ``vault.encrypt`` and reads call ``vault.decrypt``; Python ``None`` is SQL
    ``NULL`` (so a JSON ``null`` payload cannot be stored - use NULL). The database column is
    ``TEXT`` holding the Fernet token (url-safe base64, ASCII): readable by any SQL client,
    copyable between databases, openable by any Fernet implementation. In migrations declare
    it as ``sa.Text()``.

    ``vault`` is a :class:`Vault`, or a zero-argument callable returning one, resolved at every
    read and write, so models can be declared before the key is loaded and a vault can be
    swapped during a rotation.

    Ciphertext is randomised, so ``WHERE column = value`` never matches: filter on other
    columns. In-place mutation of a loaded dict is not tracked (as with ``JSON``); assign a
    new value, or wrap the type as ``MutableDict.as_mutable(EncryptedJSON(vault))``.

    Example::

        class OrgProviderCredential(BaseDBModel):
            __tablename__ = "org_provider_credential"
            payload: Mapped[dict] = mapped_column(EncryptedJSON(vault))

        # or, tracking in-place changes:
        payload: Mapped[dict] = mapped_column(MutableDict.as_mutable(EncryptedJSON(vault)))
    """

    impl = Text
    cache_ok = True

    def __init__(self, vault: Vault | Callable[[], Vault]) -> None:
        if not isinstance(vault, Vault) and not callable(vault):
            raise VaultError(
                f"EncryptedJSON(vault) needs a Vault or a callable returning one, got "
                f"{type(vault).__name__}; build it with Vault.from_key(key)"
            )
        super().__init__()
        self.vault = vault

    def _vault(self) -> Vault:
        vault = self.vault
        if isinstance(vault, Vault):
            return vault
        resolved = vault()
        if not isinstance(resolved, Vault):
            raise VaultError(
                f"the callable given to EncryptedJSON returned {type(resolved).__name__}, "
                "not a Vault"
            )
        return resolved

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self._vault().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return self._vault().decrypt(value)

    def __repr__(self) -> str:
        return f"EncryptedJSON({self.vault!r})"
