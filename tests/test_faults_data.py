"""Faults and bad input on the data side (issue 17), through the CLI as users call it.

Each test damages a small corpus (or points a command somewhere it must not write), runs the
command, and checks what it says and what is left on disk: the input corpus byte for byte, no
temporary folder or lock file, a previous output untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signpipe.cli import main
from signpipe.data import signs
from signpipe.data.atomic import output_lock
from signpipe.data.corpus import open_corpus
from signpipe.data.holdout import split_by_participant
from signpipe.data.schema import RIGHT_HAND
from signpipe.data.validate import validate_corpus
from signpipe.errors import SignpipeError
from signpipe.fingerspelling.preprocess import preprocess
from signpipe.fingerspelling.shards import load_split, read_manifest


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (links not followed) with its content hash: equal snapshots mean
    nothing was added, removed or changed."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = "-> " + os.readlink(path)
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha1(path.read_bytes()).hexdigest()
        else:
            found[str(path.relative_to(root)) + "/"] = "dir"
    return found


def leftovers(folder: Path) -> list[str]:
    """Temporary folders, backups and lock files a writer leaves beside its output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and
                  p.name.endswith((".tmp", ".old", ".lock", ".partial")))


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return status, captured.out, captured.err


def set_wide_values(path: Path, sequence_id: int, frames: slice, column: str, value: float) -> list[int]:
    """Set `column` of some frames of one sequence in a wide file; returns their frame numbers."""
    table = pq.read_table(path)
    ids = table.column("sequence_id").to_numpy()
    rows = np.flatnonzero(ids == sequence_id)[frames]
    values = table.column(column).to_numpy().copy()
    values[rows] = value
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float32()))
    pq.write_table(table, path)
    return table.column("frame").to_numpy()[rows].tolist()


def first_wide_sequence(corpus) -> tuple[Path, int]:
    sequence_id = min(i for i, part in corpus.parts.items() if part == "train")
    return corpus.files[sequence_id], sequence_id


# --- 1. non-finite values -----------------------------------------------------------------------


def test_validate_names_file_sequence_and_frame_of_infinite_values(fingerspelling_corpus, capsys):
    path, sequence_id = first_wide_sequence(fingerspelling_corpus)
    frame_numbers = set_wide_values(path, sequence_id, slice(1, 3), "y_pose_12", np.inf)
    status, out, err = cli(capsys, "data", "validate", fingerspelling_corpus.root)
    assert status == 1
    assert f"{path}: expected finite landmark coordinates, found infinite values in 2 frames of 1 sequence" in out
    assert f"sequence_id {sequence_id} frame {frame_numbers[0]} (inf in y of pose 12)" in out
    assert "ok: no problems" not in out


def test_validate_partly_nan_part_is_a_problem_a_wholly_missing_hand_is_not(signs_corpus):
    sequence_id = next(iter(signs_corpus.frames))
    frames = signs_corpus.frames[sequence_id].copy()
    path = signs_corpus.files[sequence_id]
    frames[0, list(RIGHT_HAND)] = np.nan  # not detected: allowed
    signs.write_landmark_file(path, frames, first_frame=signs_corpus.first_frames[sequence_id])
    assert validate_corpus(signs_corpus.root).ok
    frames[1, 500:505, 0] = np.nan  # five x of the pose: damaged
    signs.write_landmark_file(path, frames, first_frame=signs_corpus.first_frames[sequence_id])
    report = validate_corpus(signs_corpus.root)
    (problem,) = report.problems
    assert problem.where == str(path)
    assert f"sequence_id {sequence_id} frame {signs_corpus.first_frames[sequence_id] + 1} (pose: 5 of its 99" in problem.message


