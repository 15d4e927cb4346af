"""Logging that never carries secrets: a filter that masks known secret values and secret-looking fields."""

from __future__ import annotations

import logging
import re

_SECRET_FIELDS = re.compile(
    r"(?i)(\"?(?:api_pwd|adminpwd|password|psssword|passwd|source_authpasswd|token|kubeconfig|ssh_key)\"?\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s,&}]+)"
)
_known_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Values that must never appear in a log line, whatever field they travel in."""
    if len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    text = _SECRET_FIELDS.sub(r"\1******", text)
    for secret in _known_secrets:
        text = text.replace(secret, "******")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_redaction() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
