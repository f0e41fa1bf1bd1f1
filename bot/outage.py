"""How a background loop that retries every second reports a failure: once when it
starts failing, once when it works again, never on every round (an hour-long database
outage would otherwise write thousands of identical warnings)."""

from __future__ import annotations

import logging
from dataclasses import dataclass


@dataclass
class Outage:
    """The failing state of one repeating job, named `what` in the log ("outbox sweep")."""

    what: str
    log: logging.Logger
    failing: bool = False

    def failed(self, error: BaseException) -> None:
        """A round failed: warned about (its type only) if the job was working until now."""
        if not self.failing:
            self.log.warning("%s failed (%s); will keep trying", self.what, type(error).__name__)
        self.failing = True

    def worked(self) -> None:
        """A round succeeded: said once if the job was failing."""
        if self.failing:
            self.log.info("%s works again", self.what)
        self.failing = False
