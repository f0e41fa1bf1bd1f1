"""One error type for problems an operator must fix, each located as `file:line:column`.

Dialog folders (`bot.spec.loader.SpecError`) and configuration raise it alike, so the
commands print every problem the same way: one line each, all at once.
"""

from __future__ import annotations


class ProblemsError(Exception):
    """Something that cannot be used as written; `problems` are `file:line:column: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
