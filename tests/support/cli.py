"""Running the bot's command line as an operator does, and where the bundled content is."""

from __future__ import annotations

import os
import subprocess
import sys

from bot.runtime import PROJECT_ROOT

DIALOGS = PROJECT_ROOT / "dialogs"
LOCALES = PROJECT_ROOT / "locales"


def run_bot(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` as an operator runs it, from the project folder."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
