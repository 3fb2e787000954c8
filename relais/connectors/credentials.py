"""Connector credentials, encrypted at rest with a key derived from the deployment's secret.

Fernet (AES-128-CBC with an HMAC) from ``cryptography``; its key comes from ``SECRET_KEY`` through
HKDF so the raw secret is never used as a cipher key and other uses of it stay independent.
Rotating ``SECRET_KEY`` makes stored credentials unreadable: those accounts must be reconnected.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_SALT = b"relais.connectors.credentials"
_INFO = b"fernet-v1"


class UnreadableCredentialsError(Exception):
    """Stored credentials were written under another secret key, or were altered."""


def _fernet() -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_credentials(credentials: dict[str, Any]) -> str:
    if not credentials:
        return ""
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()


def decrypt_credentials(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        data = json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise UnreadableCredentialsError("credentials cannot be decrypted") from None
    if not isinstance(data, dict):
        raise UnreadableCredentialsError("credentials are not an object")
    return data
