"""Every command of `signpipe`, walked: one meaning per option name, old spellings refused with
the new one named, and a working example in every `--help`."""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from signpipe.cli import app, main

#: option -> (meaning, what its help must say to mean that); an option in this table means the same
#: in every command that has it
MEANINGS = {
    "--model": ("a TFLite bundle zip", re.compile(r"bundle", re.I)),
    "--workdir": ("a training folder", re.compile(r"workdir|training folder|run root|run directory|fold run", re.I)),
    "--data": ("a corpus in the Kaggle layout", re.compile(r"corpus", re.I)),
    "--shards": ("feature shards", re.compile(r"feature-shard|feature shard", re.I)),
    "--json-out": ("a JSON file written", re.compile(r"JSON", re.I)),
    "--name": ("a run's name", re.compile(r"name", re.I)),
    "--which": ("which checkpoint", re.compile(r"best|last", re.I)),
    "--preset": ("a named preset", re.compile(r"preset", re.I)),
}
#: switches (flags) wherever they appear
SWITCHES = ("--json", "--dry-run", "--local", "--show-config", "--overwrite")
#: spellings that changed: (command path, old, new)
RENAMED = [
    (("align",), "--model", "--workdir"),
    (("align",), "--data", "--shards"),
    (("align",), "--checkpoint", "--which"),
    (("export",), "--checkpoint", "--workdir"),
    (("gate",), "--json", "--json-out"),
    (("landmarks", "preprocess"), "--shards", "--shard-count"),
    (("train", "finetune"), "--data", "--shards"),
    (("train", "pretrain"), "--data", "--shards"),
    (("train", "noisy-student"), "--data", "--shards"),
    (("train", "distill"), "--data", "--shards"),
    (("submit",), "--display-name", "--name"),
    (("schedule", "create"), "--display-name", "--name"),
    *[(("images", command), old, new) for command in ("build", "cloudbuild", "list")
      for old, new in (("--registry", "--image-registry"), ("--tag", "--image-tag"))],
]
#: spellings no command shows any more
RETIRED = ("--checkpoint", "--display-name", "--registry", "--tag")


def is_group(command) -> bool:
    """A group (typer builds its commands on its own copy of click: compared by what they have)."""
    return hasattr(command, "commands")


def walk(command, path: tuple[str, ...] = ()):
    """(path, command) of the root, every group and every command, depth first."""
    yield path, command
    if is_group(command):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = list(walk(ROOT))
LEAVES = [(path, command) for path, command in COMMANDS if not is_group(command)]


def options(command, hidden: bool = False):
    for param in command.params:
        if param.param_type_name == "option" and bool(param.hidden) == hidden:
            for name in param.opts:
                if name.startswith("--"):
                    yield name, param


def test_the_walk_reaches_every_command() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    for expected in ("align", "export", "gate", "predict", "presets", "train finetune", "train distill",
                     "train presets", "landmarks preprocess", "runs list", "runs show", "schedule create", "signs export",
                     "data synth", "images build"):
        assert expected in paths


def test_an_option_means_the_same_in_every_command() -> None:
    seen: dict[str, list[str]] = {}
    for path, command in LEAVES:
        for name, param in options(command):
            seen.setdefault(name, []).append(" ".join(path))
            if name in MEANINGS:
                meaning, says = MEANINGS[name]
                assert says.search(param.help or ""), f"{' '.join(path)} {name}: expected {meaning}, help: {param.help!r}"
            if name in SWITCHES:
                assert param.is_flag, f"{' '.join(path)} {name} should be a switch"
            assert name not in RETIRED, f"{' '.join(path)} still shows {name}"
    # the renamed options are used where they now belong
    assert {"align", "export", "train finetune", "signs train"} - set(seen["--workdir"]) == set()
    assert {"align", "train finetune", "train pretrain", "train noisy-student", "train distill"} <= set(seen["--shards"])
    assert {"evaluate", "gate", "predict"} <= set(seen["--model"])
    assert {"run", "submit", "schedule create"} <= set(seen["--name"])
    assert seen["--json-out"] == ["gate"] and "--shard-count" in dict(options(dict(LEAVES)[("landmarks", "preprocess")]))


