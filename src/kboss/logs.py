"""Logging that never carries secrets: every record passes through `kboss.redaction` when it is made.

Redacting in a handler's filter depends on which handlers exist and in which order (a handler added later, by
uvicorn or by a test, would see the record before any filter ran); redacting where the record is made does not.
The access log (uvicorn's `uvicorn.access`) keeps its arguments, which its formatters unpack, with the request
target's query string redacted by allow-list: only values of parameters known harmless are shown.
"""

from __future__ import annotations

import logging
from typing import Any

from kboss.redaction import KNOWN, redact, redact_url

ACCESS_LOGGER = "uvicorn.access"
_ACCESS_TARGET = 2  # uvicorn's access record: (client, method, path with query, HTTP version, status)


def register_secret(value: str) -> None:
    """A value that must never appear in a log line, whatever field it travels in."""
    KNOWN.register(value)


def redact_record(record: logging.LogRecord) -> None:
    """Make a record safe to write: its access-log target by allow-list, its message by `redact`."""
    args = record.args
    if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) > _ACCESS_TARGET:
        target = args[_ACCESS_TARGET]
        if isinstance(target, str):
            record.args = (*args[:_ACCESS_TARGET], redact(redact_url(target)), *args[_ACCESS_TARGET + 1 :])
            return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a malformed call: logging reports it when the record is written
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None


class RedactingFilter(logging.Filter):
    """For handlers set up elsewhere (the command line's); records made after `install_redaction` are clean."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class _RedactingFactory:
    """Wraps the record factory in place at install time, so that other wrappers keep working."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        redact_record(record)
        return record


def install_redaction() -> None:
    """Redact every record from now on, whichever logger makes it and whichever handlers write it."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
