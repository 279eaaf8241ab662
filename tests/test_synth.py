"""The synthetic corpus generator: Kaggle layout and schema, determinism, planted geometry, truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from signpipe.data import fingerspelling, signs
from signpipe.data.schema import (
    CHARACTER_MAP_FILE,
    N_POINTS,
    PART_OFFSET,
    POINT_NAMES,
    SIGN_MAP_FILE,
    WIDE_COLUMNS,
    packaged_map,
)
from signpipe.data.synth import (
    ALIGNMENT_FILE,
    TRUTH_FILE,
    generate_fingerspelling,
    generate_isolated_signs,
    ground_truth_dir,
    planted_y_scale,
    read_ground_truth,
)
from signpipe.data.synth.face import LIPS, LOWER_OUTER, NOSE_TIP, UPPER_OUTER
from signpipe.data.synth.hand import BONES
from signpipe.data.synth.phrases import MAX_PHRASE_LENGTH, random_phrase
from signpipe.data.synth.shapes import MIN_SHAPE_DISTANCE, alphabet_characters, alphabet_shapes, shape_distances
from signpipe.data.synth.sign_templates import MIN_TEMPLATE_DISTANCE, sign_templates
from signpipe.errors import ConfigError, CorpusError, SignpipeError

Y_SCALE = 1.8979
REAL_SIGNS = Path("/work/shared/data/asl-signs-sample")


@pytest.fixture(scope="module")
def fs_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "fs"
    generate_fingerspelling(out, 12, seed=11, n_participants=3, sequences_per_file=5)
    return out


@pytest.fixture(scope="module")
def signs_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "signs"
    generate_isolated_signs(out, 10, seed=5, n_participants=3)
    return out


def _wide_sequences(root: Path) -> dict[int, np.ndarray]:
    """sequence_id -> frames [T, 543, 3] from every parquet file of a fingerspelling corpus."""
    out = {}
    for path in sorted((root / "train_landmarks").glob("*.parquet")):
        table = pq.read_table(path)
        ids = table.column("sequence_id").to_numpy()
        coords = np.stack([table.column(c).to_numpy() for c in WIDE_COLUMNS], axis=1)
        for sequence_id in np.unique(ids):
            rows = coords[ids == sequence_id]
            out[int(sequence_id)] = rows.reshape(len(rows), 3, N_POINTS).transpose(0, 2, 1)
    return out


def _signing_hands(root: Path) -> dict[int, str]:
    truth, _ = read_ground_truth(root)
    return {p["participant_id"]: p["signing_hand"] for p in truth["participants"]}


def _part(frames: np.ndarray, part: str, n: int) -> np.ndarray:
    return frames[:, PART_OFFSET[part] : PART_OFFSET[part] + n]


# --- layout and schema -------------------------------------------------------------------------


def test_fingerspelling_layout_and_schema(fs_dir):
    meta = pd.read_csv(fs_dir / "train.csv")
    assert list(meta.columns) == list(fingerspelling.METADATA_COLUMNS)
    assert meta.sequence_id.dtype == np.int64 and meta.file_id.dtype == np.int64
    assert meta.sequence_id.is_unique and len(meta) == 12
    assert (meta.path == "train_landmarks/" + meta.file_id.astype(str) + ".parquet").all()
    assert meta.file_id.nunique() == 3  # 12 sequences, 5 per file
    packaged = Path(fingerspelling.__file__).parent / "maps" / CHARACTER_MAP_FILE
    assert (fs_dir / CHARACTER_MAP_FILE).read_bytes() == packaged.read_bytes()
    for file_id, group in meta.groupby("file_id"):
        path = fs_dir / f"train_landmarks/{file_id}.parquet"
        schema = pq.read_schema(path)
        assert schema.names == ["sequence_id", "frame", *WIDE_COLUMNS]
        assert str(schema.field("sequence_id").type) == "int64" and str(schema.field("frame").type) == "int16"
        assert {str(schema.field(c).type) for c in WIDE_COLUMNS} == {"float"}
        assert len(WIDE_COLUMNS) == 1629
        frame = pd.read_parquet(path, columns=["frame"])
        assert frame.index.name == "sequence_id"  # pandas reads the index back, as with Kaggle's files
        assert set(frame.index) == set(group.sequence_id)
        for _, frames in frame.groupby(level=0):
            assert (frames.frame.to_numpy() == np.arange(len(frames))).all()


def test_isolated_signs_layout_and_schema(signs_dir):
    meta = pd.read_csv(signs_dir / "train.csv")
    assert list(meta.columns) == list(signs.METADATA_COLUMNS)
    assert meta.sequence_id.is_unique and len(meta) == 10
    sign_map = packaged_map(SIGN_MAP_FILE)
    assert set(meta.sign) <= set(sign_map) and meta.sign.is_unique  # dealt in rounds of all 250
    assert json.loads((signs_dir / SIGN_MAP_FILE).read_text()) == sign_map
    types = [part for part, _ in POINT_NAMES]
    for row in meta.itertuples():
        assert row.path == f"train_landmark_files/{row.participant_id}/{row.sequence_id}.parquet"
        table = pq.read_table(signs_dir / row.path)
        assert table.schema.equals(signs.LONG_SCHEMA, check_metadata=False)
        assert table.num_rows % N_POINTS == 0
        frame = table.column("frame").to_numpy()
        assert (np.bincount(frame - frame.min()) == N_POINTS).all()
        assert table.column("type").to_pylist()[:N_POINTS] == types


# --- determinism and seeds ---------------------------------------------------------------------


def test_same_seed_same_corpus_and_different_seed_different_people(fs_dir, tmp_path):
    again = tmp_path / "again"
    generate_fingerspelling(again, 12, seed=11, n_participants=3, sequences_per_file=5)
    assert (again / "train.csv").read_bytes() == (fs_dir / "train.csv").read_bytes()
    assert (again / TRUTH_FILE).read_bytes() == (fs_dir / TRUTH_FILE).read_bytes()
    first, second = _wide_sequences(fs_dir), _wide_sequences(again)
    assert first.keys() == second.keys()
    for sequence_id in first:
        np.testing.assert_array_equal(first[sequence_id], second[sequence_id])

    other = tmp_path / "other"
    generate_fingerspelling(other, 4, seed=12)
    a, b = pd.read_csv(fs_dir / "train.csv"), pd.read_csv(other / "train.csv")
    assert not set(a.participant_id) & set(b.participant_id)
    frames_b = _wide_sequences(other)
    for f in first.values():
        assert not any(f.shape == g.shape and np.allclose(f, g, equal_nan=True) for g in frames_b.values())


def test_corpus_has_several_signers_of_both_handedness(fs_dir):
    truth, _ = read_ground_truth(fs_dir)
    people = truth["participants"]
    assert len(people) == 3 and sum(p["n_sequences"] for p in people) == 12
    assert {p["signing_hand"] for p in people} == {"left_hand", "right_hand"}
    assert len({p["hand_size"] for p in people}) == 3 and len({p["frames_per_character"] for p in people}) == 3
    # the signing hand is the one that is there: the other is mostly missing
    hands = _signing_hands(fs_dir)
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    for sequence_id, frames in _wide_sequences(fs_dir).items():
        signing = hands[meta.participant_id[sequence_id]]
        other = "left_hand" if signing == "right_hand" else "right_hand"
        assert np.isnan(_part(frames, other, 21)[..., 0]).mean() > 0.8
        assert np.isnan(_part(frames, signing, 21)[..., 0]).mean() < 0.7


# --- detector misses ---------------------------------------------------------------------------


def test_hands_drop_whole_in_bursts_pose_never(fs_dir, signs_dir):
    hands = _signing_hands(fs_dir)
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    missing, total, face_missing = 0, 0, 0
    for sequence_id, frames in _wide_sequences(fs_dir).items():
        for part in ("left_hand", "right_hand"):
            nan = np.isnan(_part(frames, part, 21))
            assert (nan.any(axis=(1, 2)) == nan.all(axis=(1, 2))).all(), "a hand is NaN only as a whole"
        assert not np.isnan(_part(frames, "pose", 33)).any()
        signing = np.isnan(_part(frames, hands[meta.participant_id[sequence_id]], 21)[:, 0, 0])
        missing, total = missing + signing.sum(), total + len(signing)
        face_missing += np.isnan(_part(frames, "face", 468)[:, 0, 0]).sum()
    assert 0.25 <= missing / total <= 0.45
    assert face_missing / total < 0.05
    for path in (signs_dir / "train_landmark_files").rglob("*.parquet"):
        xyz = pq.read_table(path, columns=["x", "y", "z"]).to_pandas().to_numpy().reshape(-1, N_POINTS, 3)
        assert not np.isnan(_part(xyz, "pose", 33)).any()
        for part in ("left_hand", "right_hand"):
            nan = np.isnan(_part(xyz, part, 21))
            assert (nan.any(axis=(1, 2)) == nan.all(axis=(1, 2))).all()


# --- planted geometry --------------------------------------------------------------------------


def test_hand_bones_are_rigid_only_after_the_planted_y_scale(fs_dir):
    assert planted_y_scale(fs_dir) == Y_SCALE
    hands = _signing_hands(fs_dir)
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    pairs = np.array(BONES)
    palm = np.array([(0, 5), (0, 9), (0, 13), (0, 17), (5, 17)])
    spread = {1.0: [], Y_SCALE: []}
    palm_spread = {1.0: [], Y_SCALE: []}
    for sequence_id, frames in _wide_sequences(fs_dir).items():
        hand = _part(frames, hands[meta.participant_id[sequence_id]], 21).astype(np.float64)
        hand = hand[~np.isnan(hand[:, 0, 0])]
        for y_scale in spread:
            scaled = hand * [1.0, y_scale, 1.0]
            for chosen, out in ((pairs, spread), (palm, palm_spread)):
                lengths = np.linalg.norm(scaled[:, chosen[:, 1]] - scaled[:, chosen[:, 0]], axis=-1)
                out[y_scale].append(np.median(lengths.std(0) / lengths.mean(0)))
    # with the planted scale only the detector's jitter is left; without it, lengths follow the rotation
    assert np.max(palm_spread[Y_SCALE]) < 0.03
    assert np.median(palm_spread[1.0]) > 3 * np.median(palm_spread[Y_SCALE])
    assert np.median(spread[Y_SCALE]) < 0.06
    assert np.median(spread[1.0]) > 2 * np.median(spread[Y_SCALE])


def test_wrist_rotates_out_of_the_image_plane(fs_dir):
    hands = _signing_hands(fs_dir)
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    tilts = []
    for sequence_id, frames in _wide_sequences(fs_dir).items():
        hand = _part(frames, hands[meta.participant_id[sequence_id]], 21).astype(np.float64) * [1.0, Y_SCALE, 1.0]
        hand = hand[~np.isnan(hand[:, 0, 0])]
        normal = np.cross(hand[:, 5] - hand[:, 0], hand[:, 17] - hand[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        tilts.append(np.degrees(np.arccos(np.abs(normal[:, 2]))))  # palm normal vs the camera axis
    tilts = np.concatenate(tilts)
    assert np.percentile(tilts, 90) > 30.0 and np.std(tilts) > 8.0


def test_pose_arm_follows_the_signing_hand(fs_dir):
    hands = _signing_hands(fs_dir)
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    for sequence_id, frames in _wide_sequences(fs_dir).items():
        signing = hands[meta.participant_id[sequence_id]]
        shoulder, elbow, wrist = (12, 14, 16) if signing == "right_hand" else (11, 13, 15)
        scaled = frames.astype(np.float64) * [1.0, Y_SCALE, 1.0]
        pose, hand = _part(scaled, "pose", 33), _part(scaled, signing, 21)
        present = ~np.isnan(hand[:, 0, 0])
        gap = np.linalg.norm(pose[present, wrist, :2] - hand[present, 0, :2], axis=-1)
        assert np.median(gap) < 0.02  # the pose wrist is the hand's wrist, up to pose jitter
        upper = np.linalg.norm(pose[:, elbow] - pose[:, shoulder], axis=-1)
        fore = np.linalg.norm(pose[:, wrist, :2] - pose[:, elbow, :2], axis=-1)
        assert upper.std() / upper.mean() < 0.1 and fore.mean() > 0.1  # a rigid upper arm, a real forearm


def test_lips_form_a_mouth_below_the_nose(fs_dir):
    for frames in _wide_sequences(fs_dir).values():
        face = _part(frames, "face", 468).astype(np.float64) * [1.0, Y_SCALE, 1.0]
        face = face[~np.isnan(face[:, 0, 0])]
        lips = face[:, list(LIPS)]
        face_width = face[..., 0].max(axis=1) - face[..., 0].min(axis=1)
        lip_width = lips[..., 0].max(axis=1) - lips[..., 0].min(axis=1)
        assert ((lip_width > 0.2 * face_width) & (lip_width < 0.55 * face_width)).all()
        assert (lips[..., 1].max(axis=1) - lips[..., 1].min(axis=1) < 0.8 * lip_width).all()  # wider than tall
        assert (lips[..., 1].min(axis=1) > face[:, NOSE_TIP, 1]).all()  # image y grows downwards
        assert (face[:, 0, 1] < face[:, 17, 1]).all()  # upper lip above lower lip
        corners = face[:, [61, 291], 0]
        assert (np.abs(corners[:, 1] - corners[:, 0]) > 0.9 * lip_width).all()
        opening = face[:, 14, 1] - face[:, 13, 1]
        assert opening.std() > 0  # the mouth moves
        assert set(UPPER_OUTER) | set(LOWER_OUTER) <= set(LIPS)


# --- phrases and alignment ---------------------------------------------------------------------


def test_phrases_use_map_characters_only():
    allowed = set(packaged_map(CHARACTER_MAP_FILE))
    rng = np.random.default_rng(0)
    phrases = [random_phrase(rng) for _ in range(2000)]
    assert all(set(p) <= allowed and 1 <= len(p) <= MAX_PHRASE_LENGTH for p in phrases)
    assert set("".join(phrases)) == allowed  # every character gets practice
    kinds = sum("@" in p for p in phrases), sum(p.count("-") >= 2 for p in phrases), sum("." in p for p in phrases)
    assert min(kinds) > 50


def test_alignment_covers_each_character_in_order(fs_dir):
    truth, alignment = read_ground_truth(fs_dir)
    assert truth["kind"] == "fingerspelling" and truth["seed"] == 11 and truth["y_scale"] == Y_SCALE
    assert list(alignment.columns) == ["sequence_id", "char_index", "character", "start_frame", "end_frame"]
    assert str(alignment.sequence_id.dtype) == "int64" and str(alignment.start_frame.dtype) == "int32"
    meta = pd.read_csv(fs_dir / "train.csv").set_index("sequence_id")
    frames = _wide_sequences(fs_dir)
    for sequence_id, spans in alignment.groupby("sequence_id"):
        phrase = meta.phrase[sequence_id]
        assert len(phrase) <= MAX_PHRASE_LENGTH
        assert spans.char_index.tolist() == list(range(len(phrase)))
        assert "".join(spans.character) == phrase
        start, end = spans.start_frame.to_numpy(), spans.end_frame.to_numpy()
        assert (start < end).all() and start[0] >= 0 and end[-1] <= len(frames[sequence_id])
        assert (start[1:] == end[:-1]).all()  # contiguous, in order
    assert set(alignment.sequence_id) == set(meta.index)


def test_characters_are_learnable_across_seeds(fs_dir, tmp_path):
    """Hand shapes read on one seed's corpus classify another seed's characters well above chance."""

    def character_samples(root: Path) -> tuple[np.ndarray, list[str]]:
        _, alignment = read_ground_truth(root)
        hands = _signing_hands(root)
        meta = pd.read_csv(root / "train.csv").set_index("sequence_id")
        frames, features, labels = _wide_sequences(root), [], []
        for row in alignment.itertuples():
            signing = hands[meta.participant_id[row.sequence_id]]
            hand = _part(frames[row.sequence_id][row.start_frame : row.end_frame], signing, 21)
            hand = hand[~np.isnan(hand[:, 0, 0])].astype(np.float64) * [1.0, Y_SCALE, 1.0]
            if not len(hand):
                continue
            hand = hand - hand[:, :1]
            hand[..., 0] *= -1.0 if signing == "left_hand" else 1.0
            hand /= np.linalg.norm(hand[:, 9], axis=-1)[:, None, None]
            features.append(hand.mean(axis=0).ravel())
            labels.append(row.character)
        return np.array(features), labels

    train_dir = tmp_path / "train"
    generate_fingerspelling(train_dir, 40, seed=21, n_participants=4)
    x_train, y_train = character_samples(train_dir)
    x_test, y_test = character_samples(fs_dir)
    # linear discriminant: class means under one shrunk within-class covariance
    classes = sorted(set(y_train))
    labels = np.array(y_train)
    means = np.stack([x_train[labels == c].mean(axis=0) for c in classes])
    within = x_train - means[np.searchsorted(classes, labels)]
    covariance = within.T @ within / len(within)
    precision = np.linalg.inv(covariance + 0.05 * np.trace(covariance) / len(covariance) * np.eye(len(covariance)))
    offsets = x_test[:, None, :] - means[None]
    predicted = np.array(classes)[np.einsum("ncd,de,nce->nc", offsets, precision, offsets).argmin(axis=1)]
    chance = pd.Series(y_test).value_counts(normalize=True).iloc[0]
    assert (predicted == np.array(y_test)).mean() > max(0.6, 4 * chance)


# --- the fixed alphabet and templates ----------------------------------------------------------


def test_alphabet_is_fixed_and_distinct(fs_dir, signs_dir):
    assert alphabet_characters() == tuple(sorted(packaged_map(CHARACTER_MAP_FILE), key=packaged_map(CHARACTER_MAP_FILE).get))
    distances = shape_distances(alphabet_shapes())
    np.fill_diagonal(distances, np.inf)
    assert distances.min() >= MIN_SHAPE_DISTANCE
    templates = sign_templates()
    assert [t.sign for t in templates] == sorted(packaged_map(SIGN_MAP_FILE), key=packaged_map(SIGN_MAP_FILE).get)
    assert len({t.hands for t in templates}) == 3 and MIN_TEMPLATE_DISTANCE > 0
    # the corpus seed does not touch the alphabet: every corpus records the same digest
    digests = {read_ground_truth(d)[0]["shapes_digest"] for d in (fs_dir, signs_dir)}
    assert len(digests) == 1


# --- ground truth API and errors ---------------------------------------------------------------


def test_ground_truth_api(fs_dir, signs_dir, tmp_path):
    assert ground_truth_dir(fs_dir) == fs_dir and (fs_dir / ALIGNMENT_FILE).is_file()
    truth, alignment = read_ground_truth(signs_dir)
    assert alignment is None and truth["kind"] == "isolated_signs"
    assert planted_y_scale(signs_dir) == truth["y_scale"] == 1.1
    assert ground_truth_dir(REAL_SIGNS) is None
    with pytest.raises(CorpusError, match="synth_truth.json"):
        planted_y_scale(REAL_SIGNS)
    (tmp_path / TRUTH_FILE).write_text('{"generator": "someone else"}')
    with pytest.raises(CorpusError, match="generator"):
        read_ground_truth(tmp_path)


def test_bad_options_and_occupied_output_leave_nothing_behind(fs_dir, tmp_path):
    for kwargs in ({"n_sequences": 0}, {"seed": -1}, {"y_scale": 0.0}, {"n_participants": 20}, {"sequences_per_file": 0}):
        with pytest.raises(ConfigError):
            generate_fingerspelling(tmp_path / "bad", **({"n_sequences": 3, "seed": 1} | kwargs))
    with pytest.raises(ConfigError):
        generate_isolated_signs(tmp_path / "bad", 2, seed=1, y_scale_spread=2.0)
    assert not list(tmp_path.iterdir())
    before = sorted(p.name for p in fs_dir.iterdir())
    with pytest.raises(SignpipeError, match="not empty"):
        generate_fingerspelling(fs_dir, 2, seed=1)
    assert sorted(p.name for p in fs_dir.iterdir()) == before
    assert not [p for p in fs_dir.parent.iterdir() if p.name.endswith(".tmp")]


def test_per_participant_y_scale_spread(tmp_path):
    generate_isolated_signs(tmp_path / "spread", 3, seed=2, n_participants=3, y_scale_spread=0.1)
    truth, _ = read_ground_truth(tmp_path / "spread")
    own = [p["y_scale"] for p in truth["participants"]]
    assert len(set(own)) == 3 and truth["y_scale"] == 1.1 and all(0.6 < s < 2.0 for s in own)


@pytest.mark.parametrize("kind", ["fingerspelling", "isolated-signs"])
def test_rendering_in_worker_processes_writes_the_same_corpus(tmp_path, kind):
    import hashlib

    from signpipe.data.synth import generate_fingerspelling, generate_isolated_signs

    def digest(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}

    if kind == "fingerspelling":
        generate_fingerspelling(tmp_path / "one", 12, seed=3, sequences_per_file=4)
        generate_fingerspelling(tmp_path / "two", 12, seed=3, sequences_per_file=4, workers=2)
    else:
        generate_isolated_signs(tmp_path / "one", 130, seed=3, n_participants=2)  # two units of work
        generate_isolated_signs(tmp_path / "two", 130, seed=3, n_participants=2, workers=2)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
