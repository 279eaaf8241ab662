"""Corpus readers: the real asl-signs sample, writer -> reader round trips of both layouts, what
the fingerspelling reader reads from disk (columns, row groups, files), and clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signpipe.data import fingerspelling, signs
from signpipe.data.corpus import FINGERSPELLING, ISOLATED_SIGNS, detect_kind, open_corpus
from signpipe.data.schema import (
    CHARACTER_MAP_FILE,
    LEFT_HAND,
    N_POINTS,
    PART_OFFSET,
    RIGHT_HAND,
    SIGN_MAP_FILE,
    packaged_map,
    point_index,
)
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import ConfigError, CorpusError

POSE = tuple(range(PART_OFFSET["pose"], PART_OFFSET["pose"] + 33))
SELECTED = RIGHT_HAND + tuple(point_index("pose", i) for i in range(11, 25)) + (point_index("face", 13), point_index("face", 61))


# --- the real asl-signs sample ------------------------------------------------------------------


def test_sample_opens_as_isolated_signs_with_the_shared_map(signs_sample):
    corpus = open_corpus(signs_sample)
    assert corpus.kind == ISOLATED_SIGNS
    assert len(corpus) == 84
    assert corpus.root == signs_sample
    assert corpus.map_path.name == SIGN_MAP_FILE and corpus.map_path.parent.name == "maps"
    assert len(corpus.label_map) == 250
    assert corpus.label_map["hello"] == 113 and corpus.label_map["thankyou"] == 214
    assert list(corpus.metadata.columns) == [*signs.METADATA_COLUMNS, "part"]
    assert corpus.parts == ("train",)


def test_sample_every_sequence_reads_with_real_data_facts(signs_sample):
    corpus = open_corpus(signs_sample)
    sequences = list(corpus.iter_sequences())
    assert len(sequences) == 84
    assert {s.label for s in sequences} == {"hello", "thankyou"}
    assert len({s.participant_id for s in sequences}) == 14
    assert sorted(s.sequence_id for s in sequences) == sorted(corpus.metadata["sequence_id"])
    lengths = np.array([s.n_frames for s in sequences])
    assert lengths.min() >= 5 and lengths.max() <= 29
    frames = np.concatenate([s.frames for s in sequences])
    assert frames.dtype == np.float32 and frames.shape[1:] == (N_POINTS, 3)
    for hand in (LEFT_HAND, RIGHT_HAND):
        missing = np.isnan(frames[:, hand]).reshape(len(frames), -1)
        # a hand is either fully present or fully NaN in a frame, and both happen
        assert np.all(missing.all(axis=1) | ~missing.any(axis=1))
        assert 0 < missing.all(axis=1).mean() < 1
    assert not np.isnan(frames[:, POSE]).any()
    assert all(isinstance(s, LandmarkSequence) and s.points is None for s in sequences)


def test_sample_sequence_equals_the_raw_file_read_by_pandas(signs_sample):
    corpus = open_corpus(signs_sample)
    row = corpus.metadata.iloc[17]
    sequence = corpus.read_sequence(row["sequence_id"])
    raw = pd.read_parquet(signs_sample / row["path"])
    expected = raw[["x", "y", "z"]].to_numpy(np.float32).reshape(-1, N_POINTS, 3)
    np.testing.assert_array_equal(sequence.frames, expected)
    assert sequence.extra["first_frame"] == raw["frame"].min()
    assert sequence.label == row["sign"] and sequence.participant_id == row["participant_id"]
    assert sequence.source == str(signs_sample / row["path"])


def test_sample_point_selection_and_id_filter(signs_sample):
    corpus = open_corpus(signs_sample)
    wanted = corpus.metadata["sequence_id"].iloc[[3, 40, 80]].tolist()
    full = {s.sequence_id: s.frames for s in corpus.iter_sequences(sequence_ids=wanted)}
    selected = list(corpus.iter_sequences(points=SELECTED, sequence_ids=wanted))
    assert sorted(full) == sorted(wanted) and sorted(s.sequence_id for s in selected) == sorted(wanted)
    for s in selected:
        assert s.points == SELECTED and s.frames.shape[1:] == (len(SELECTED), 3)
        np.testing.assert_array_equal(s.frames, full[s.sequence_id][:, list(SELECTED)])


# --- fingerspelling round trip -----------------------------------------------------------------


def test_fingerspelling_round_trip_is_exact_across_parts(fingerspelling_corpus):
    corpus = open_corpus(fingerspelling_corpus.root)
    assert corpus.kind == FINGERSPELLING
    assert corpus.parts == ("train", "supplemental")
    assert len(corpus) == len(fingerspelling_corpus.frames) == 25
    seen = set()
    for s in corpus.iter_sequences():
        seen.add(s.sequence_id)
        np.testing.assert_array_equal(s.frames, fingerspelling_corpus.frames[s.sequence_id])
        assert s.frames.dtype == np.float32 and s.frames.flags.c_contiguous
        assert s.label == fingerspelling_corpus.labels[s.sequence_id]
        assert s.participant_id == fingerspelling_corpus.participants[s.sequence_id]
        assert s.extra["part"] == fingerspelling_corpus.parts[s.sequence_id]
        assert s.source == str(fingerspelling_corpus.files[s.sequence_id])
    assert seen == set(fingerspelling_corpus.frames)


def test_fingerspelling_point_selection_and_filters(fingerspelling_corpus):
    corpus = open_corpus(fingerspelling_corpus.root)
    supplemental = [i for i, p in fingerspelling_corpus.parts.items() if p == "supplemental"]
    assert sorted(s.sequence_id for s in corpus.iter_sequences(parts="supplemental")) == sorted(supplemental)
    assert len(list(corpus.iter_sequences(parts=["train"]))) == 23

    wanted = sorted(fingerspelling_corpus.frames)[17:21] + supplemental[:1]
    selected = list(corpus.iter_sequences(points=SELECTED, sequence_ids=wanted))
    assert sorted(s.sequence_id for s in selected) == sorted(wanted)
    for s in selected:
        assert s.points == SELECTED
        np.testing.assert_array_equal(s.frames, fingerspelling_corpus.frames[s.sequence_id][:, list(SELECTED)])

    one = corpus.read_sequence(supplemental[0], points=RIGHT_HAND)
    np.testing.assert_array_equal(one.frames, fingerspelling_corpus.frames[supplemental[0]][:, list(RIGHT_HAND)])
    assert {k: one.extra[k] for k in ("part", "file_id")} == {"part": "supplemental", "file_id": 2000}
    np.testing.assert_array_equal(one.extra["frame_numbers"], np.arange(one.n_frames))


def test_fingerspelling_reads_only_selected_columns_and_needed_row_groups(fingerspelling_corpus, monkeypatch):
    reads = []
    original = pq.ParquetFile.read_row_group

    def recording_read_row_group(self, i, columns=None, **kwargs):
        reads.append((i, list(columns)))
        return original(self, i, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", recording_read_row_group)
    corpus = open_corpus(fingerspelling_corpus.root)
    ids_of_big_file = sorted(i for i, f in fingerspelling_corpus.files.items() if f.stem == "1000")
    last = ids_of_big_file[-1]  # the 20th sequence: in the second row group (16 per group)
    sequence = corpus.read_sequence(last, points=SELECTED)
    np.testing.assert_array_equal(sequence.frames, fingerspelling_corpus.frames[last][:, list(SELECTED)])
    assert [group for group, _ in reads] == [1]
    assert len(reads[0][1]) == 2 + 3 * len(SELECTED)  # sequence_id, frame, the coordinates asked for


def test_fingerspelling_iteration_opens_each_file_once(fingerspelling_corpus, monkeypatch):
    opened = []
    original_init = pq.ParquetFile.__init__

    def recording_init(self, source, *args, **kwargs):
        opened.append(str(source))
        original_init(self, source, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "__init__", recording_init)
    sequences = list(open_corpus(fingerspelling_corpus.root).iter_sequences(points=SELECTED))
    assert len(sequences) == 25
    assert sorted(opened) == sorted({str(f) for f in fingerspelling_corpus.files.values()})


def test_fingerspelling_rows_out_of_order_come_back_grouped_and_in_frame_order(tmp_path, make_random_frames):
    rng = np.random.default_rng(3)
    frames = {7: make_random_frames(rng, 6), 3: make_random_frames(rng, 4)}
    table = fingerspelling.wide_table(frames.items())
    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    path = tmp_path / "shuffled.parquet"
    pq.write_table(shuffled, path, row_group_size=4)  # a sequence spread over several row groups
    read = dict(fingerspelling.read_wide_sequences(path, None, SELECTED))
    assert sorted(read) == [3, 7]
    for sequence_id, expected in frames.items():
        np.testing.assert_array_equal(read[sequence_id], expected[:, list(SELECTED)])


def test_fingerspelling_nulls_read_as_nan(tmp_path, make_random_frames):
    frames = make_random_frames(np.random.default_rng(4), 5)
    frames[:, RIGHT_HAND] = np.nan
    table = fingerspelling.wide_table([(1, frames)])
    # pandas writes NaN as null: rebuild the coordinate columns with nulls where NaN
    nulled = pa.Table.from_arrays(
        [pa.array(c.to_numpy(), from_pandas=True) if pa.types.is_floating(c.type) else c for c in table.columns],
        schema=table.schema)
    assert nulled.column("x_right_hand_0").null_count == 5
    pq.write_table(nulled, tmp_path / "nulls.parquet")
    (_, read), = fingerspelling.read_wide_sequences(tmp_path / "nulls.parquet")
    np.testing.assert_array_equal(read, frames)


# --- asl-signs round trip ----------------------------------------------------------------------


def test_signs_round_trip_is_exact_with_frame_numbers(signs_corpus):
    corpus = open_corpus(signs_corpus.root)
    assert corpus.kind == ISOLATED_SIGNS and len(corpus) == 6
    for s in corpus.iter_sequences():
        np.testing.assert_array_equal(s.frames, signs_corpus.frames[s.sequence_id])
        assert s.label == signs_corpus.labels[s.sequence_id]
        assert s.participant_id == signs_corpus.participants[s.sequence_id]
        assert s.extra["first_frame"] == signs_corpus.first_frames[s.sequence_id]
    some = sorted(signs_corpus.frames)[2:4]
    selected = list(corpus.iter_sequences(points=LEFT_HAND, sequence_ids=some))
    assert [s.sequence_id for s in selected] == some
    for s in selected:
        np.testing.assert_array_equal(s.frames, signs_corpus.frames[s.sequence_id][:, list(LEFT_HAND)])


# --- layout detection, maps, errors ------------------------------------------------------------


def test_map_lookup_prefers_explicit_then_root_then_sibling_maps(signs_sample_copy, tmp_path):
    root_map = signs_sample_copy / SIGN_MAP_FILE
    assert open_corpus(signs_sample_copy).map_path == (tmp_path / "maps" / SIGN_MAP_FILE).resolve()
    shutil.copy(tmp_path / "maps" / SIGN_MAP_FILE, root_map)
    assert open_corpus(signs_sample_copy).map_path == root_map.resolve()
    explicit = tmp_path / "my_map.json"
    explicit.write_text(json.dumps({"hello": 0, "thankyou": 1}))
    corpus = open_corpus(signs_sample_copy, map_path=explicit)
    assert corpus.label_map == {"hello": 0, "thankyou": 1}
    root_map.unlink()
    shutil.rmtree(tmp_path / "maps")
    with pytest.raises(CorpusError, match="expected the label map sign_to_prediction_index_map.json"):
        open_corpus(signs_sample_copy)
    with pytest.raises(CorpusError, match="no such file"):
        open_corpus(signs_sample_copy, map_path=tmp_path / "absent.json")


def test_layout_detection_errors_name_the_file(tmp_path):
    with pytest.raises(CorpusError, match="expected a corpus directory, found nothing"):
        detect_kind(tmp_path / "absent")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusError, match="found a file"):
        open_corpus(tmp_path / "file")
    with pytest.raises(CorpusError, match="train.csv: expected the corpus metadata csv"):
        open_corpus(tmp_path)
    (tmp_path / "train.csv").write_text("path,sequence_id,label\n")
    with pytest.raises(CorpusError, match="expected the columns of asl-fingerspelling .* found path,sequence_id,label"):
        open_corpus(tmp_path)


def test_reader_errors_are_corpus_errors_naming_the_file(signs_corpus, fingerspelling_corpus):
    corpus = open_corpus(signs_corpus.root)
    first = sorted(signs_corpus.frames)[0]
    path = signs_corpus.files[first]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorpusError, match=f"{path}: expected a readable parquet file") as caught:
        corpus.read_sequence(first)
    assert "Traceback" not in str(caught.value)

    second = sorted(signs_corpus.frames)[1]
    table = signs.long_table(signs_corpus.frames[second])
    pq.write_table(table.slice(0, table.num_rows - 1), signs_corpus.files[second])
    with pytest.raises(CorpusError, match=f"expected {N_POINTS} rows per frame"):
        corpus.read_sequence(second)

    fs = open_corpus(fingerspelling_corpus.root)
    with pytest.raises(CorpusError, match="expected sequence_id 5 in the metadata"):
        fs.read_sequence(5)
    with pytest.raises(ConfigError, match="expected indices in 0..542"):
        list(fs.iter_sequences(points=[0, 543]))
    with pytest.raises(ConfigError, match="parts: expected some of train, supplemental"):
        list(fs.iter_sequences(parts="test"))


def test_fingerspelling_id_missing_from_its_file_is_an_error_after_the_others(fingerspelling_corpus):
    train_csv = fingerspelling_corpus.root / "train.csv"
    metadata = pd.read_csv(train_csv)
    metadata.loc[0, "sequence_id"] = 99
    metadata.to_csv(train_csv, index=False)
    corpus = open_corpus(fingerspelling_corpus.root)
    got = []
    with pytest.raises(CorpusError, match=r"1000.parquet: expected rows of sequence_id 99"):
        for s in corpus.iter_sequences(parts="train"):
            got.append(s.sequence_id)
    assert len(got) == 19


def test_shared_character_map_serves_a_fingerspelling_corpus(signs_sample, fingerspelling_corpus):
    (fingerspelling_corpus.root / CHARACTER_MAP_FILE).unlink()
    with pytest.raises(CorpusError, match=CHARACTER_MAP_FILE):
        open_corpus(fingerspelling_corpus.root)
    shared_map = signs_sample.parent / "maps" / CHARACTER_MAP_FILE
    corpus = open_corpus(fingerspelling_corpus.root, map_path=shared_map)
    assert corpus.map_path == shared_map
    assert len(corpus.label_map) == 59 and corpus.label_map[" "] == 0 and corpus.label_map["~"] == 58
    assert corpus.label_map == packaged_map(CHARACTER_MAP_FILE)
