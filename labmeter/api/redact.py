"""API keys never reach a log line: every line ``labmeter api`` writes is redacted on its way out.

Pages opened by link carry ``?key=`` once (they trade it for a cookie at once, see
``api.auth.exchange_key``), and uvicorn's access log writes each request's URL, query
included, to journald. Redacting the finished line (message, arguments and traceback alike)
in the handlers, rather than one logger's arguments, covers every logger that reaches them.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

# A ``key=`` (or ``api_key=``, ``token=``) parameter, and any labmeter token wherever it shows.
_KEY_PARAM = re.compile(r"(?i)\b((?:api_)?key|token)=[^&\s\"']+")
_TOKEN = re.compile(r"\b(lm|ls)_[A-Za-z0-9_-]{8,}")  # a key, or a session's id
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1_" + REDACTED, _KEY_PARAM.sub(r"\1=" + REDACTED, text))


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes every formatted line with keys redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up, with redacting handlers, and the app's loggers on them."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for handler in config["handlers"].values():
        handler["class"] = f"{__name__}.RedactingHandler"
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
