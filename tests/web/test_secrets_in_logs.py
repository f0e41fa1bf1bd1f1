"""The real webhook process at LOG_LEVEL=DEBUG prints no secret: not the token (in every
Bot API URL httpx logs), not the webhook secret (in PTB's setWebhook parameters), not a
database password (quoted by the driver when DATABASE_URL is malformed); and a token
Telegram refuses stops the process with one line and exit code 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.tg_harness import (
    ROOT,
    SECRET,
    TOKEN,
    StandIn,
    TgUser,
    free_port,
    start_webhook,
    stop_webhook,
    webhook_env,
)

PASSWORD = "Pa55-w0rd-xyzzy-7"
REFUSED_TOKEN = "555555555:AAHaTokenTheStandInDoesNotKnow_abcdef"


def _run_until_exit(env: dict[str, str], mode: str = "webhook") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_debug_logs_of_a_conversation_hold_no_token_or_secret(standin: StandIn, tmp_path: Path) -> None:
    hook = start_webhook(webhook_env(standin.url, tmp_path, free_port(), LOG_LEVEL="DEBUG"), tmp_path)
    try:
        user = TgUser(hook, standin)
        user.send("/start")
        user.send("/help")
    finally:
        stop_webhook(hook)
    logs = hook.logs()
    # Really at DEBUG, with the request URLs and parameters printed, and blanked:
    assert " DEBUG telegram.ext.ExtBot: Calling Bot API endpoint `setWebhook`" in logs
    assert "'secret_token': '***'" in logs
    assert "/bot***/setWebhook" in logs
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs
    assert SECRET not in logs


def test_a_malformed_database_url_does_not_print_its_password(standin: StandIn, tmp_path: Path) -> None:
    # An unclosed IPv6 bracket: libpq used to quote the whole URL in each failed attempt.
    url = f"postgresql://advisor:{PASSWORD}@[::1/advisor"
    result = _run_until_exit(webhook_env(standin.url, tmp_path, free_port(), LOG_LEVEL="DEBUG", DATABASE_URL=url))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert " DEBUG " in output and "the webhook cannot start" in output
    assert "DATABASE_URL is not a valid PostgreSQL connection string" in output
    assert "Traceback" not in output, "a setting to fix is one line, not a traceback"
    assert PASSWORD not in output


def test_a_refused_token_is_one_line_and_exit_code_1(standin: StandIn, tmp_path: Path) -> None:
    env = webhook_env(standin.url, tmp_path, free_port(), LOG_LEVEL="DEBUG", TELEGRAM_BOT_TOKEN=REFUSED_TOKEN)
    result = _run_until_exit(env)
    assert result.returncode == 1
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert errors[0].endswith(
        f"The Bot API at {standin.url} refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token with @BotFather."
    )
    assert len(errors) == 2 and errors[1].endswith("Application startup failed. Exiting.")
    assert "Traceback" not in output
    assert REFUSED_TOKEN not in output and REFUSED_TOKEN.split(":")[1] not in output


def test_polling_with_a_refused_token_is_one_line_and_exit_code_1(standin: StandIn, tmp_path: Path) -> None:
    env = webhook_env(standin.url, tmp_path, free_port(), LOG_LEVEL="DEBUG", TELEGRAM_BOT_TOKEN=REFUSED_TOKEN)
    result = _run_until_exit(env, "polling")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if " ERROR " in line]
    # PTB's updater logs its failed start first, with its traceback (redacted by the
    # filter: polling is the development mode); the last word is ours, and exit code 1.
    assert errors[-1].endswith(
        f"The Bot API at {standin.url} refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token with @BotFather."
    )
    assert REFUSED_TOKEN not in output and REFUSED_TOKEN.split(":")[1] not in output
