"""Masking of secrets in everything the SSH adapter returns, logs or raises."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "******"


def _pieces(secret: str) -> list[str]:
    """A secret and, for multi-line secrets (PEM keys), each of its lines.

    Output is redacted line by line when streamed, so a key must be recognisable line by line too.
    Very short lines (PEM armour like '-----') carry nothing secret and would mask harmless text.
    """
    stripped = secret.strip()
    if not stripped:
        return []
    lines = [line.strip() for line in stripped.splitlines()]
    extra = [line for line in lines if len(line) >= 8 and not line.startswith("-----")]
    return [stripped, *extra] if len(lines) > 1 else [stripped]


class Redactor:
    """Replaces every known secret with `******`. Immutable; `with_secrets` makes an extended copy."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            if secret:
                found.update(_pieces(secret))
        # Longest first so a secret containing another secret is masked whole.
        self._secrets: tuple[str, ...] = tuple(sorted(found, key=len, reverse=True))

    def with_secrets(self, secrets: Iterable[str | None]) -> Redactor:
        extra = [s for s in secrets if s]
        if not extra:
            return self
        return Redactor([*self._secrets, *extra])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"
