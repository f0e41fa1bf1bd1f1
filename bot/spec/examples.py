"""Example stories per cause (`dialogs/examples/*.yaml`), from which the text classifier learns.

One file per cause, as operators find it easiest to add a story where its cause is:

```yaml
cause: unstable_income
examples:
  zh:
    - "厂里这两个月没订单，天天放假"
  en:
    - "The factory had no orders for two months"
```

Also the `classifier:` block of a cause in `causes.yaml`: what the ranking says when
the classifier points to the cause, and which questions a story answers when it is sure.
Every problem is reported as `file:line:column`, like the rest of the dialogs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.spec.model import Cause, Evidence, Where

if TYPE_CHECKING:
    from bot.spec.loader import MarkedList, MarkedMap, _Reader

EXAMPLES_DIR = "examples"  # inside the dialogs folder
# Fewer than this per cause and language and the classifier learns noise; 80 or more is
# what the bundled examples have (see `python -m bot eval-causes`).
MIN_EXAMPLES = 20
# The key of a cause's `classifier:` evidence: a story whose classifier reading is sure of
# the cause keeps `<cause id>/model`, which fills what the block says.
MODEL = "model"


def model_key(cause_id: str) -> str:
    """The evidence key of a cause's `classifier:` block."""
    return f"{cause_id}/{MODEL}"


def classifier_evidence(reader: _Reader, block: MarkedMap, what: str, cause_id: str) -> list[Evidence]:
    """The `classifier:` block of a cause: its `reason` (shown in the ranking) and `fills`."""
    if "classifier" not in block:
        return []
    found = reader.map(block["classifier"], block.value_where["classifier"], f"'classifier' of {what}")
    if found is None:
        return []
    reader.known_keys(found, {"reason", "fills"}, f"'classifier' of {what}")
    fills: dict[str, Any] = {}
    if "fills" in found and (fill_block := reader.map(found["fills"], found.value_where["fills"], "fills")):
        fills = {str(k): v for k, v in fill_block.items()}
    reason = reader.text(found, "reason", f"'classifier' of {what}")
    # Its ratio is the classifier's own (see Diagnoser.rank); 1 here so it never counts twice.
    return [Evidence(model_key(cause_id), 1.0, reason, None, {}, fills, found.where)]


def _plain(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def read_texts(items: MarkedList, seen: dict[str, Where], problems: list[str], empty: str) -> list[str]:
    """The texts of one YAML list of examples, each once: a text already `seen` anywhere
    (case and spacing aside) is a problem at its line, and so is an item that is not a
    text (`empty` says what to write instead)."""
    kept: list[str] = []
    for item, where in zip(items, items.item_where, strict=True):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{where}: {empty}")
            continue
        plain = _plain(item)
        if plain in seen:
            problems.append(f"{where}: this example is written twice (also at {seen[plain]}); keep one")
            continue
        seen[plain] = where
        kept.append(item.strip())
    return kept


def attach_examples(folder: Path, causes: Sequence[Cause]) -> tuple[list[Cause], list[str]]:
    """`causes` with their examples from `folder/examples/*.yaml`, and the problems found.

    No examples folder (or an empty one) means no classifier: the diagnosis then uses
    priors, answers and keywords only. With examples, every cause needs enough of them
    in every language any file uses.
    """
    from bot.spec.loader import MarkedList, MarkedMap, _display_name, read_yaml_file

    files = sorted((folder / EXAMPLES_DIR).glob("*.yaml"))
    if not files:
        return list(causes), []
    known = {cause.id for cause in causes}
    problems: list[str] = []
    examples: dict[str, dict[str, list[str]]] = {}
    heading: dict[str, dict[str, Where]] = {}  # where each cause's language list starts
    seen: dict[str, Where] = {}  # every example, to report one written twice
    for path in files:
        name = _display_name(path)
        doc, yaml_problems = read_yaml_file(path, name)
        problems.extend(yaml_problems)
        if not isinstance(doc, MarkedMap) or not isinstance(doc.get("cause"), str):
            problems.append(f"{name}:1:1: an examples file starts with 'cause: <cause id>' and then 'examples:'")
            continue
        for key in doc:
            if key not in ("cause", "examples"):
                problems.append(f"{doc.key_where[key]}: unknown key '{key}' in an examples file; use cause, examples")
        cause_id = doc["cause"]
        if cause_id not in known:
            problems.append(
                f"{doc.value_where['cause']}: unknown cause '{cause_id}'; the causes are: {', '.join(sorted(known))}"
            )
            continue
        if cause_id in examples:
            problems.append(
                f"{doc.value_where['cause']}: the examples of cause '{cause_id}' are in two files; keep one"
            )
            continue
        by_lang = doc.get("examples")
        if not isinstance(by_lang, MarkedMap):
            where = doc.value_where.get("examples", doc.where)
            problems.append(f"{where}: 'examples' must be a block of languages (zh:, en:), each a list of stories")
            continue
        examples[cause_id], heading[cause_id] = {}, {}
        for lang, items in by_lang.items():
            at = by_lang.value_where[lang]
            heading[cause_id][str(lang)] = by_lang.key_where[lang]
            if not isinstance(items, MarkedList):
                problems.append(f"{at}: the examples in '{lang}' must be a list of stories (lines starting with '- ')")
                continue
            examples[cause_id].setdefault(str(lang), []).extend(
                read_texts(items, seen, problems, "an empty example; write a story or remove the line")
            )
    problems.extend(_too_few(folder, examples, heading, [cause.id for cause in causes], _display_name))
    return [replace(c, examples={k: tuple(v) for k, v in examples.get(c.id, {}).items()}) for c in causes], problems


def _too_few(
    folder: Path,
    examples: dict[str, dict[str, list[str]]],
    heading: dict[str, dict[str, Where]],
    cause_ids: list[str],
    display: Any,
) -> list[str]:
    problems = []
    languages = sorted({lang for by_lang in examples.values() for lang in by_lang})
    for cause_id in cause_ids:
        if cause_id not in examples:
            missing = display(folder / EXAMPLES_DIR / f"{cause_id}.yaml")
            problems.append(
                f"{missing}:1:1: cause '{cause_id}' has no examples; the classifier needs every cause "
                f"(write this file with at least {MIN_EXAMPLES} stories per language)"
            )
            continue
        for lang in languages:
            count = len(examples[cause_id].get(lang, []))
            if count < MIN_EXAMPLES:
                where = heading[cause_id].get(lang) or Where(display(folder / EXAMPLES_DIR / f"{cause_id}.yaml"), 1, 1)
                problems.append(
                    f"{where}: cause '{cause_id}' has {count} example(s) in '{lang}'; "
                    f"the classifier needs at least {MIN_EXAMPLES}"
                )
    return problems
