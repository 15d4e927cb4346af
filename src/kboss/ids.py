"""Record identifiers: 21-character URL-safe random strings, like the spec's (`-z2r4CFb-7rcfugNn2wIr`)."""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
ID_LENGTH = 21


def new_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH))
