"""The clock: what every service reads as "now" (deadlines, reminders, feedback requests, link expiry,
scheduled steps).

    rt.clock.now()          # an aware UTC datetime; the real time unless a test clock is configured

A **test clock** lets an end-to-end test walk a whole edition in minutes. It is configured by platform
settings (runtime/settings.py, the same for every service):

- `ESTAFETTE_FIXED_NOW=2027-05-31T08:00:00+00:00`: "now" stands still at that instant;
- `ESTAFETTE_CLOCK_OFFSET_SECONDS=86400`: "now" is moved by that many seconds (the real time, or the
  fixed instant, plus the offset);
- `ESTAFETTE_CLOCK_FILE=/path/clock.json`: the same two values in a JSON file,
  `{"offset_seconds": 86400, "fixed_now": "2027-05-31T08:00:00+00:00"}` (both optional), read on every
  reading of the clock (cached by the file's inode, modification time and size). When the file exists it wins
  over the two settings above; a missing or empty file means "no change". Why a file: it is the simplest
  thing that every service process on the machine sees at once, without restarts, without a route
  that production would have to refuse, and without touching any service's schema. A test moves the
  time of every running service with `move_clock_file(path, offset_seconds=..., fixed_now=...)`
  (written atomically: a reader never sees half a file).

With `ESTAFETTE_ENVIRONMENT=production` a service configured with any of them refuses to start
(`TestClockRefused`, raised by `Clock.from_settings` when the Runtime is built).

Unit tests build a clock directly: `Clock(fixed_now=...)`, and move it with `clock.advance(...)`.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class TestClockRefused(RuntimeError):
    """A test clock was configured where production settings forbid it."""

    __test__ = False  # not a pytest test class


class Now(Protocol):
    """What code that needs the time depends on (a `Clock`, or any object with `now()`)."""

    def now(self) -> datetime: ...


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must name its UTC offset (e.g. 2027-05-31T08:00:00+00:00), got {value.isoformat()}")
    return value.astimezone(UTC)


class Clock:
    """The platform's "now": the real time, or a test clock (a fixed instant and/or an offset, from
    settings or a file read on every reading)."""

    def __init__(
        self, *, fixed_now: datetime | None = None, offset: timedelta = timedelta(0), file: str | Path | None = None
    ) -> None:
        self._fixed = _aware(fixed_now, "the fixed time") if fixed_now is not None else None
        self._offset = offset
        self._file = Path(file) if file else None
        self._file_seen: tuple[int, int, int] | None = None
        self._file_values: tuple[datetime | None, timedelta] | None = None

    @classmethod
    def from_settings(cls, settings: object) -> Clock:
        """The clock the settings describe (runtime/settings.py `ServiceSettings`); refuses a test clock
        in production."""
        fixed = getattr(settings, "fixed_now", None)
        offset = float(getattr(settings, "clock_offset_seconds", 0.0) or 0.0)
        file = getattr(settings, "clock_file", "") or ""
        if getattr(settings, "environment", "development") == "production" and (fixed is not None or offset or file):
            configured = [
                name
                for name, on in (
                    ("ESTAFETTE_FIXED_NOW", fixed is not None),
                    ("ESTAFETTE_CLOCK_OFFSET_SECONDS", bool(offset)),
                    ("ESTAFETTE_CLOCK_FILE", bool(file)),
                )
                if on
            ]
            raise TestClockRefused(
                f"a test clock ({', '.join(configured)}) is not allowed with ESTAFETTE_ENVIRONMENT=production: "
                "remove it, or run with another environment"
            )
        return cls(fixed_now=fixed, offset=timedelta(seconds=offset), file=file or None)

    @property
    def is_test_clock(self) -> bool:
        return self._fixed is not None or bool(self._offset) or self._file is not None

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        fixed, offset = self._fixed, self._offset
        from_file = self._read_file()
        if from_file is not None:
            fixed, offset = from_file
        base = fixed if fixed is not None else datetime.now(UTC)
        return base + offset

    def advance(self, delta: timedelta) -> None:
        """Move this clock (in this process only; other processes: `move_clock_file`)."""
        self._offset += delta

    def set(self, fixed_now: datetime | None) -> None:
        """Stop this clock at `fixed_now` (None: run with the real time again), in this process only."""
        self._fixed = _aware(fixed_now, "the fixed time") if fixed_now is not None else None

    def _read_file(self) -> tuple[datetime | None, timedelta] | None:
        if self._file is None:
            return None
        try:
            stat = self._file.stat()
        except FileNotFoundError:
            self._file_seen = self._file_values = None
            return None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a move replaces the file: a new inode
        if seen != self._file_seen:
            self._file_values = _parse_clock_file(self._file.read_text())
            self._file_seen = seen
        return self._file_values


def _parse_clock_file(text: str) -> tuple[datetime | None, timedelta] | None:
    if not text.strip():
        return None
    data = json.loads(text)
    fixed = data.get("fixed_now")
    return (
        _aware(datetime.fromisoformat(fixed), "fixed_now") if fixed else None,
        timedelta(seconds=float(data.get("offset_seconds") or 0)),
    )


def move_clock_file(path: str | Path, *, offset_seconds: float = 0.0, fixed_now: datetime | None = None) -> None:
    """Set the test clock of every service that reads `path` (ESTAFETTE_CLOCK_FILE), atomically."""
    path = Path(path)
    values = {
        "offset_seconds": offset_seconds,
        "fixed_now": _aware(fixed_now, "fixed_now").isoformat() if fixed_now is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(values, out)
    os.replace(tmp, path)