def test_preprocess_refuses_infinite_values_and_leaves_nothing(fingerspelling_corpus, tmp_path, capsys):
    path, sequence_id = first_wide_sequence(fingerspelling_corpus)
    set_wide_values(path, sequence_id, slice(0, 1), "x_right_hand_3", -np.inf)
    before = snapshot(fingerspelling_corpus.root)
    out = tmp_path / "shards"
    status, _, err = cli(capsys, "landmarks", "preprocess", fingerspelling_corpus.root, "--out", out, "--y-scale", "1")
    assert status == 2
    assert f"{path}: expected finite landmark coordinates" in err and f"sequence_id {sequence_id} frame 0" in err
    assert "--drop-nonfinite" in err
    assert not out.exists() and leftovers(tmp_path) == []
    assert snapshot(fingerspelling_corpus.root) == before


def test_preprocess_drop_nonfinite_leaves_out_and_counts_the_frames(fingerspelling_corpus, tmp_path, capsys):
    path, sequence_id = first_wide_sequence(fingerspelling_corpus)
    n_frames = len(fingerspelling_corpus.frames[sequence_id])
    set_wide_values(path, sequence_id, slice(0, 2), "z_left_hand_0", np.inf)
    other = sorted(i for i, f in fingerspelling_corpus.files.items() if f == path and i != sequence_id)[0]
    set_wide_values(path, other, slice(None), "x_face_0", np.inf)  # every frame: the sequence goes
    out = tmp_path / "shards"
    status, printed, err = cli(capsys, "landmarks", "preprocess", fingerspelling_corpus.root, "--out", out,
                               "--y-scale", "1", "--validation-fraction", "0", "--drop-nonfinite")
    assert status == 0
    counts = json.loads(printed)["nonfinite"]
    n_other = len(fingerspelling_corpus.frames[other])
    assert counts == {"policy": "drop", "frames_dropped": 2 + n_other, "sequences_trimmed": 1, "sequences_dropped": 1}
    assert f"left out {2 + n_other} frames with non-finite values from 2 sequences" in err
    manifest = read_manifest(out)
    assert manifest["nonfinite"]["sequence_ids_dropped"] == [other]
    assert manifest["splits"]["train"]["nonfinite"]["frames_dropped"] == 2 + n_other
    shards = {s.sequence_id: s for s in load_split(out, "train")}
    assert other not in shards and len(shards[sequence_id].frames) == n_frames - 2
    assert all(not np.isinf(s.frames).any() for s in shards.values())


# --- 2. preprocess must never delete or mix up data ---------------------------------------------


@pytest.mark.parametrize("where", ["the-corpus", "inside", "parent", "symlink-to-corpus"])
def test_preprocess_refuses_an_output_overlapping_the_corpus(fingerspelling_corpus, tmp_path, capsys, where):
    corpus = fingerspelling_corpus.root
    out = {"the-corpus": corpus, "inside": corpus / "shards", "parent": corpus.parent,
           "symlink-to-corpus": tmp_path / "link"}[where]
    if where == "symlink-to-corpus":
        out.symlink_to(corpus, target_is_directory=True)
    before, around = snapshot(corpus), sorted(p.name for p in tmp_path.iterdir())
    status, _, err = cli(capsys, "landmarks", "preprocess", corpus, "--out", out, "--y-scale", "1", "--overwrite")
    assert status == 2
    assert "expected an output folder apart from the input" in err
    assert snapshot(corpus) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == around and leftovers(corpus) == []


def test_second_writer_of_one_output_is_refused_while_the_first_runs(fingerspelling_corpus, tmp_path, capsys):
    out = tmp_path / "shards"
    with output_lock(out):  # another run holds the output (its flock)
        status, _, err = cli(capsys, "landmarks", "preprocess", fingerspelling_corpus.root, "--out", out, "--y-scale", "1")
    assert status == 2 and "found one writing it now" in err
    assert not out.exists() and leftovers(tmp_path) == []
    # once it is done, the output is a normal one, and each run builds in a folder of its own
    assert cli(capsys, "landmarks", "preprocess", fingerspelling_corpus.root, "--out", out, "--y-scale", "1")[0] == 0
    assert leftovers(tmp_path) == []


