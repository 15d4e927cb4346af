"""Secrets at rest: Fernet (AES-128-CBC + HMAC) under a key derived from the deployment key.

Ciphertexts carry a prefix so that a stored value is recognisable as encrypted and is never encrypted twice
(the original system re-encrypted device passwords on every update).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from kboss.errors import KbossError
from kboss.redaction import MASK

PREFIX = "enc:v1:"


class SecretUnreadable(KbossError):
    code = "secret_unreadable"
    http_status = 500
    default_message = "无法解密已保存的密文,部署密钥可能已更换"


class SecretBox:
    def __init__(self, deployment_key: str) -> None:
        derived = hashlib.sha256(b"kboss-secrets-v1:" + deployment_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, plaintext: str) -> str:
        if is_sealed(plaintext):
            return plaintext
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable() from exc


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def mask(value: str | None) -> str:
    """What responses show in place of a secret: nothing when unset, a fixed mask otherwise."""
    return MASK if value else ""