def test_every_hidden_option_is_a_refused_old_spelling() -> None:
    hidden = {(path, name) for path, command in LEAVES for name, _ in options(command, hidden=True)}
    assert hidden == {(path, old) for path, old, _ in RENAMED}


@pytest.mark.parametrize(("path", "old", "new"), RENAMED, ids=[f"{' '.join(p)} {o}" for p, o, _ in RENAMED])
def test_an_old_spelling_is_refused_naming_the_new_one(path, old, new, capsys) -> None:
    status = main([*path, old, "x"])
    err = capsys.readouterr().err
    assert status == 2
    line = " ".join(err.split())
    assert line.startswith(f"error: {' '.join(path)} {old} is now {new} ("), err
    assert "Traceback" not in err and "Usage" not in err


def test_the_message_says_what_each_spelling_means(capsys) -> None:
    assert main(["align", "--model", "runs/ft", "--shards", "s", "--out", "o"]) == 2
    assert " ".join(capsys.readouterr().err.split()) == ("error: align --model is now --workdir (a training folder; "
                                                         "--model always means a TFLite bundle)")
    assert main(["gate", "--json", "gate.json"]) == 2
    assert " ".join(capsys.readouterr().err.split()) == ("error: gate --json is now --json-out (a JSON file written; "
                                                         "--json always means a switch: print JSON)")


def test_the_schedule_shorthand_refuses_the_old_spelling_too(capsys) -> None:
    assert main(["schedule", "fingerspelling", "--cron", "0 3 * * 1", "--display-name", "x"]) == 2
    assert "schedule create --display-name is now --name" in " ".join(capsys.readouterr().err.split())


# --- examples -------------------------------------------------------------------------------------


def epilog_lines(command) -> list[str]:
    """The epilog as it should be shown: its lines, markup escapes undone."""
    return [line.replace("\\[", "[") for line in (command.epilog or "").splitlines()]


def example_lines(command) -> list[str]:
    """Each example as one command line (shell continuation lines joined)."""
    joined: list[str] = []
    for line in epilog_lines(command)[1:]:
        if joined and joined[-1].endswith(" \\"):
            joined[-1] = joined[-1][:-2] + " " + line.strip()
        else:
            joined.append(line.strip())
    return [line for line in joined if line.startswith("signpipe ")]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "signpipe" for p, _ in COMMANDS])
def test_every_help_shows_an_example(path, command, capsys) -> None:
    examples = example_lines(command)
    assert examples, f"{' '.join(path) or 'signpipe'}: no example in its epilog"
    assert main([*path, "--help"]) == 0
    shown = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert any(line.startswith("signpipe ") for line in shown)
    # every line of the examples is printed as written: no markup eaten, nothing rewrapped by rich
    assert epilog_lines(command)[0] in ("Example:", "Examples:")
    for line in epilog_lines(command):
        assert len(line) <= 76 and line.strip() in shown, (line, shown[-8:])
    if path and not is_group(command):
        assert any(e.startswith(f"signpipe {' '.join(path)} ") or e == f"signpipe {' '.join(path)}" for e in examples)


def resolve(args: list[str]):
    """The command an argument list reaches, the arguments left for it, and its name."""
    command = ROOT
    name = "signpipe"
    while is_group(command):
        if args and args[0] in command.commands:
            name, command, args = args[0], command.commands[args[0]], args[1:]
        elif args and not args[0].startswith("-") and "create" in command.commands:  # schedule PIPELINE ...
            name, command = "create", command.commands["create"]
        else:
            break
    return command, args, name


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_example_parses(path, command) -> None:
    """Each example names options its command has, with values of the right type, and every
    required one: what click checks before a command runs."""
    for example in example_lines(command):
        reached, args, name = resolve(shlex.split(example)[1:])
        assert reached is command, example
        context = reached.make_context(name, list(args))
        assert context.params is not None
