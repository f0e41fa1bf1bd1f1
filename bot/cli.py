"""`python -m bot <command>`: the operational contract (see README and docs/design.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.i18n.catalog import CHINESE, normalize_locale
from bot.spec.loader import SpecError

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.i18n.catalog import Localizer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _terminal_locale() -> str:
    """The terminal's language (LC_ALL, LC_MESSAGES, LANG); Chinese when unknown."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value and value not in ("C", "POSIX") and not value.startswith("C."):
            return normalize_locale(value, default=CHINESE)
    return CHINESE


def cmd_chat(args: argparse.Namespace) -> int:
    from bot.channels import terminal

    locale = normalize_locale(args.lang) if args.lang else _terminal_locale()
    terminal.run(locale, database_url=args.database_url)
    return EXIT_OK


def _load(dialogs: str | None, locales: str | None = None) -> tuple[Engine, Localizer] | None:
    """The engine for `dialogs`, or None after printing every problem with its place."""
    from bot.runtime import build_engine

    try:
        return build_engine(dialogs, locales)
    except SpecError as err:
        print("\n".join(err.problems), file=sys.stderr)
        print(f"{len(err.problems)} problem(s) in the dialogs.", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.i18n.completeness import translation_problems

    if (loaded := _load(args.dir, args.locales)) is None:
        return EXIT_FAILED
    engine, localizer = loaded
    problems = translation_problems(engine.spec, localizer, tuple(loc for loc in localizer.locales if loc != "en"))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s) in the translations.", file=sys.stderr)
        return EXIT_FAILED
    spec = engine.spec
    states = sum(len(flow.states) for flow in spec.flows.values())
    texts = len({msgid for msgid, _ in spec.texts})
    print(
        f"OK: {len(spec.flows)} flows, {states} states, {len(spec.causes)} causes, "
        f"{texts} texts translated into {', '.join(localizer.locales)}."
    )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from bot.spec.graph import mermaid

    if (loaded := _load(args.dir)) is None:
        return EXIT_FAILED
    engine, _ = loaded
    if args.flow and args.flow not in engine.spec.flows:
        print(f"no flow '{args.flow}'; flows: {', '.join(engine.spec.flows)}", file=sys.stderr)
        return EXIT_USAGE
    print(mermaid(engine.spec, args.flow))
    return EXIT_OK


def cmd_test_dialogs(args: argparse.Namespace) -> int:
    from bot.dialogtests import run_folder
    from bot.runtime import dialogs_dir

    if (loaded := _load(args.dir)) is None:
        return EXIT_FAILED
    engine, localizer = loaded
    folder = Path(args.tests) if args.tests else dialogs_dir(args.dir) / "tests"
    results = run_folder(engine, localizer, folder)
    failed = [r for r in results if not r.passed]
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.name}")
        for problem in result.problems:
            print(f"     {problem}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed or not results else EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    if (loaded := _load(args.dir)) is None:
        return EXIT_FAILED
    engine, _ = loaded
    slots = {}
    for pair in args.answer:
        name, sep, text = pair.partition("=")
        if not sep:
            print(f"--answer takes slot=value, not {pair!r}", file=sys.stderr)
            return EXIT_USAGE
        try:
            slots[name.strip()] = engine.read_answer(name.strip(), text)
        except ValueError as err:
            print(str(err), file=sys.stderr)
            return EXIT_USAGE
    if args.text:
        slots["story"] = [e.key for e in engine.diagnoser.read_story(args.text)]
    ranking = engine.assess(slots)
    result = {"causes": [{"id": a.cause.id, "probability": round(a.probability, 6)} for a in ranking]}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from bot.store import open_store

    async def read() -> dict[str, int]:
        store = open_store(args.database_url or os.environ.get("DATABASE_URL") or "sqlite:///data/bot.sqlite3")
        await store.open()
        try:
            return await store.stats()
        finally:
            await store.close()

    print(json.dumps(asyncio.run(read()), indent=2, sort_keys=True))
    return EXIT_OK


def cmd_polling(args: argparse.Namespace) -> int:
    from bot.channels.telegram import run_polling
    from bot.config import load_settings_or_exit

    run_polling(load_settings_or_exit("polling"))
    return EXIT_OK


def cmd_webhook(args: argparse.Namespace) -> int:
    from bot.config import load_settings_or_exit
    from bot.web import run_webhook

    run_webhook(load_settings_or_exit("webhook"))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Overdue Advisor")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", help="talk to the advisor in this terminal (no token needed)")
    chat.add_argument("--lang", choices=["zh", "en", "zh_CN"], help="language (default: the terminal's)")
    chat.add_argument("--database-url", help="default: $DATABASE_URL or sqlite:///data/bot.sqlite3")
    chat.set_defaults(run=cmd_chat)

    commands.add_parser("polling", help="run on Telegram by long polling (development)").set_defaults(run=cmd_polling)
    commands.add_parser("webhook", help="run the webhook server (production)").set_defaults(run=cmd_webhook)

    validate = commands.add_parser("validate", help="check the dialogs and translations")
    validate.add_argument("dir", nargs="?", help="dialogs folder (default: bundled dialogs/)")
    validate.add_argument("--locales", help="catalogs folder (default: bundled locales/)")
    validate.set_defaults(run=cmd_validate)

    graph = commands.add_parser("graph", help="print the flows as a Mermaid diagram")
    graph.add_argument("--flow", help="only this flow")
    graph.add_argument("--dir", help="dialogs folder")
    graph.set_defaults(run=cmd_graph)

    tests = commands.add_parser("test-dialogs", help="run the conversation tests in dialogs/tests/")
    tests.add_argument("dir", nargs="?", help="dialogs folder (default: bundled dialogs/)")
    tests.add_argument("--tests", help="tests folder (default: <dialogs>/tests)")
    tests.set_defaults(run=cmd_test_dialogs)

    diagnose = commands.add_parser("diagnose", help="rank the causes for a description (JSON)")
    diagnose.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the text")
    diagnose.add_argument("--text", default="", help="the user's own words")
    diagnose.add_argument("--answer", action="append", default=[], metavar="SLOT=VALUE", help="an answer, repeatable")
    diagnose.add_argument("--dir", help="dialogs folder")
    diagnose.set_defaults(run=cmd_diagnose)

    stats = commands.add_parser("stats", help="anonymous usage counts from the store")
    stats.add_argument("--database-url")
    stats.set_defaults(run=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:  # `python -m bot diagnose … | head`: the reader left, not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    return code
