"""A guard over the whole suite: no request may end in a logged traceback.

The one place that turns an unexpected exception into a 500 (`kboss.wire.errors.on_unexpected`) and the
provisioning stream's catch-all log it with its traceback; a test during which either fires fails, whatever it
asserted, so a server error cannot hide behind a test that only looked at another field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

WATCHED = ("kboss.api", "kboss.provision")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def no_request_tracebacks() -> Iterator[None]:
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in WATCHED]
    for logger in loggers:
        logger.addHandler(collector)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
    if collector.records:
        first = collector.records[0]
        pytest.fail(f"a request ended in a traceback: {first.getMessage()} ({first.exc_info and first.exc_info[1]!r})")
