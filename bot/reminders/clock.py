"""The time reminders are scheduled by: the system clock, or a test's shifted one.

Scheduling reads the wall clock (`datetime.now`, i.e. `clock_gettime(CLOCK_REALTIME)`),
never a monotonic one, so a process started under a shifted clock (libfaketime) sees
the shifted time. Tests drive a running process's clock with `OffsetClock`: the
system time plus a number of seconds read from a file the test writes
(CLOCK_OFFSET_FILE, bot/config.py), re-read whenever the file changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC, from the wall clock."""
    return datetime.now(UTC)


class OffsetClock:
    """The system clock shifted by the seconds written in `path` (for tests only).

    The file is read again when its modification time or size changes, so a test can
    move the time of a running process; a missing or unreadable file means no shift.
    """

    def __init__(self, path: Path, base: Clock = system_clock) -> None:
        self.path = path
        self.base = base
        self._seen: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        return self.base() + self.offset()

    def offset(self) -> timedelta:
        """The current shift (read from the file when it changed)."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return self._offset
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._seen = seen
            try:
                self._offset = timedelta(seconds=float(self.path.read_text(encoding="utf-8").strip() or 0))
            except (OSError, ValueError):
                log.warning("the clock offset file could not be read; the clock is not shifted")
                self._offset = timedelta(0)
        return self._offset


def clock_for(offset_file: Path | None) -> Clock:
    """The system clock, or a shifted one when a test names an offset file."""
    return OffsetClock(offset_file) if offset_file is not None else system_clock
