"""Keeping secrets out of text: the mask, what secrets look like, and redactors of the secret values known.

Everything a person may read — logs, step output, operation history, error messages — passes through here. Three
layers, each catching what the others cannot: known values (a `Redactor` holds the passwords, keys and
kubeconfigs a piece of work has read), shapes (kubeadm bootstrap tokens, certificate keys, `password: …` and
`key=value` fields whose name says secret, percent-encoded names included), and a bounded registry of values a
process has seen travel (join tokens in an access log's query string). This module imports nothing from kboss:
every layer, adapters included, may use it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import unquote_plus

MASK = "******"
# Names of fields whose value is a secret, wherever they travel (queries, forms, JSON, YAML, messages).
_SECRET_NAME = re.compile(
    r"(?i)(passw|psssw|pwd|secret|token|kubeconfig|ssh_key|private|clusterjoin|credential|authorization"
    r"|client-key-data|client-certificate-data)"
)
JOIN_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")  # a kubeadm bootstrap token
_CERTIFICATE_KEY = re.compile(r"(?<!sha256:)\b[0-9a-f]{64}\b")  # kubeadm's --certificate-key; the CA hash stays
# A name starts where no name character precedes it: without the look-behind, a long run of name characters with
# no `=` after it would be tried from every position (quadratic in the line's length).
_FIELD = re.compile(r"(\"?)(?<![\w%.-])([\w%.-]+)(\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,&}\"']+)")
_SHORTEST_SEEN = 4  # a value merely seen in passing, shorter, would mask harmless text in every log line


def is_secret_name(name: str) -> bool:
    """Whether a field of this name carries a secret; the name is percent-decoded first (`pssswor%64`)."""
    for _ in range(3):  # doubly encoded names too, without looping on a name that never settles
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return bool(_SECRET_NAME.search(name))


def _mask_field(match: re.Match[str]) -> str:
    if not is_secret_name(match.group(2)):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{MASK}"


def redact_shapes(text: str) -> str:
    """Mask what looks secret whoever wrote it: secret-named fields, bootstrap tokens, certificate keys."""
    text = _FIELD.sub(_mask_field, text)
    text = JOIN_TOKEN.sub(MASK, text)
    return _CERTIFICATE_KEY.sub(MASK, text)


def _pieces(secret: str) -> list[str]:
    """A secret and, for multi-line secrets (PEM keys, kubeconfigs), each long line of it: output is redacted
    line by line when streamed. PEM armour (`-----`) and short lines carry nothing secret. A short secret is
    still masked: a three-letter password is a password."""
    stripped = secret.strip()
    if not stripped:
        return []
    lines = [line.strip() for line in stripped.splitlines()]
    extra = [line for line in lines if len(line) >= 8 and not line.startswith("-----")]
    return [stripped, *extra] if len(lines) > 1 else [stripped]


class Redactor:
    """Replaces every known secret value with the mask, and (`shapes=True`) what looks secret as well.

    `add` registers one more value (a step that has just read a password); `with_secrets` makes an extended copy
    (one SSH command's extra secrets, without touching the client's own redactor).
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, shapes: bool = False) -> None:
        self._shapes = shapes
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        known = set(self._secrets)
        self._secrets.extend(piece for piece in _pieces(secret) if piece not in known)
        self._secrets.sort(key=len, reverse=True)  # a secret containing another is masked whole

    def with_secrets(self, secrets: Iterable[str | None]) -> Redactor:
        extra = [secret for secret in secrets if secret]
        if not extra:
            return self
        return Redactor([*self._secrets, *extra], shapes=self._shapes)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return redact_shapes(text) if self._shapes else text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


class KnownSecrets:
    """Values a process has seen travel and must never log, whatever field carries them; bounded (the oldest
    go first), so that a long-running agent does not grow with every join token it ever handled."""

    def __init__(self, limit: int = 1024) -> None:
        self._limit = limit
        self._values: OrderedDict[str, None] = OrderedDict()

    def register(self, value: str) -> None:
        if len(value) < _SHORTEST_SEEN:
            return
        self._values[value] = None
        self._values.move_to_end(value)
        while len(self._values) > self._limit:
            self._values.popitem(last=False)

    def __len__(self) -> int:
        return len(self._values)

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text


KNOWN = KnownSecrets()


def redact(text: str) -> str:
    """Text for a log line or a stored message: what looks secret, and every value registered in `KNOWN`."""
    return redact_shapes(KNOWN(text))
