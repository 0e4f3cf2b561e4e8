"""Structured logs: one JSON object per line on stderr (journald and log shippers read it as is).

Never log key material, plaintexts, shared secrets or PINs: log key ids, sizes,
statuses. Fields passed with `extra=` become JSON fields.
"""
from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    _stamp: tuple[int, str] = (-1, "")  # the last second formatted (format() runs under the handler's lock)

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if self._stamp[0] != second:
            self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
        doc = {"ts": f"{self._stamp[1]}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        for k, v in record.__dict__.items():
            if k not in _STANDARD:
                doc[k] = v
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(level: str = "info", program: str = "wvds") -> None:
    # None of the caller, thread or process fields is written (JsonFormatter): skip looking them up, as the
    # logging HOWTO's "Optimization" section describes; it halves the cost of an audit line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger(program).debug("logging configured")
