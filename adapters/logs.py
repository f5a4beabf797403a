"""Logging for the `align` command: readable lines on a terminal, JSON lines for aggregators.

`align --log-format json` (or ALIGN_LOG_FORMAT=json) writes one JSON object per line to stderr —
`time`, `level`, `logger`, `message`, and `exc` when there is a traceback — which Docker,
journald, Loki or CloudWatch take as they are. `-v` turns on debug output and keeps the
tracebacks that libraries attach to their retry messages; without it those stay one line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(*, verbose: bool, fmt: str = "text") -> None:
    """Root handler on stderr: debug with -v, else warnings (servers raise `align` to info)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def verbose() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


class _OneLine(logging.Filter):
    """Drops the traceback of a record unless debug output is on (-v)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not verbose():
            record.exc_info = None
            record.exc_text = None
        return True


def one_line_logger(name: str) -> logging.Logger:
    """A logger for a library that logs a traceback with every retry (slack-sdk's Socket
    Mode client): its messages already say what failed, the traceback is kept for -v."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
    return logger
