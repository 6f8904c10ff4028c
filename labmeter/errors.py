"""One small error tree: callers catch ``LabmeterError`` or the child they can act on."""

from __future__ import annotations


class LabmeterError(Exception):
    """Root of every error labmeter raises on purpose."""


class ConfigError(LabmeterError):
    """A configuration value is missing or wrong; ``key`` names it (``mqtt.url``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class PayloadRejected(LabmeterError):
    """A message breaks the wire contract; ``reason`` is a short stable code for counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class InfluxError(LabmeterError):
    """InfluxDB refused or failed a request; ``retryable`` says whether to try again,
    ``status`` is the HTTP status (0: no answer at all)."""

    def __init__(
        self, status: int, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


class WriteError(InfluxError):
    """A write was refused or failed (the collector splits, dead-letters or retries it)."""


class QueryError(InfluxError):
    """A query was refused or failed (the API answers 503, the collector retries later)."""


class ServiceError(LabmeterError):
    """A child process (mosquitto, influxd) is missing or would not start."""


class EvidenceError(LabmeterError):
    """A period cannot be closed or its evidence package does not verify; says why."""
