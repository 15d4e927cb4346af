"""Record identifiers: 21-character URL-safe random strings, like the spec's (`-z2r4CFb-7rcfugNn2wIr`)."""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
# Ours never start with `-` (nor `_`): `kboss op show -z2r4...` would read the id as an option.
FIRST = ALPHABET[:-2]
ID_LENGTH = 21


def new_id() -> str:
    return secrets.choice(FIRST) + "".join(secrets.choice(ALPHABET) for _ in range(ID_LENGTH - 1))
