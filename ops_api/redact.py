"""Secrets never reach a log line: a logging filter that redacts them wherever they appear.

What is redacted, in the message and in every string argument (uvicorn's access log passes
the URL as an argument):

- credentials in query strings (``?token=…``, ``access_token``, ``api_key``, ``secret``,
  ``password``, ``key``), as a client that ignores the documentation might send them;
- ``Bearer …`` and ``Basic …`` credentials;
- anything shaped like one of our tokens (``hioc_`` and 43 URL-safe characters).

>>> redact("GET /ws?token=s3cr3t&x=1 Authorization: Bearer abc.def")
'GET /ws?token=[redacted]&x=1 Authorization: Bearer [redacted]'
>>> redact("created hioc_" + "A" * 43)
'created hioc_[redacted]'
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

__all__ = ["REDACTED", "RedactingFilter", "install_redaction", "redact"]

REDACTED: Final = "[redacted]"
_KEEP_ARGS: Final = frozenset({"uvicorn.access"})  # its formatter unpacks the arguments
_QUERY: Final = re.compile(
    r"(?i)([?&;](?:access_token|token|api_key|apikey|key|secret|password|auth)=)[^&;\s\"']*"
)
_SCHEME: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_OURS: Final = re.compile(r"\bhioc_[A-Za-z0-9_-]{20,}")


def redact(text: str) -> str:
    """``text`` with every credential replaced by ``[redacted]``."""
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _SCHEME.sub(rf"\1 {REDACTED}", text)
    return _OURS.sub(f"hioc_{REDACTED}", text)


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactingFilter(logging.Filter):
    """Redacts credentials in a record's message and arguments (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        if record.args and record.name not in _KEEP_ARGS:
            # A credential may straddle the message and an argument ("Bearer %s").
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def install_redaction(*loggers: logging.Logger) -> None:
    """Add the filter to every handler of these loggers.

    Records propagated from other loggers pass a handler's filters, not the logger's.
    """
    redacting = RedactingFilter()
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
