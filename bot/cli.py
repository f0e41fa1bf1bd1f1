"""`python -m bot <command>`: the operational contract (see README and docs/design.md)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import DEFAULT_DATABASE_URL, Settings, load_settings_or_exit, terminal_locale
from bot.i18n.catalog import normalize_locale
from bot.spec.loader import SpecError

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.i18n.catalog import Localizer
    from bot.store.base import EventRecord

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _with_database(settings: Settings, url: str | None) -> Settings:
    """`--database-url`, when given, wins over DATABASE_URL."""
    return dataclasses.replace(settings, database_url=url) if url else settings


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """The conversation in this terminal; `--dialogs`/`--locales` try an edited copy first."""
    from bot.channels import terminal

    locale = normalize_locale(args.lang) if args.lang else terminal_locale()
    settings = _with_database(settings, args.database_url)
    if args.dialogs or args.locales:
        settings = dataclasses.replace(
            settings,
            dialogs_dir=Path(args.dialogs) if args.dialogs else settings.dialogs_dir,
            locales_dir=Path(args.locales) if args.locales else settings.locales_dir,
        )
    # The copy must validate as a reload would take it: the same check, before any word.
    if _load(settings, checked=True) is None:
        return EXIT_FAILED
    terminal.run(locale, settings)
    return EXIT_OK


def _load(
    settings: Settings, dialogs: str | None = None, locales: str | None = None, *, checked: bool = False
) -> tuple[Engine, Localizer] | None:
    """The engine for `dialogs` (default: DIALOGS_DIR, else the bundled ones), or None after
    printing every problem with its place. `checked`: the translations too, as a reload
    checks them (`bot.runtime.load_checked`)."""
    from bot.problems import ProblemsError
    from bot.runtime import build_engine, load_checked

    try:
        load = load_checked if checked else build_engine
        return load(dialogs or settings.dialogs_dir, locales or settings.locales_dir)
    except ProblemsError as err:
        print("\n".join(err.problems), file=sys.stderr)
        part = "dialogs" if isinstance(err, SpecError) else "translations"
        print(f"{len(err.problems)} problem(s) in the {part}.", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    if (loaded := _load(settings, args.dir, args.locales, checked=True)) is None:
        return EXIT_FAILED
    engine, localizer = loaded
    spec = engine.spec
    states = sum(len(flow.states) for flow in spec.flows.values())
    texts = len({msgid for msgid, _ in spec.texts})
    print(
        f"OK: {len(spec.flows)} flows, {states} states, {len(spec.causes)} causes, "
        f"{texts} texts translated into {', '.join(localizer.locales)}."
    )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    from bot.spec.graph import mermaid

    if (loaded := _load(settings, args.dir)) is None:
        return EXIT_FAILED
    engine, _ = loaded
    if args.flow and args.flow not in engine.spec.flows:
        print(f"no flow '{args.flow}'; flows: {', '.join(engine.spec.flows)}", file=sys.stderr)
        return EXIT_USAGE
    print(mermaid(engine, args.flow))  # drawn from the machine this engine runs
    return EXIT_OK


def cmd_test_dialogs(args: argparse.Namespace, settings: Settings) -> int:
    from bot.dialogtests import run_folder
    from bot.runtime import dialogs_dir

    if (loaded := _load(settings, args.dir)) is None:
        return EXIT_FAILED
    engine, localizer = loaded
    folder = Path(args.tests) if args.tests else dialogs_dir(args.dir or settings.dialogs_dir) / "tests"
    results = run_folder(engine, localizer, folder)
    failed = [r for r in results if not r.passed]
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'} {result.name}")
        for problem in result.problems:
            print(f"     {problem}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed or not results else EXIT_OK


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
    if (loaded := _load(settings, args.dir)) is None:
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


def cmd_eval_causes(args: argparse.Namespace, settings: Settings) -> int:
    """Cross-validate the cause classifier on the examples; exit 1 below `--min-accuracy`."""
    from bot.engine.classifier import cross_validate, describe
    from bot.runtime import dialogs_dir
    from bot.spec.loader import load_dialogs

    try:
        spec = load_dialogs(dialogs_dir(args.dir or settings.dialogs_dir))
    except SpecError as err:
        print("\n".join(err.problems), file=sys.stderr)
        return EXIT_FAILED
    examples = {cause.id: cause.examples for cause in spec.causes if cause.examples}
    if len(examples) < 2 or args.folds < 2:
        print("no examples to evaluate (dialogs/examples/*.yaml), or fewer than 2 folds", file=sys.stderr)
        return EXIT_FAILED
    result = cross_validate(examples, args.folds)
    languages = sorted(set(result.langs), key=lambda lang: (lang != "zh", lang))
    print("\n".join(describe(result, languages)))
    worst = min(result.accuracy(lang) for lang in languages)
    if args.min_accuracy is not None and worst < args.min_accuracy:
        print(f"accuracy {worst:.3f} is below the floor {args.min_accuracy:.3f}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_parse(args: argparse.Namespace, settings: Settings) -> int:
    """One typed answer read as the engine reads it: JSON value (and range) or the problem."""
    from decimal import Decimal

    from bot.engine.answers import OUT_OF_RANGE, Doubt, Kind, read_slot
    from bot.engine.turn import Days, Money, Msg
    from bot.i18n.catalog import Localizer
    from bot.runtime import dialogs_dir, locales_dir
    from bot.spec.loader import load_dialogs

    try:
        spec = load_dialogs(dialogs_dir(args.dir or settings.dialogs_dir))
    except SpecError as err:
        print("\n".join(err.problems), file=sys.stderr)
        return EXIT_FAILED
    slot = next((flow.slots[args.slot] for flow in spec.flows.values() if args.slot in flow.slots), None)
    kinds = {kind.value: kind for kind in Kind}
    if slot is None or slot.type.value not in kinds:
        numeric = sorted({n for f in spec.flows.values() for n, s in f.slots.items() if s.type.value in kinds})
        print(f"no number slot '{args.slot}'; number slots: {', '.join(numeric)}", file=sys.stderr)
        return EXIT_USAGE
    kind = kinds[slot.type.value]

    def number(value: Decimal) -> int | float:
        return int(value) if value == value.to_integral_value() else float(value)

    read = read_slot(args.text, kind, slot.minimum, slot.maximum)
    if read is None or isinstance(read, Doubt):
        key = read.reason if read is not None else slot.invalid or f"invalid_{kind.value}"
        values: dict[str, Money | Days | str] = {}
        if key == OUT_OF_RANGE:
            for name, limit in (("min", slot.minimum), ("max", slot.maximum)):
                values[name] = "—" if limit is None else Money(limit) if kind is Kind.MONEY else Days(int(limit))
        localizer = Localizer.load(locales_dir(args.locales or settings.locales_dir))
        text = localizer.text(Msg(spec.messages.get(key, key), values), normalize_locale(args.lang))
        print(json.dumps({"problem": text}, ensure_ascii=False))
        return EXIT_OK
    result = {"value": number(read.value)}
    if read.low is not None and read.high is not None:
        result |= {"low": number(read.low), "high": number(read.high)}
    print(json.dumps(result))
    return EXIT_OK


def _since(text: str) -> datetime:
    """`--since 2025-05-01` (midnight UTC) or an ISO time with its offset."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (e.g. 2025-05-01)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    """The funnel of the stored anonymous events (text, JSON) and, with `--chart`, its PNG."""
    from bot.i18n.catalog import Localizer
    from bot.runtime import dialogs_dir, locales_dir
    from bot.spec.loader import load_dialogs
    from bot.stats.report import build_report, render_text
    from bot.store import open_store

    try:
        spec = load_dialogs(dialogs_dir(args.dir or settings.dialogs_dir))
    except SpecError as err:
        print("\n".join(err.problems), file=sys.stderr)
        return EXIT_FAILED

    async def read() -> tuple[list[EventRecord], int]:
        store = open_store(args.database_url or settings.database_url, hash_key=settings.event_hash_key)
        await store.open()
        try:
            return await store.events(args.since), (await store.stats()).get("active_conversations", 0)
        finally:
            await store.close()

    events, active = asyncio.run(read())
    report = build_report(events, spec, since=args.since, active=active)
    locale = normalize_locale(args.lang) if args.lang else terminal_locale()
    localizer = Localizer.load(locales_dir(args.locales or settings.locales_dir))
    if args.chart:
        from bot.stats.chart import report_png

        Path(args.chart).write_bytes(report_png(report, localizer, locale))
    if args.format == "json":
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(render_text(report, localizer, locale))
    return EXIT_OK


def cmd_polling(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.telegram import run_polling

    run_polling(settings)
    return EXIT_OK


def cmd_webhook(args: argparse.Namespace, settings: Settings) -> int:
    from bot.web import run_webhook

    run_webhook(settings)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Overdue Advisor")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", help="talk to the advisor in this terminal (no token needed)")
    chat.add_argument("--lang", choices=["zh", "en", "zh_CN"], help="language (default: the terminal's)")
    chat.add_argument("--database-url", help=f"default: $DATABASE_URL or {DEFAULT_DATABASE_URL}")
    chat.add_argument("--dialogs", help="dialogs folder to try (default: $DIALOGS_DIR or the bundled dialogs/)")
    chat.add_argument("--locales", help="catalogs folder to try (default: $LOCALES_DIR or the bundled locales/)")
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

    evaluate = commands.add_parser("eval-causes", help="cross-validate the cause classifier on the examples")
    evaluate.add_argument("--folds", type=int, default=5, help="folds of the stratified cross-validation")
    evaluate.add_argument("--min-accuracy", type=float, help="exit 1 when a language's accuracy is below this")
    evaluate.add_argument("--dir", help="dialogs folder")
    evaluate.set_defaults(run=cmd_eval_causes)

    parse = commands.add_parser("parse", help="read a typed answer for a slot as the bot does (JSON)")
    parse.add_argument("--slot", required=True, help="a days or money slot, e.g. days_overdue, amount")
    parse.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the problem text")
    parse.add_argument("--text", required=True, help="what the user typed")
    parse.add_argument("--dir", help="dialogs folder")
    parse.add_argument("--locales", help="catalogs folder")
    parse.set_defaults(run=cmd_parse)

    stats = commands.add_parser("stats", help="the conversation funnel from the anonymous events")
    stats.add_argument("--since", type=_since, metavar="DATE", help="only conversations started since (2025-05-01)")
    stats.add_argument("--format", choices=["text", "json"], default="text", help="text (default) or JSON")
    stats.add_argument("--chart", metavar="FILE.png", help="also draw the funnel and the causes as a PNG")
    stats.add_argument("--lang", choices=["zh", "en", "zh_CN"], help="language (default: the terminal's)")
    stats.add_argument("--database-url", help=f"default: $DATABASE_URL or {DEFAULT_DATABASE_URL}")
    stats.add_argument("--dir", help="dialogs folder (question order, causes and their source shares)")
    stats.add_argument("--locales", help="catalogs folder")
    stats.set_defaults(run=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every command reads the same settings; a broken one is reported before anything runs.
    settings = load_settings_or_exit(args.command)
    try:
        code: int = args.run(args, settings)
    except BrokenPipeError:  # `python -m bot diagnose … | head`: the reader left, not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    return code
