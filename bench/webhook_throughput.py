"""Webhook throughput: the real advisor process against a bare PTB echo bot, same harness.

    .venv/bin/python -m bench.webhook_throughput [--chats 50] [--updates 20] [--rounds 2]
        [--scenario new|returning|both]

Both bots run as their own processes behind the same stand-in Bot API (its own
process too, tests/support/tg_standin.py), and receive the same stream of real update
JSON over HTTP: `--chats` chats at once, each sending `--updates` messages one after
the other, as a user does, waiting for the 200 (which the advisor gives only after the
state is committed). A chat's stream is a whole conversation typed in Chinese or
English (/start, the role, the product, days, amount, a story, yes/no answers, the
plan, and over again), so the advisor does all its work: store lock and commit, engine,
diagnosis, HTML rendering, one to three Bot API calls.

Two scenarios: `new` (every update is `/start` from a chat never seen: greeting and
first question, a new row) and `returning` (the whole conversations above). The
outgoing rate cap is lifted (TELEGRAM_MAX_RATE=0), as the issue asks.

The advisor acknowledges an update once it is committed and sends from its outbox
afterwards, so a run ends only when the stand-in has received every reply (its call
count stops moving): both bots are timed to the last message delivered, and the
CPU of each process is read after that.

Prints updates/s and p50/p99 latency of each, CPU per update, and the ratios
advisor/echo (the targets: throughput ≥ 0.8, CPU per update ≤ 1.6× the echo's).
Rounds alternate echo and advisor; the best round of each is reported, so a noisy
neighbour on a small machine does not decide the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.tg_harness import (
    SECRET,
    TOKEN,
    free_port,
    message_update,
    next_update_id,
    webhook_env,
)

ROOT = Path(__file__).resolve().parent.parent

SCRIPTS: Sequence[tuple[str, Sequence[str]]] = (
    (
        "zh-hans",
        ("/start", "1", "1", "两个月", "两万三", "上个月失业了，一直没找到工作", "没有", "是的", "没有", "不是"),
    ),
    (
        "en",
        ("/start", "1", "2", "45 days", "1.5万", "I forgot the due date, no reminder came", "yes", "no", "1", "yes"),
    ),
)


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    latencies: list[float]
    failures: int
    cpu_seconds: float | None = None  # the bot process's own CPU time during the run

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_standin() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.tg_standin", "--token", TOKEN, "--no-record"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError("the stand-in did not start")
    return process, url


def start_bot(kind: str, api_url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    env = webhook_env(api_url, tmp, port, LOG_LEVEL="WARNING")
    if kind == "echo":
        command = [sys.executable, str(ROOT / "bench/echo_bot.py")]
    else:
        command = [sys.executable, "-m", "bot", "webhook"]
    log = (tmp / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited: {(tmp / f'{kind}.log').read_text()}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return process, env["WEBHOOK_URL"], base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not become healthy")


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def settled(api_url: str, quiet: float = 0.3) -> float:
    """Wait until the stand-in's call count has not moved for `quiet` seconds; returns
    the moment of the last change (perf_counter), when the last reply arrived."""
    count, changed = -1, time.perf_counter()
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            now = (await client.get(f"{api_url}/_standin/count")).json()["calls"]
            if now != count:
                count, changed = now, time.perf_counter()
            elif time.perf_counter() - changed >= quiet:
                return changed
            await asyncio.sleep(0.02)


async def drive(url: str, chats: int, updates: int, first_chat: int, scenario: str, api_url: str) -> Result:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    latencies: list[float] = []
    errors: list[str] = []
    failures = 0
    limits = httpx.Limits(max_connections=chats + 10, max_keepalive_connections=chats + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def chat(number: int) -> None:
            nonlocal failures
            language, script = SCRIPTS[number % len(SCRIPTS)]
            for step in range(updates):
                if scenario == "new":
                    # A chat never seen before each time: the greeting and a new row.
                    chat_id, text = first_chat + number * updates + step, "/start"
                else:
                    chat_id, text = first_chat + number, script[step % len(script)]
                update = message_update(chat_id, text, language=language, update_id=next_update_id())
                started = time.perf_counter()
                for _attempt in range(3):  # Telegram, too, delivers again after a failure
                    try:
                        response = await client.post(url, json=update, headers=headers)
                    except httpx.TransportError as error:
                        failures += 1
                        errors.append(type(error).__name__)
                        continue
                    if response.status_code == 200:
                        break
                    failures += 1
                    errors.append(f"HTTP {response.status_code}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(chat(n) for n in range(chats)))
        seconds = await settled(api_url) - started
    if errors:
        print(f"  {len(errors)} failed deliveries (retried): {sorted(set(errors))}", flush=True)
    return Result("", chats * updates, seconds, latencies, failures)


def run_one(kind: str, api_url: str, chats: int, updates: int, first_chat: int, scenario: str) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as folder:
        process, url, _ = start_bot(kind, api_url, Path(folder))
        try:
            # Warm up (imports, caches) on chats the measured run never uses.
            asyncio.run(drive(url, 5, 3, first_chat + 900_000_000, "returning", api_url))
            cpu_before = cpu_seconds(process.pid)
            result = asyncio.run(drive(url, chats, updates, first_chat, scenario, api_url))
            cpu_after = cpu_seconds(process.pid)
            if cpu_before is not None and cpu_after is not None:
                result.cpu_seconds = cpu_after - cpu_before
        except Exception:
            print((Path(folder) / f"{kind}.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            stop(process)
    result.name = kind
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--updates", type=int, default=20, help="updates per chat")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenario", choices=("new", "returning", "both"), default="both")
    args = parser.parse_args()
    scenarios = ("new", "returning") if args.scenario == "both" else (args.scenario,)
    standin, api_url = start_standin()
    try:
        for scenario in scenarios:
            report(scenario, api_url, args.chats, args.updates, args.rounds)
    finally:
        stop(standin)


def report(scenario: str, api_url: str, chats: int, updates: int, rounds: int) -> None:
    """Alternate echo and advisor `rounds` times on one scenario and print the figures."""
    print(f"-- scenario: {scenario} users --", flush=True)
    best: dict[str, Result] = {}
    runs: dict[str, list[Result]] = {"echo": [], "advisor": []}
    base = 100_000_000 if scenario == "returning" else 300_000_000
    for round_number in range(rounds):
        for kind in ("echo", "advisor"):
            first_chat = base + round_number * 10_000_000 + (kind == "advisor") * 1_000_000
            result = run_one(kind, api_url, chats, updates, first_chat, scenario)
            print(
                f"round {round_number + 1} {kind:8} {result.rate:8.1f} updates/s  "
                f"p50 {result.percentile(0.5):6.1f} ms  p99 {result.percentile(0.99):6.1f} ms"
                f"  CPU {cpu_per_update(result)} ms/update  failures {result.failures}",
                flush=True,
            )
            runs[kind].append(result)
            if kind not in best or result.rate > best[kind].rate:
                best[kind] = result
    print()
    print(f"{scenario} users: {chats} chats x {updates} updates, best of {rounds} round(s), {os.cpu_count()} CPU(s)")
    print(f"{'':10}{'updates/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'CPU ms/update':>16}")
    for kind in ("echo", "advisor"):
        r = best[kind]
        print(
            f"{kind:10}{r.rate:12.1f}{r.percentile(0.5):10.1f}{r.percentile(0.99):10.1f}"
            f"{statistics.fmean(r.latencies) * 1000:10.1f}{cpu_per_update(r):>16}"
        )
    ratio = best["advisor"].rate / best["echo"].rate
    print(f"throughput ratio advisor/echo: {ratio:.2f} (target >= 0.80)")
    cpu = {
        kind: min(r.cpu_seconds / r.updates for r in runs[kind] if r.cpu_seconds)
        for kind in runs
        if all(r.cpu_seconds for r in runs[kind])
    }
    if len(cpu) == 2:
        # CPU per update is what a busy machine disturbs least: the steadier comparison.
        print(
            f"CPU per update advisor/echo (least of each): {cpu['advisor'] / cpu['echo']:.2f}x (target <= 1.6x)",
            flush=True,
        )
    print()


def cpu_per_update(result: Result) -> str:
    if result.cpu_seconds is None:
        return "n/a"
    return f"{result.cpu_seconds * 1000 / result.updates:.2f}"


if __name__ == "__main__":
    main()
