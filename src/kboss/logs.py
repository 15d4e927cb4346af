"""Logging that never carries secrets: a filter passing every record through `kboss.redaction`."""

from __future__ import annotations

import logging

from kboss.redaction import KNOWN, redact


def register_secret(value: str) -> None:
    """A value that must never appear in a log line, whatever field it travels in."""
    KNOWN.register(value)


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
