"""The `signpipe` command: one typer app with a sub-app per concern.

Each sub-app lives in its own module (`signpipe.cli.data`, ...) and is registered here. Commands
import heavy libraries (jax, tensorflow) inside their functions so `signpipe --help` stays fast.
A `SignpipeError` becomes a one-line red message and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from signpipe import __version__
from signpipe.errors import CorpusError, SignpipeError

app = typer.Typer(
    name="signpipe",
    help="Train sign-language recognizers from MediaPipe landmarks and ship them as TFLite.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
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
    from signpipe.cli import data, extract, predict

    app.add_typer(data.app, name="data")
    app.command("extract")(extract.extract)
    app.command("predict")(predict.predict)
    for name in ("landmarks", "images", "train", "signs"):
        try:
            module = __import__(f"signpipe.cli.{name}", fromlist=["app"])
        except ModuleNotFoundError as exc:  # a sub-app not built yet in this checkout
            if exc.name != f"signpipe.cli.{name}":
                raise
            continue
        app.add_typer(module.app, name=name)
    from signpipe.cli import align, train, train_more

    app.command("align")(align.align)
    train_more.add_commands(train.app)

    from signpipe.cli import export

    for command in (export.export, export.evaluate, export.gate):
        app.command(command.__name__)(command)

    from signpipe.cli import run

    run.register(app)


_register()


def report_error(exc: SignpipeError) -> None:
    """Print a user error: its first line, then each further problem on its own line."""
    if isinstance(exc, CorpusError) and len(exc.problems) > 1:
        err_console.print(f"[bold red]error:[/] {len(exc.problems)} problems found", highlight=False)
        for problem in exc.problems:
            err_console.print(f"  - {problem}", highlight=False, markup=False)
    else:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; usage errors are typer's own messages (status 2)."""
    try:
        app(args=argv, prog_name="signpipe")
    except SignpipeError as exc:
        report_error(exc)
        return 2
    except SystemExit as exc:  # typer in standalone mode always ends by exiting
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
