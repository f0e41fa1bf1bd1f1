"""Examples for the crisis classifier (`dialogs/crisis/examples.yaml`).

```yaml
crisis:
  zh: ["我怕我会做傻事", ...]
  en: ["I keep picturing my funeral", ...]
not_crisis:
  zh: ["压力好大", ...]
  en: ["this debt is killing me", ...]
```

Optional: without the file the crisis words of settings.yaml work alone. With it, each
list needs enough examples to learn from; every problem is reported as
`file:line:column`, like the rest of the dialogs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Final

from bot.spec.model import Crisis, Where

CRISIS_EXAMPLES: Final = Path("crisis") / "examples.yaml"  # inside the dialogs folder
KINDS: Final = ("crisis", "not_crisis")
# Fewer than this per kind and language and the classifier learns noise; the bundled
# file has 150+ crisis and 300+ ordinary examples per language.
MIN_EXAMPLES: Final = 30
NOT_A_TEXT: Final = 'not a text; write it in quotes ("yes", "1500") or remove the line'


def attach_crisis_examples(folder: Path, crisis: Crisis) -> tuple[Crisis, list[str]]:
    """`crisis` with the examples of `folder/crisis/examples.yaml`, and the problems found."""
    from bot.spec.examples import read_texts
    from bot.spec.loader import MarkedList, MarkedMap, _display_name, read_yaml_file

    path = folder / CRISIS_EXAMPLES
    if not path.is_file():
        return crisis, []
    name = _display_name(path)
    doc, problems = read_yaml_file(path, name)
    if doc is None:
        return crisis, problems
    if not isinstance(doc, MarkedMap):
        return crisis, [*problems, f"{name}:1:1: expected 'crisis:' and 'not_crisis:', each a block of languages"]
    examples: dict[str, dict[str, tuple[str, ...]]] = {}
    seen: dict[str, Where] = {}  # every example, to report one written twice or in both kinds
    for key in doc:
        if key not in KINDS:
            problems.append(f"{doc.key_where[key]}: unknown key '{key}'; use crisis, not_crisis")
    for kind in KINDS:
        by_lang = doc.get(kind)
        if not isinstance(by_lang, MarkedMap):
            where = doc.value_where.get(kind, Where(name, 1, 1))
            problems.append(f"{where}: '{kind}' must be a block of languages (zh:, en:), each a list of texts")
            continue
        examples[kind] = {}
        for lang, items in by_lang.items():
            at = by_lang.value_where[lang]
            if not isinstance(items, MarkedList):
                problems.append(f"{at}: '{kind}' in '{lang}' must be a list of texts (lines starting with '- ')")
                continue
            # yes/no/numbers unquoted become booleans and numbers in YAML.
            kept = read_texts(items, seen, problems, NOT_A_TEXT)
            if len(kept) < MIN_EXAMPLES:
                problems.append(
                    f"{by_lang.key_where[lang]}: '{kind}' has {len(kept)} example(s) in '{lang}'; "
                    f"the classifier needs at least {MIN_EXAMPLES}"
                )
            examples[kind][str(lang)] = tuple(kept)
    return replace(crisis, examples=examples), problems
