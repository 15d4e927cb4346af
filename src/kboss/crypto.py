"""Secrets at rest: Fernet (AES-128-CBC + HMAC) under keys derived from the deployment keys.

The deployment key is a ring (`KeyRing`): the first key seals, every key opens, so that `kboss keys rotate` can put
a new key first, re-encrypt every secret under it in one transaction, and drop the old one later
(`kboss.db.sealed`, docs/security.md). A ring read from a file is reread when the file changes, so every process of
a machine follows a rotation without a restart.

Ciphertexts carry a prefix so that a stored value is recognisable as encrypted and is never encrypted twice
(the original system re-encrypted device passwords on every update).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kboss.errors import KbossError
from kboss.redaction import MASK

PREFIX = "enc:v1:"


class SecretUnreadable(KbossError):
    code = "secret_unreadable"
    http_status = 500
    default_message = "无法解密已保存的密文,部署密钥可能已更换"


def parse_keys(text: str) -> tuple[str, ...]:
    """Keys of a ring as written in the key file (one per line) or KBOSS_SECRET_KEY (separated by commas)."""
    return tuple(key.strip() for key in text.replace(",", "\n").splitlines() if key.strip())


class KeyRing:
    """The deployment keys, newest first. Given a `path`, the keys are that file's and are reread when its
    modification time or size changes (a stat per use: cheap next to a Fernet operation)."""

    def __init__(self, keys: Sequence[str] = (), path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._keys = tuple(keys)
        if path is not None:
            self.current()
        if not self._keys:
            raise ValueError("a key ring needs at least one key")

    @property
    def path(self) -> Path | None:
        return self._path

    def current(self) -> tuple[str, ...]:
        if self._path is not None:
            stat = os.stat(self._path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                keys = parse_keys(self._path.read_text())
                if keys:  # a file caught half-written keeps the keys read before
                    self._keys, self._stamp = keys, stamp
        return self._keys

    @property
    def primary(self) -> str:
        return self.current()[0]


def key_id(deployment_key: str) -> str:
    """A name for a key that reveals nothing of it (for `kboss keys status` and the docs)."""
    return hashlib.sha256(b"kboss-key-id:" + deployment_key.encode()).hexdigest()[:12]


def _fernet(deployment_key: str) -> Fernet:
    derived = hashlib.sha256(b"kboss-secrets-v1:" + deployment_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    def __init__(self, ring: KeyRing | str) -> None:
        self.ring = ring if isinstance(ring, KeyRing) else KeyRing([ring])
        self._keys: tuple[str, ...] = ()
        self._fernet = MultiFernet([_fernet(self.ring.primary)])

    def _current(self) -> MultiFernet:
        keys = self.ring.current()
        if keys != self._keys:
            self._fernet, self._keys = MultiFernet([_fernet(key) for key in keys]), keys
        return self._fernet

    def seal(self, plaintext: str) -> str:
        if is_sealed(plaintext):
            return plaintext
        return PREFIX + self._current().encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored
        try:
            return self._current().decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable() from exc

    def reseal(self, stored: str) -> str:
        """The same secret sealed under the first key (a value not sealed yet is sealed)."""
        if not is_sealed(stored):
            return self.seal(stored)
        try:
            return PREFIX + self._current().rotate(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable() from exc

    def sealed_with_primary(self, stored: str) -> bool:
        """Whether the first key alone opens a sealed value (what `kboss keys prune` checks before dropping keys)."""
        try:
            _fernet(self.ring.primary).decrypt(stored[len(PREFIX) :].encode())
        except InvalidToken:
            return False
        return True


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def mask(value: str | None) -> str:
    """What responses show in place of a secret: nothing when unset, a fixed mask otherwise."""
    return MASK if value else ""
