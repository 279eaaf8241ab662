"""Errors as a user sees them: one plain line (or a short list), exit status 2, no traceback.

User text in a message (a path, a shape such as `[n_frames, 1260]`) is printed as it is: the
error printer reads no markup, so brackets neither vanish nor crash it. A failed local run's final
message repeats the failing task's error; a corpus of the other task is refused before anything
runs (locally) or at validation (in the pipeline).
"""

from __future__ import annotations

import pytest
from kfp.dsl import Dataset, Markdown, Metrics
from rich.console import Console

from signpipe.cli import main, report_error
from signpipe.errors import CorpusError, Problem, SignpipeError


def run(capsys, *args: str) -> tuple[int, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return status, output


@pytest.mark.parametrize("message", [
    "features of shape [n_frames, 1260] expected, found [12, 3]",
    "c[red]orpus/train.csv: no such file",
    "a path with [/x] inside, and [bold]this[/bold]",
    "[link=file:///etc]x[/link] \\[escaped] [[double]]",
])
def test_messages_are_printed_as_plain_text(message, capsys):
    report_error(SignpipeError(message))
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_a_corpus_error_lists_its_problems_and_counts_the_rest(capsys):
    problems = [Problem(f"train_landmark_files/[{i}].parquet", "expected [x, y, z] columns") for i in range(25)]
    report_error(CorpusError(problems))
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "error: 25 problems found"
    assert lines[1] == "  - train_landmark_files/[0].parquet: expected [x, y, z] columns"
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  ... and 5 more"


def test_a_path_with_brackets_reaches_the_user_whole(tmp_path, capsys):
    for name in ("c[red]orpus", "x[/x]y", "[bold]"):
        status, output = run(capsys, "data", "validate", tmp_path / name)  # 1: the corpus is not valid
        assert status == 1 and f"{tmp_path / name}: expected a corpus directory" in output, output
        status, output = run(capsys, "gate", "--model", tmp_path / name / "model.zip", "--data", tmp_path / name)
        assert status == 2 and str(tmp_path / name) in output and output.count("\n") == 1, output


def test_an_operating_system_error_is_one_line_with_status_2(tmp_path, capsys, monkeypatch):
    import signpipe.cli as cli

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "read-only[1]" / "out"))

    monkeypatch.setattr(cli, "app", refuse)
    status, output = run(capsys, "anything")
    assert status == 2
    assert output.strip() == (f"error: {tmp_path / 'read-only[1]' / 'out'}: Permission denied "
                              "(set SIGNPIPE_DEBUG=1 for the traceback)")
    monkeypatch.setenv("SIGNPIPE_DEBUG", "1")
    with pytest.raises(PermissionError):
        main(["anything"])


# --- the pipelines and the other task's corpus -------------------------------------------------


def test_a_local_run_refuses_a_corpus_of_the_other_task_before_anything_runs(signs_sample, tmp_path, capsys):
    status, output = run(capsys, "run", "fingerspelling", "--local", "--data", signs_sample, "--runs-dir", tmp_path / "runs")
    assert status == 2 and "has the isolated-signs columns, but the fingerspelling pipeline" in output
    assert not (tmp_path / "runs").exists()


def test_the_validate_step_stops_a_pipeline_given_the_other_task(signs_sample, tmp_path):
    from components.validate import validate

    def step(kind: str) -> int:
        folder = tmp_path / kind
        folder.mkdir()
        return validate.python_func(corpus=Dataset(name="c", uri=str(signs_sample)),
                                    summary=Metrics(name="s", uri=str(folder / "s")),
                                    report=Markdown(name="r", uri=str(folder / "r")), expected_kind=kind)

    assert step("isolated-signs") > 0
    with pytest.raises(CorpusError, match="expected a corpus of the fingerspelling task for this pipeline, found one of "
                                          "the isolated-signs task"):
        step("fingerspelling")


def test_a_failed_run_names_the_failing_tasks_error(tmp_path):
    from pipelines.local import task_error

    log = tmp_path / "pipeline.log"
    log.write_text("\n".join([
        "\x1b[96mtask plan-folds\x1b[0m started",
        "    Traceback (most recent call last):",
        '      File "x.py", line 3, in <module>',
        "    ValueError: an earlier, handled error",
        "    Traceback (most recent call last):",
        "    signpipe.errors.SignpipeError: /data/corpus: a fingerspelling corpus; expected [isolated-signs]",
        "Task 'plan-folds' finished with status FAILURE",
    ]))
    assert task_error(log) == "SignpipeError: /data/corpus: a fingerspelling corpus; expected [isolated-signs]"
    log.write_text("nothing went wrong here\n")
    assert task_error(log) is None
    assert task_error(tmp_path / "missing.log") is None


def test_the_run_summary_prints_paths_as_they_are(tmp_path):
    from pipelines.local import LocalRun, print_summary

    console = Console(record=True, width=200, force_terminal=False)
    run_dir = tmp_path / "runs[1]" / "[bold]x"
    print_summary(console, LocalRun(run_dir=run_dir, pipeline="fingerspelling", preset="local", succeeded=False,
                                    seconds=1.0, summary={"bundle": "/b/[red]model.zip"}, failed_task="finetune"))
    printed = console.export_text()
    assert "/b/[red]model.zip" in printed and str(run_dir) in printed.replace("\n", "")


def test_each_pipeline_is_named_after_the_corpus_kind_it_trains_on():
    from pipelines.compile import PIPELINES
    from signpipe.data.corpus import KINDS

    assert set(PIPELINES) == set(KINDS)  # check_corpus_kind compares a corpus' kind with the pipeline's name
