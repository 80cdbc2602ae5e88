"""JSON logs on stdout for the service and its libraries (uvicorn, FastStream, aiokafka).

Log ids and counts, never names or e-mail addresses: events with personal data are logged by id only.

Kafka outages are logged as state changes, not as a flood. While the broker is away, aiokafka logs
an error on every attempt of every client (`Unable connect to node with id 1`, `Unable to update
metadata`, `Failed fetch messages`: thousands of lines a second). `KafkaOutageLog`, a filter on the
one handler, turns them into:

- `kafka unreachable` (warning, once, with the first error), when the first such line arrives;
- `kafka still unreachable` (warning, at most once a minute: `summary_seconds`) with the number of
  lines suppressed since the previous line and how long Kafka has been away;
- `kafka reachable again` (info, once), with the outage's length and the lines it suppressed, when
  the runtime finds the broker answering again (`KafkaOutageLog.reachable`, called by the runtime's
  Kafka watch in app.py) or no such line has come for `quiet_seconds`.

Any other aiokafka warning (a rebalance, a failed commit) is logged at most once a minute per kind
of message, with `suppressed` counting the repeats left out in between.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

import structlog

#: What an aiokafka line says when it is about the broker being unreachable (connections refused,
#: metadata not updated, requests to a node that is not connected). A coordinator that is not
#: available yet (a new group, a rebalance) is not an outage: those lines are rate-limited as others.
_UNREACHABLE = (
    "Unable connect",
    "Unable to update metadata",
    "Unable to request metadata",
    "Unable to bootstrap",
    "NodeNotReadyError",
    "KafkaConnectionError",
    "Connection refused",
    "Connect call failed",
    "RequestTimedOutError",
    "KafkaTimeoutError",
)
#: Record attributes copied into a line's JSON (set by `KafkaOutageLog` on the lines it lets through).
_EXTRA = ("first_error", "last_error", "suppressed", "down_seconds", "repeats")

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

log = structlog.get_logger("estafette.runtime.kafka")


class KafkaOutageLog(logging.Filter):
    """Rate-limits aiokafka's lines (see the module's docstring). Thread-safe; `clock` for tests."""

    def __init__(
        self, summary_seconds: float = 60.0, quiet_seconds: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.summary_seconds = summary_seconds
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._lock = threading.Lock()
        #: Since when Kafka is unreachable (clock time), or None.
        self.down_since: float | None = None
        self._last_error_at = 0.0
        self._last_line_at = 0.0
        self._suppressed = 0  # since the last line written about this outage
        self._suppressed_total = 0  # in this outage
        #: Other aiokafka messages: template -> (time of the last line written, repeats suppressed since).
        self._others: dict[tuple[str, object], tuple[float, int]] = {}

    @property
    def unreachable(self) -> bool:
        return self.down_since is not None

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: let the handler report it
            return True
        with self._lock:
            now = self._clock()
            if any(marker in message for marker in _UNREACHABLE):
                return self._unreachable_line(record, message, now)
            return self._other_line(record, message, now)

    def _unreachable_line(self, record: logging.LogRecord, message: str, now: float) -> bool:
        self._last_error_at = now
        if self.down_since is None:
            self.down_since, self._last_line_at = now, now
            self._suppressed = self._suppressed_total = 0
            _rewrite(record, logging.WARNING, "kafka unreachable", first_error=message)
            return True
        if now - self._last_line_at >= self.summary_seconds:
            _rewrite(record, logging.WARNING, "kafka still unreachable", last_error=message,
                     suppressed=self._suppressed, down_seconds=round(now - self.down_since))
            self._last_line_at, self._suppressed = now, 0
            return True
        self._suppressed += 1
        self._suppressed_total += 1
        return False

    def _other_line(self, record: logging.LogRecord, message: str, now: float) -> bool:
        key = (record.name, record.msg)
        last, repeats = self._others.get(key, (None, 0))
        if last is not None and now - last < self.summary_seconds:
            self._others[key] = (last, repeats + 1)
            if self.down_since is not None:
                self._suppressed_total += 1
            return False
        self._others[key] = (now, 0)
        if repeats:
            record.repeats = repeats  # type: ignore[attr-defined]
        return True

    def reachable(self) -> None:
        """Kafka answers again: end the outage (one info line) if there is one."""
        with self._lock:
            if self.down_since is None:
                return
            down, suppressed = self._clock() - self.down_since, self._suppressed_total
            self.down_since = None
        log.info("kafka reachable again", down_seconds=round(down), suppressed=suppressed)

    def tick(self) -> None:
        """Called now and then (the runtime's Kafka watch): an outage without any error line for
        `quiet_seconds` is over."""
        if self.down_since is not None and self._clock() - self._last_error_at >= self.quiet_seconds:
            self.reachable()


def _rewrite(record: logging.LogRecord, level: int, message: str, **extra: object) -> None:
    """Turn aiokafka's line into our state line (same time stamp), logged as estafette.runtime.kafka."""
    record.name = "estafette.runtime.kafka"
    record.levelno, record.levelname = level, logging.getLevelName(level)
    record.msg, record.args, record.exc_info, record.exc_text = message, (), None, None
    for name, value in extra.items():
        setattr(record, name, value)


#: The process's filter (one per process: aiokafka's loggers are global). Replaced by `configure_logging`.
KAFKA_OUTAGE_LOG = KafkaOutageLog()


def configure_logging(service: str, level: str = "INFO") -> None:
    global KAFKA_OUTAGE_LOG
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(allow=_EXTRA)],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    KAFKA_OUTAGE_LOG = KafkaOutageLog()
    handler.addFilter(KAFKA_OUTAGE_LOG)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


def kafka_outage_log() -> KafkaOutageLog:
    """The filter `configure_logging` installed (for the runtime's Kafka watch)."""
    return KAFKA_OUTAGE_LOG
