"""`python -m bot.web.healthcheck`: exit 0 when GET /healthz answers 200 (for Docker's
HEALTHCHECK; the slim image has no curl)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from bot.config import ConfigError, Settings


def main() -> int:
    """Probe the local server on PORT; 1 (unhealthy) on any failure, as Docker expects
    (it reserves exit code 2)."""
    try:
        port = Settings.from_env("healthcheck").port
    except ConfigError as error:
        print(f"unhealthy: {'; '.join(error.problems)}", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