def test_two_runs_build_in_their_own_temporary_folders(fingerspelling_corpus, tmp_path, monkeypatch):
    from signpipe.fingerspelling import preprocess as module

    seen = []
    original = module.write_planned_shard

    def spy(plan, index, out_dir):
        seen.append(Path(out_dir))
        return original(plan, index, out_dir)

    monkeypatch.setattr(module, "write_planned_shard", spy)
    preprocess(fingerspelling_corpus.root, tmp_path / "a", y_scale=1.0)
    preprocess(fingerspelling_corpus.root, tmp_path / "a", y_scale=1.0, overwrite=True)
    first, second = sorted(set(seen), key=seen.index)
    assert first != second and first.parent == second.parent == tmp_path.resolve()
    assert first.name.startswith(".a.") and first.name.endswith(".tmp")


def test_failed_overwrite_keeps_the_previous_output(fingerspelling_corpus, tmp_path, capsys):
    out = tmp_path / "shards"
    preprocess(fingerspelling_corpus.root, out, y_scale=1.0)
    previous = snapshot(out)
    path, sequence_id = first_wide_sequence(fingerspelling_corpus)
    set_wide_values(path, sequence_id, slice(0, 1), "x_pose_11", np.inf)
    status, _, _ = cli(capsys, "landmarks", "preprocess", fingerspelling_corpus.root, "--out", out, "--y-scale", "2",
                       "--overwrite")
    assert status == 2
    assert snapshot(out) == previous and leftovers(tmp_path) == []


def test_holdout_refuses_to_write_inside_its_source(signs_sample_copy):
    before = snapshot(signs_sample_copy)
    with pytest.raises(SignpipeError, match="apart from the input"):
        split_by_participant(signs_sample_copy, signs_sample_copy / "train", signs_sample_copy.parent / "held")
    assert snapshot(signs_sample_copy) == before
    assert not (signs_sample_copy.parent / "held").exists()


# --- 3. frame order, empty and degenerate corpora, odd paths -----------------------------------


def test_signs_rows_out_of_frame_order_are_read_in_order_and_warned(signs_corpus, capsys):
    sequence_id = max(signs_corpus.frames, key=lambda i: len(signs_corpus.frames[i]))
    path, frames = signs_corpus.files[sequence_id], signs_corpus.frames[sequence_id]
    table = pq.read_table(path)
    blocks = np.arange(table.num_rows).reshape(len(frames), -1)[::-1].reshape(-1)  # frames last to first
    pq.write_table(table.take(pa.array(blocks)), path)
    sequence = open_corpus(signs_corpus.root).read_sequence(sequence_id)
    np.testing.assert_array_equal(sequence.frames, frames)
    assert sequence.extra["first_frame"] == signs_corpus.first_frames[sequence_id]
    status, out, _ = cli(capsys, "data", "validate", signs_corpus.root)
    assert status == 0 and "ok: no problems found" in out
    assert f"found them out of order in sequence_id {sequence_id}" in out


def test_repeated_frame_numbers_are_a_warning(fingerspelling_corpus):
    path, sequence_id = first_wide_sequence(fingerspelling_corpus)
    table = pq.read_table(path)
    frame = table.column("frame").to_numpy().copy()
    rows = np.flatnonzero(table.column("sequence_id").to_numpy() == sequence_id)
    frame[rows[1]] = frame[rows[0]]
    pq.write_table(table.set_column(1, "frame", pa.array(frame, pa.int16())), path)
    report = validate_corpus(fingerspelling_corpus.root)
    assert report.ok
    assert any(w.where == str(path) and f"repeated frame numbers in sequence_id {sequence_id} (frame 0)" in w.message
               for w in report.warnings), report.warnings


def test_a_sequence_with_x_and_y_all_zero_is_a_problem(signs_corpus):
    sequence_id = next(iter(signs_corpus.frames))
    frames = np.zeros_like(signs_corpus.frames[sequence_id])
    signs.write_landmark_file(signs_corpus.files[sequence_id], frames)
    (problem,) = validate_corpus(signs_corpus.root).problems
    assert problem.where == str(signs_corpus.files[sequence_id])
    assert f"found x and y all zero in every frame of sequence_id {sequence_id}" in problem.message


