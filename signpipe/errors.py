"""The one exception type for problems a user can cause and fix.

The CLI turns a `SignpipeError` into a short message and a non-zero exit status, never a traceback,
so every message must say what was expected and where (file, column, sequence).
"""

from __future__ import annotations

from dataclasses import dataclass


class SignpipeError(Exception):
    """A user-fixable problem: bad path, wrong schema, unknown character, empty sequence..."""


@dataclass(frozen=True)
class Problem:
    """One finding of a check: where it is, and what was expected there."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class CorpusError(SignpipeError):
    """A corpus does not match its layout or schema; carries every problem found."""

    def __init__(self, problems: list[Problem] | Problem | str, where: str = ""):
        if isinstance(problems, str):
            problems = [Problem(where or "corpus", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        head = str(self.problems[0]) if self.problems else "corpus error"
        more = len(self.problems) - 1
        super().__init__(head + (f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""))


class ConfigError(SignpipeError):
    """A preset, override or option that does not make sense."""
