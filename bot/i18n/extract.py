"""A Babel extractor for dialog YAML, registered as `dialog_yaml` under `babel.extractors`.

`pybabel extract -F babel.cfg` then finds every text operators wrote in `dialogs/`,
with its line, exactly as the loader reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from bot.spec.loader import texts_in


def extract_dialog_yaml(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Yield `(line, funcname, message, comments)` for each translatable text."""
    encoding = str(options.get("encoding", "utf-8"))
    source = fileobj.read().decode(encoding)
    name = str(getattr(fileobj, "name", "dialog.yaml"))
    for text, where in texts_in(source, name):
        comments = ["python-brace-format"] if "{" in text else []
        yield where.line, "_", text, comments
