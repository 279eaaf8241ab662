"""The `signpipe` command: one typer app with a sub-app per concern.

Each sub-app lives in its own module (`signpipe.cli.data`, ...) and is registered here. Commands
import heavy libraries (jax, tensorflow) inside their functions so `signpipe --help` stays fast.
A `SignpipeError` (or an operating-system error: a read-only output folder, a full disk) becomes
a one-line message printed as plain text and exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.text import Text

from signpipe import __version__
from signpipe.cli.options import examples, reflow_commands
from signpipe.errors import CorpusError, SignpipeError

app = typer.Typer(
    name="signpipe",
    help="Train sign-language recognizers from MediaPipe landmarks and ship them as TFLite.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    epilog=examples("signpipe run fingerspelling --local --preset smoke", "signpipe runs list",
                    "signpipe predict --model bundle.zip corpus"),
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"signpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """signpipe: corpus -> features -> training -> TFLite, locally or on Vertex AI."""


def _register() -> None:
    from signpipe.cli import data, extract, predict, presets

    app.add_typer(data.app, name="data")
    app.command("extract", epilog=extract.EPILOG)(extract.extract)
    app.command("predict", epilog=predict.EPILOG)(predict.predict)
    app.command("presets", epilog=presets.EPILOG)(presets.presets)
    for name in ("landmarks", "images", "train", "signs"):
        try:
            module = __import__(f"signpipe.cli.{name}", fromlist=["app"])
        except ModuleNotFoundError as exc:  # a sub-app not built yet in this checkout
            if exc.name != f"signpipe.cli.{name}":
                raise
            continue
        app.add_typer(module.app, name=name)
    from signpipe.cli import align, train, train_more

    app.command("align", epilog=align.EPILOG)(align.align)
    train_more.add_commands(train.app)

    from signpipe.cli import export

    for command in (export.export, export.evaluate, export.gate):
        app.command(command.__name__, epilog=export.EPILOGS[command.__name__])(command)

    from signpipe.cli import run

    run.register(app)
    reflow_commands(app)


_register()


MAX_LISTED_PROBLEMS = 20
"""A corpus error lists at most this many problems; the rest are counted (`signpipe data validate`
lists them all)."""


def _error_line(message: object) -> Text:
    """`error: MESSAGE`, the message as plain text: a path or shape holding brackets (`[n_frames,
    1260]`, `c[red]orpus`, `[/x]`) is printed as it is, never read as markup."""
    return Text.assemble(("error: ", "bold red"), str(message))


def report_error(exc: BaseException) -> None:
    """Print a user error: its first line, then each further problem on its own line (at most
    `MAX_LISTED_PROBLEMS`), as plain text."""
    if isinstance(exc, CorpusError) and len(exc.problems) > 1:
        err_console.print(_error_line(f"{len(exc.problems)} problems found"), highlight=False, soft_wrap=True)
        for problem in exc.problems[:MAX_LISTED_PROBLEMS]:
            err_console.print(Text(f"  - {problem}"), highlight=False, soft_wrap=True)
        if len(exc.problems) > MAX_LISTED_PROBLEMS:
            err_console.print(Text(f"  ... and {len(exc.problems) - MAX_LISTED_PROBLEMS} more"), highlight=False, soft_wrap=True)
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(_error_line(f"{where}{exc.strerror or exc} (set {DEBUG_ENV}=1 for the traceback)"),
                          highlight=False, soft_wrap=True)
    else:
        err_console.print(_error_line(exc), highlight=False, soft_wrap=True)


DEBUG_ENV = "SIGNPIPE_DEBUG"
"""Set to 1 to see the traceback of an operating-system error instead of its one line."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status: a user error (`SignpipeError`; an operating-system
    error such as a read-only or full output folder) is one plain line and status 2; usage errors
    are typer's own messages (status 2)."""
    try:
        app(args=argv, prog_name="signpipe")
    except SignpipeError as exc:
        report_error(exc)
        return 2
    except OSError as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        report_error(exc)
        return 2
    except SystemExit as exc:  # typer in standalone mode always ends by exiting
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
