# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""forktex_core.vault - secrets at rest: Fernet-encrypted JSON, ``EncryptedJSON``, KEK rotation.

Example::

    from forktex_core.vault import EncryptedJSON, Vault, rotate_blobs

    vault = Vault.from_key(settings.master_key)
    token = vault.encrypt({"hetzner_token": "...", "ssh_key_id": 12345})
    payload = vault.decrypt(token)

    class OrgProviderCredential(BaseDBModel):
        __tablename__ = "org_provider_credential"
        payload: Mapped[dict] = mapped_column(EncryptedJSON(vault))

    await rotate_blobs(session, table=OrgProviderCredential, column="payload",
                       old=old_vault, new=new_vault)
"""

from ._column import EncryptedJSON
from ._errors import (
    InvalidArgument,
    InvalidKey,
    MalformedToken,
    PayloadDecodeError,
    PayloadEncodeError,
    RotationError,
    RotationInterrupted,
    TokenExpired,
    VaultDecryptError,
    VaultError,
)
from ._payload import MAX_DEPTH
from ._report import RotationFailure, RotationReport
from ._rotate import rotate_blobs
from ._vault import Vault

__all__ = [
    "MAX_DEPTH",
    "EncryptedJSON",
    "InvalidArgument",
    "InvalidKey",
    "MalformedToken",
    "PayloadDecodeError",
    "PayloadEncodeError",
    "RotationError",
    "RotationFailure",
    "RotationInterrupted",
    "RotationReport",
    "TokenExpired",
    "Vault",
    "VaultDecryptError",
    "VaultError",
    "rotate_blobs",
]