@pytest.mark.parametrize("layout", ["fingerspelling", "signs"])
def test_a_corpus_without_sequences_is_not_ok(layout, fingerspelling_corpus, signs_corpus, capsys):
    corpus = fingerspelling_corpus if layout == "fingerspelling" else signs_corpus
    csv = corpus.root / "train.csv"
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    if layout == "fingerspelling":
        (corpus.root / "supplemental_metadata.csv").unlink()
    status, out, _ = cli(capsys, "data", "validate", corpus.root)
    assert status == 1 and "ok: no problems" not in out
    assert f"{csv}: expected at least one sequence, found a header and no rows" in out


def test_a_directory_or_a_symlink_loop_where_a_parquet_file_belongs(fingerspelling_corpus, signs_corpus):
    wide = fingerspelling_corpus.root / "supplemental_landmarks" / "2000.parquet"
    wide.unlink()
    wide.mkdir()
    problems = [str(p) for p in validate_corpus(fingerspelling_corpus.root).problems]
    assert f"{wide}: expected the parquet file of 2 sequences in supplemental_metadata.csv, found a directory" in problems
    long = next(iter(signs_corpus.files.values()))
    long.unlink()
    long.symlink_to(long.name)  # a link to itself
    problems = [str(p) for p in validate_corpus(signs_corpus.root).problems]
    assert f"{long}: expected a parquet file, found a symbolic link loop" in problems


# --- 4. unwritable outputs ----------------------------------------------------------------------


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only one where permissions bind
    this user (not root), else a system folder that refuses even root."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (Path("/sys/fs"), Path("/proc/sys")):
        probe = candidate / ".signpipe-probe"
        try:
            probe.mkdir()
        except OSError:
            return candidate
        probe.rmdir()
    pytest.skip("no folder this root process cannot write in")


@pytest.mark.parametrize("command", ["preprocess", "synth"])
def test_unwritable_output_is_one_clear_line_before_any_work(fingerspelling_corpus, tmp_path, capsys, monkeypatch,
                                                             command):
    import signpipe.fingerspelling.preprocess as module

    folder = unwritable_folder(tmp_path)
    monkeypatch.setattr(module, "plan_shards", lambda *a, **k: pytest.fail("read the corpus before checking the output"))
    out = folder / "out"
    if command == "preprocess":
        args = ["landmarks", "preprocess", fingerspelling_corpus.root, "--out", out, "--y-scale", "1"]
    else:
        args = ["data", "synth", "fingerspelling", "--out", out, "--sequences", "2"]
    status, _, err = cli(capsys, *args)
    assert status == 2
    assert err.startswith("error: ") and err.count("error") == 1 and "not writable" in " ".join(err.split())
    assert not out.exists()


def test_synth_refuses_an_occupied_output_and_a_file_leaving_them_as_they_were(tmp_path, capsys):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine too")
    for out, words in ((occupied, "exists and is not empty"), (a_file, "found a file there")):
        status, _, err = cli(capsys, "data", "synth", "fingerspelling", "--out", out, "--sequences", "2")
        assert status == 2 and words in err
    assert (occupied / "keep.txt").read_text() == "mine" and a_file.read_text() == "mine too"
    assert leftovers(tmp_path) == []


def test_export_checks_its_destination_before_loading_or_converting(tmp_path, capsys, monkeypatch):
    import signpipe.fingerspelling.export as tflite

    folder = unwritable_folder(tmp_path)
    monkeypatch.setattr(tflite, "load_checkpoint", lambda *a, **k: pytest.fail("loaded the checkpoint before checking --out"))
    status = main(["export", "--workdir", str(tmp_path / "no-run"), "--out", str(folder / "bundle.zip")])
    output = capsys.readouterr()
    assert status == 2 and "is not writable" in output.err and "Traceback" not in output.err + output.out
    assert not (folder / "bundle.zip").exists()
    (tmp_path / "a-folder.zip").mkdir()
    assert main(["export", "--workdir", str(tmp_path / "no-run"), "--out", str(tmp_path / "a-folder.zip")]) == 2
    assert "found a folder there" in capsys.readouterr().err
