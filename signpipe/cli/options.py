"""What an option name means, the same in every command, and the spellings that changed.

One meaning per option across `signpipe`:

- `--model`: a TFLite bundle zip (what `signpipe export` writes);
- `--workdir`: a training folder (config, checkpoints, logs);
- `--data`: a corpus in the Kaggle layout (train.csv and parquet files);
- `--shards`: feature shards (what `signpipe landmarks preprocess` writes);
- `--json`: a switch, print JSON; `--json-out`: a JSON file to write;
- `--name`: a run's name.

An option whose spelling changed keeps its old spelling as a hidden option (`renamed`) that refuses
it: `error: align --model is now --workdir (...)` and exit status 2, so a script written for the
old spelling fails at once with what to type instead, rather than passing a folder where a bundle
was meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

MEANINGS: dict[str, str] = {
    "--model": "a TFLite bundle",
    "--workdir": "a training folder",
    "--data": "a corpus in the Kaggle layout",
    "--shards": "feature shards, what `signpipe landmarks preprocess` writes",
    "--json": "a switch: print JSON",
    "--json-out": "a JSON file written",
    "--name": "a run's name",
}
"""The options whose meaning is fixed across commands, with that meaning (used in the messages)."""


@dataclass(frozen=True)
class Renamed:
    """An old spelling refused in favour of `new`; `why` says what `new` is and, where it helps,
    what the old spelling means elsewhere."""

    old: str
    new: str
    why: str

    def message(self, command: str) -> str:
        return f"{command} {self.old} is now {self.new} ({self.why})"


def _command_name(ctx: Any) -> str:
    """`align`, `train finetune`: the command path without the program's name."""
    parts = ctx.command_path.split()
    return " ".join(parts[1:]) or (ctx.info_name or "")


def renamed(old: str, new: str, why: str | None = None) -> Any:
    """A hidden option accepting the old spelling `old` (with a value, as it had) only to refuse
    it with one line naming `new`, exit status 2. Put it last in a command's signature:

        def align(workdir: Path = typer.Option(..., "--workdir"), ...,
                  _old_model: str | None = renamed("--model", "--workdir")) -> None:
    """
    if why is None:
        why = MEANINGS[new]
        if old in MEANINGS:
            why += f"; {old} always means {MEANINGS[old]}"
    rename = Renamed(old, new, why)

    def refuse(ctx: Any, param: Any, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        Console(stderr=True).print(Text.assemble(("error: ", "bold red"), rename.message(_command_name(ctx))),
                                   highlight=False, soft_wrap=True)
        raise typer.Exit(2)

    return typer.Option(None, old, hidden=True, callback=refuse, show_default=False)


EXAMPLE_WIDTH = 76
"""Longest example line: a help screen of 80 columns (less its margins) shows it unwrapped."""


def _shell_lines(example: str, width: int = EXAMPLE_WIDTH) -> list[str]:
    """A long example broken between words into shell continuation lines (` \\`, then 4 spaces),
    so that rich never wraps it and it still pastes into a shell as one command. A quoted word
    (`"0 3 * * 1"`) stays whole."""
    import shlex

    lexer = shlex.shlex(example, posix=False, punctuation_chars=False)
    lexer.whitespace_split = True
    words: list[str] = []
    for word in lexer:  # an option and its value stay on one line
        if words and words[-1].startswith("--") and " " not in words[-1] and not word.startswith("-"):
            words[-1] += f" {word}"
        else:
            words.append(word)
    lines, current = [], ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) > width - 2:
            lines.append(current + " \\")
            current = "    " + word
        else:
            current = candidate
    lines.append(current)
    return lines


def examples(*lines: str) -> str:
    """A command's `epilog`: `Example:` (or `Examples:`) and one real invocation each, starting
    with `signpipe `, kept as typed: no rich markup read in them, and a long one broken into shell
    continuation lines rather than left for rich to wrap."""
    shown = []
    for line in lines:
        if not line.startswith("signpipe "):
            raise ValueError(f"an example starts with 'signpipe ': {line!r}")
        # `[` escaped so rich reads no markup (rich's own `escape` would double a trailing backslash)
        shown += [part.replace("[", "\\[") for part in _shell_lines(line)]
    return "\n".join(["Example:" if len(lines) == 1 else "Examples:", *shown])


def reflow_help(text: str) -> str:
    """A docstring as help: each paragraph after the first joined into one line, for rich to wrap
    at the terminal's width (typer keeps the docstring's own line breaks, which then break lines
    halfway across the screen). Paragraphs that are laid out on purpose are kept: a `\\b` block,
    an indented block, a list."""
    import inspect

    paragraphs = inspect.cleandoc(text).split("\n\n")
    kept = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        laid_out = paragraph.startswith("\b") or any(
            line[:1].isspace() or line.lstrip()[:2] in ("- ", "* ") for line in lines)
        kept.append(paragraph if laid_out else " ".join(line.strip() for line in lines))
    return "\n\n".join(kept)


def reflow_commands(app: typer.Typer) -> None:
    """`reflow_help` on the help of every command of `app` and its sub-apps (their docstrings)."""
    for info in app.registered_commands:
        text = info.help or (info.callback.__doc__ if info.callback else None)
        if text:
            info.help = reflow_help(text)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_commands(group.typer_instance)
