"""The corpus validator and `signpipe data validate`: clean corpora pass with a summary; each kind
of broken corpus (copies in tmp_path) gives its own `path: expected ..., found ...` line and exit
status 1, never a traceback; several problems in one corpus are all reported."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signpipe.cli import main
from signpipe.data import signs
from signpipe.data.schema import CHARACTER_MAP_FILE, N_POINTS, SIGN_MAP_FILE
from signpipe.data.validate import validate_corpus


def run_cli(capsys, *args: str) -> tuple[int, str]:
    status = main(["data", "validate", *map(str, args)])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    return status, output


# --- clean corpora -----------------------------------------------------------------------------


def test_real_sample_passes_with_its_summary(signs_sample, capsys):
    report = validate_corpus(signs_sample)
    assert report.ok, report.problems
    assert report.kind == "isolated-signs" and report.warnings == []
    assert report.map_path.name == SIGN_MAP_FILE
    train = report.summary["train"]
    assert (train.sequences, train.sequences_read, train.participants) == (84, 84, 14)
    assert 5 <= train.frames_min <= train.frames_median <= train.frames_max <= 29
    assert train.frames_total == round(train.frames_mean * 84)
    # the real sample misses hands often, but it has frames with both hands
    assert 0 < train.no_hand_fraction <= train.no_dominant_hand_fraction <= min(train.no_left_hand_fraction,
                                                                                 train.no_right_hand_fraction) < 1
    status, output = run_cli(capsys, signs_sample)
    assert status == 0
    assert "ok: no problems found" in output and "participants" in output


def test_written_fingerspelling_corpus_passes_per_part(fingerspelling_corpus, capsys):
    report = validate_corpus(fingerspelling_corpus.root)
    assert report.ok, report.problems
    assert set(report.summary) == {"train", "supplemental"}
    assert report.summary["train"].sequences_read == 23 and report.summary["supplemental"].sequences_read == 2
    lengths = [len(f) for i, f in fingerspelling_corpus.frames.items() if fingerspelling_corpus.parts[i] == "train"]
    assert report.summary["train"].frames_total == sum(lengths)
    assert report.summary["train"].frames_max == max(lengths)
    left_missing = [np.isnan(f[:, 468, 0]).sum() for i, f in fingerspelling_corpus.frames.items()
                    if fingerspelling_corpus.parts[i] == "train"]
    assert report.summary["train"].no_left_hand_fraction == pytest.approx(sum(left_missing) / sum(lengths))
    status, output = run_cli(capsys, fingerspelling_corpus.root, "--json")
    assert status == 0
    parsed = json.loads(output)
    assert parsed["ok"] and parsed["kind"] == "fingerspelling" and parsed["summary"]["supplemental"]["sequences"] == 2


def test_written_signs_corpus_passes(signs_corpus):
    report = validate_corpus(signs_corpus.root)
    assert report.ok, report.problems
    assert report.summary["train"].frames_total == sum(len(f) for f in signs_corpus.frames.values())


def test_missing_map_is_a_warning_not_a_failure(signs_corpus, capsys):
    (signs_corpus.root / SIGN_MAP_FILE).unlink()
    report = validate_corpus(signs_corpus.root)
    assert report.ok and report.map_path is None
    assert any("labels were not checked" in w.message for w in report.warnings)
    status, output = run_cli(capsys, signs_corpus.root)
    assert status == 0 and "labels were not checked" in output


# --- broken corpora ----------------------------------------------------------------------------
# Each breaker damages a fresh corpus and returns (the file the problem must name, words of the
# expected message).


def _first_signs_file(root):
    metadata = pd.read_csv(root / "train.csv")
    return root / metadata["path"].iloc[0], metadata


def break_missing_column(root):
    metadata = pd.read_csv(root / "train.csv").drop(columns="phrase")
    metadata.to_csv(root / "train.csv", index=False)
    return root / "train.csv", "(missing phrase)"


def break_csv_dtype(root):
    metadata = pd.read_csv(root / "train.csv", dtype=str)
    metadata.loc[2, "sequence_id"] = "seq-three"
    metadata.to_csv(root / "train.csv", index=False)
    return root / "train.csv", "expected integers in column sequence_id, found 'seq-three' (line 4)"


def break_parquet_dtype(root):
    path, _ = _first_signs_file(root)
    table = pq.read_table(path)
    table = table.set_column(table.schema.get_field_index("x"), "x", table.column("x").cast(pa.string()))
    pq.write_table(table, path)
    return path, "expected float32 or float64 in column x, found string"


def break_truncated_parquet(root):
    path, _ = _first_signs_file(root)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    return path, "expected a readable parquet file, found"


def break_truncated_wide_parquet(root):
    path = root / "train_landmarks" / "1001.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    return path, "expected a readable parquet file, found"


def break_missing_file(root):
    path, _ = _first_signs_file(root)
    path.unlink()
    return path, "expected a parquet file, found no such file"


def break_missing_wide_file(root):
    path = root / "supplemental_landmarks" / "2000.parquet"
    path.unlink()
    return path, "expected the parquet file of 2 sequences in supplemental_metadata.csv, found no such file"


def break_unknown_character(root):
    metadata = pd.read_csv(root / "supplemental_metadata.csv", dtype={"phrase": str})
    metadata.loc[1, "phrase"] = "caf\u00e9 du monde"
    metadata.to_csv(root / "supplemental_metadata.csv", index=False)
    return root / "supplemental_metadata.csv", "expected phrase characters from the character map, found '\u00e9'"


def break_unknown_sign(root):
    metadata = pd.read_csv(root / "train.csv")
    metadata.loc[5, "sign"] = "goodbye-forever"
    metadata.to_csv(root / "train.csv", index=False)
    return root / "train.csv", "expected signs from the sign map, found 'goodbye-forever'"


def break_zero_frames(root):
    path, _ = _first_signs_file(root)
    pq.write_table(signs.long_table(np.zeros((0, N_POINTS, 3), np.float32)), path)
    return path, "expected at least one frame (543 rows), found 0 rows"


def break_csv_id_not_in_parquet(root):
    metadata = pd.read_csv(root / "train.csv")
    metadata.loc[metadata["file_id"] == 1001, "sequence_id"] += 1_000_000
    metadata.to_csv(root / "train.csv", index=False)
    return root / "train_landmarks" / "1001.parquet", "(listed in train.csv), found no rows"


def break_signs_path_name(root):
    path, metadata = _first_signs_file(root)
    renamed = path.with_name("123.parquet")
    path.rename(renamed)
    metadata.loc[0, "path"] = str(renamed.relative_to(root))
    metadata.to_csv(root / "train.csv", index=False)
    return root / "train.csv", f"expected the file of sequence_id {metadata['sequence_id'].iloc[0]} to be named"


def break_rows_per_frame(root):
    path, _ = _first_signs_file(root)
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)
    return path, "expected 543 rows per frame, found"


def break_point_order(root):
    path, _ = _first_signs_file(root)
    table = pq.read_table(path)
    order = np.arange(table.num_rows)
    order[[470, 471]] = order[[471, 470]]  # swap left_hand 2 and 3 of the first frame
    pq.write_table(table.take(pa.array(order)), path)
    return path, "found left_hand 3 at row 470 of frame 0 (where left_hand 2 belongs)"


def break_wide_schema(root):
    path = root / "train_landmarks" / "1001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["z_face_0", "z_face_1"]), path)
    return path, "expected columns z_face_0, z_face_1, found 2 of the 1,631 expected columns missing"


def break_explicit_map(root):
    return root / "no_such_map.json", "expected the label map character_to_prediction_index.json, found no such file"


def break_not_a_directory(root):
    shutil.rmtree(root)
    root.write_text("not a corpus")
    return root, "expected a corpus directory, found a file"


BREAKERS = [
    pytest.param("fingerspelling", break_missing_column, id="missing-column"),
    pytest.param("fingerspelling", break_csv_dtype, id="csv-wrong-dtype"),
    pytest.param("signs", break_parquet_dtype, id="parquet-wrong-dtype"),
    pytest.param("signs-sample", break_truncated_parquet, id="truncated-parquet"),
    pytest.param("fingerspelling", break_truncated_wide_parquet, id="truncated-wide-parquet"),
    pytest.param("signs-sample", break_missing_file, id="missing-file"),
    pytest.param("fingerspelling", break_missing_wide_file, id="missing-wide-file"),
    pytest.param("fingerspelling", break_unknown_character, id="unknown-character"),
    pytest.param("signs-sample", break_unknown_sign, id="unknown-sign"),
    pytest.param("signs", break_zero_frames, id="zero-frames"),
    pytest.param("fingerspelling", break_csv_id_not_in_parquet, id="csv-id-not-in-parquet"),
    pytest.param("signs", break_signs_path_name, id="signs-path-name-mismatch"),
    pytest.param("signs", break_rows_per_frame, id="wrong-rows-per-frame"),
    pytest.param("signs", break_point_order, id="wrong-point-order"),
    pytest.param("fingerspelling", break_wide_schema, id="wide-columns-missing"),
    pytest.param("fingerspelling", break_explicit_map, id="missing-explicit-map"),
    pytest.param("signs", break_not_a_directory, id="not-a-directory"),
]


@pytest.fixture
def corpus_root(request, tmp_path, make_fingerspelling_corpus):
    layout = request.param
    if layout == "fingerspelling":
        return make_fingerspelling_corpus(tmp_path / "fs").root
    if layout == "signs":
        return request.getfixturevalue("signs_corpus").root
    return request.getfixturevalue("signs_sample_copy")


@pytest.mark.parametrize(("corpus_root", "breaker"), BREAKERS, indirect=["corpus_root"])
def test_broken_corpus_gives_its_problem_and_exit_status_1(corpus_root, breaker, capsys):
    where, expected = breaker(corpus_root)
    map_option = ["--map", where] if breaker is break_explicit_map else []
    report = validate_corpus(corpus_root, *map_option[1:])
    assert not report.ok
    assert any(p.where == str(where) and expected in p.message for p in report.problems), report.problems
    status, output = run_cli(capsys, corpus_root, *map_option)
    assert status == 1
    assert f"{where}: expected" in output and expected in output


def test_every_problem_is_reported_in_one_run(signs_sample_copy, capsys):
    wheres = [break_missing_file(signs_sample_copy)[0], break_unknown_sign(signs_sample_copy)[0]]
    metadata = pd.read_csv(signs_sample_copy / "train.csv")
    truncated = signs_sample_copy / metadata["path"].iloc[10]
    truncated.write_bytes(truncated.read_bytes()[:100])
    report = validate_corpus(signs_sample_copy)
    assert {p.where for p in report.problems} == {*map(str, wheres), str(truncated)}
    assert report.summary["train"].sequences_read == 82
    status, output = run_cli(capsys, signs_sample_copy, "--max-problems", "2")
    assert status == 1
    assert "3 problems:" in output and "... and 1 more" in output


def test_many_unknown_characters_stay_one_line_each(fingerspelling_corpus):
    train_csv = fingerspelling_corpus.root / "train.csv"
    metadata = pd.read_csv(train_csv, dtype={"phrase": str})
    metadata["phrase"] = "\u00fcber"
    metadata.to_csv(train_csv, index=False)
    report = validate_corpus(fingerspelling_corpus.root)
    assert len(report.problems) == 1
    assert "in 23 phrases" in report.problems[0].message and "and 18 more" in report.problems[0].message


def test_json_report_lists_problems(signs_corpus, capsys):
    break_zero_frames(signs_corpus.root)
    status, output = run_cli(capsys, signs_corpus.root, "--json")
    assert status == 1
    parsed = json.loads(output[: output.rindex("}") + 1])
    assert not parsed["ok"] and "found 0 rows" in parsed["problems"][0]["message"]


def test_map_found_beside_fingerspelling_corpus_checks_phrases(fingerspelling_corpus, tmp_path):
    (fingerspelling_corpus.root / CHARACTER_MAP_FILE).rename(tmp_path / CHARACTER_MAP_FILE)
    (tmp_path / "maps").mkdir()
    (tmp_path / CHARACTER_MAP_FILE).rename(tmp_path / "maps" / CHARACTER_MAP_FILE)
    report = validate_corpus(fingerspelling_corpus.root)
    assert report.ok and report.map_path == (tmp_path / "maps" / CHARACTER_MAP_FILE).resolve()
