"""Aspect-ratio estimation: both methods on hands of known shape, corpora, the CLI, the real sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.data import schema, signs
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import ConfigError, SignpipeError
from signpipe.landmarks import aspect

PLANTED = (1.0, 1.5, 1.8979, 2.2)

# A rigid 3-D hand, local frame (radial, distal, palmar), in units of the wrist to index-MCP
# distance: the base of each finger (thumb CMC, then MCPs), its three bone lengths and splay.
_BASES = np.array([[0.22, 0.22, 0.05], [0.32, 0.95, 0.0], [0.07, 0.98, 0.0], [-0.16, 0.93, 0.02], [-0.38, 0.83, 0.04]])
_BONES = np.array([[0.32, 0.30, 0.25], [0.45, 0.27, 0.22], [0.50, 0.30, 0.24], [0.47, 0.28, 0.23], [0.36, 0.22, 0.20]])
_SPLAY = np.array([0.9, 0.12, 0.0, -0.1, -0.22])


def _rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues: rotations `[T, 3, 3]` about one unit axis by `angles [T]`."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angles)[:, None, None] * k + (1 - np.cos(angles))[:, None, None] * (k @ k)


def hand_sequence(rng: np.random.Generator, y_scale: float, n_frames: int, noise: float = 0.0,
                  z_unit: float = 1.0) -> np.ndarray:
    """One hand turning about a random axis from a random orientation, fingers flexing, moving in
    depth; returned as MediaPipe would give it for a camera of aspect `y_scale`: `[T, 21, 3]`."""
    flexion = np.clip(rng.uniform(0, 1.2, (1, 5)) + 0.1 * np.cumsum(rng.normal(size=(n_frames, 5)), 0), 0, 1.4)
    joints = np.zeros((n_frames, 21, 3))
    for finger in range(5):
        base = 1 + 4 * finger
        joints[:, base] = _BASES[finger]
        direction_angle = np.zeros(n_frames)
        for bone in range(3):
            direction_angle = direction_angle + flexion[:, finger]
            step = np.stack([np.full(n_frames, np.sin(_SPLAY[finger])) * np.cos(direction_angle),
                             np.cos(_SPLAY[finger]) * np.cos(direction_angle), np.sin(direction_angle)], -1)
            joints[:, base + bone + 1] = joints[:, base + bone] + _BONES[finger, bone] * step
    start = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    axis = rng.normal(size=3)
    turn = _rotations(axis / np.linalg.norm(axis), np.linspace(0, rng.uniform(0.3, 1.5), n_frames)) @ start
    size = 0.1 * rng.uniform(0.7, 1.3) * np.linspace(1.0, rng.uniform(0.8, 1.25), n_frames)  # towards the camera
    points = np.einsum("tij,tpj->tpi", turn, joints) * size[:, None, None]
    points += noise * 0.1 * rng.normal(size=points.shape)
    points[..., :2] += rng.uniform(0.3, 0.7, 2)
    points[..., 1] /= y_scale
    points[..., 2] *= z_unit
    return points.astype(np.float32)


def hand_sequences(seed: int, y_scale: float, n: int = 60, noise: float = 0.0, z_unit: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [hand_sequence(rng, y_scale, int(rng.integers(6, 25)), noise, z_unit) for _ in range(n)]


def landmark_sequences(seed: int, scales_by_participant: dict[int, float], per_participant: int = 20
                       ) -> list[LandmarkSequence]:
    """Sequences of the 42 hand points: the right hand always, the left one in some frames."""
    rng = np.random.default_rng(seed)
    out = []
    for participant, y_scale in scales_by_participant.items():
        for i in range(per_participant):
            n_frames = int(rng.integers(6, 20))
            frames = np.full((n_frames, 42, 3), np.nan, dtype=np.float32)
            frames[:, 21:] = hand_sequence(rng, y_scale, n_frames, noise=0.005)
            frames[: n_frames // 2, :21] = hand_sequence(rng, y_scale, n_frames // 2, noise=0.005)
            out.append(LandmarkSequence(1000 * participant + i, participant, "hello", frames,
                                        schema.LEFT_HAND + schema.RIGHT_HAND))
    return out


# --- array level ---------------------------------------------------------------------------------


def test_affine_frame_value_is_the_planted_scale_for_a_palm_facing_the_camera():
    """Checks the direction of the map: observed palm -> canonical, y column over x column."""
    rng = np.random.default_rng(0)
    angles = rng.uniform(-np.pi, np.pi, 50)
    cos, sin = np.cos(angles), np.sin(angles)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    for y_scale in PLANTED:
        hands = np.zeros((50, 21, 3))
        palm = aspect.CANONICAL_PALM * rng.uniform(0.05, 0.2, (50, 1, 1))
        hands[:, [0, 5, 17], :2] = np.einsum("nij,npj->npi", rotation, palm) + rng.uniform(0, 1, (50, 1, 2))
        hands[..., 1] /= y_scale
        np.testing.assert_allclose(aspect.frame_y_scales_affine(hands), y_scale, rtol=1e-9)
        assert aspect.y_scale_affine(hands) == pytest.approx(y_scale)


def test_affine_drops_collapsed_palms_and_values_outside_its_range():
    hands = np.zeros((3, 21, 3))
    hands[0, [5, 17], :2] = [[1.0, 1.0], [2.0, 2.0]]  # wrist, index and pinky MCP on one line
    hands[1] = np.nan
    hands[2, [0, 5, 17], :2] = aspect.CANONICAL_PALM * [1.0, 0.1]  # squeezed tenfold: value 10
    values = aspect.frame_y_scales_affine(hands)
    assert np.isnan(values[:2]).all() and values[2] == pytest.approx(10.0)
    assert not aspect.affine_accepted(values).any()
    with pytest.raises(SignpipeError, match="no.*usable|none usable"):
        aspect.y_scale_affine(hands)


@pytest.mark.parametrize("y_scale", PLANTED)
def test_rigid_recovers_the_planted_scale(y_scale):
    exact = aspect.fit_rigid(hand_sequences(1, y_scale))
    assert exact.y_scale == pytest.approx(y_scale, rel=1e-4)
    assert exact.z_scale == pytest.approx(1.0, rel=1e-4)
    noisy = aspect.fit_rigid(hand_sequences(2, y_scale, noise=0.01))  # 1 % of the palm length
    assert noisy.y_scale == pytest.approx(y_scale, rel=0.005)


def test_rigid_fits_the_unit_of_z_or_holds_it():
    sequences = hand_sequences(3, 1.7, z_unit=0.6)  # a landmark model that flattens depth
    fitted = aspect.fit_rigid(sequences)
    assert fitted.y_scale == pytest.approx(1.7, rel=1e-3) and fitted.z_scale == pytest.approx(1 / 0.6, rel=1e-3)
    held = aspect.fit_rigid(sequences, z_scale=1 / 0.6)
    assert held.y_scale == pytest.approx(1.7, rel=1e-3) and held.z_scale == pytest.approx(1 / 0.6)
    wrong = aspect.fit_rigid(sequences, z_scale=1.0)
    assert abs(wrong.y_scale / 1.7 - 1) > 0.01  # why z is fitted by default


def test_rigid_needs_hands_that_turn():
    still = np.repeat(hand_sequences(4, 1.5, n=1)[0][:1], 10, axis=0)
    with pytest.raises(SignpipeError, match="never turn"):
        aspect.fit_rigid([still, still + 0.01])
    with pytest.raises(SignpipeError, match="at least 2 frames"):
        aspect.fit_rigid([still[:1]])


def test_rigid_problem_terms_match_the_definition():
    """The doubly centred residual sum of squares, against a direct computation."""
    sequences = hand_sequences(5, 1.3, n=3)
    problem = aspect.RigidProblem.from_hand_sequences(sequences)
    log_scales = np.tile([np.log(1.2), np.log(0.9)], (3, 1))
    terms = problem.terms(log_scales, fit_z=True)
    for sequence, rss in zip(sequences, terms.rss):
        delta = sequence[:, aspect._SEGMENT_TO].astype(np.float64) - sequence[:, aspect._SEGMENT_FROM]
        log_length2 = np.log((delta * [1.0, 1.2, 0.9]) ** 2 @ np.ones(3))
        residual = (log_length2 - log_length2.mean(1, keepdims=True) - log_length2.mean(0, keepdims=True)
                    + log_length2.mean())
        assert rss == pytest.approx((residual**2).sum(), rel=1e-4)


# --- corpus level --------------------------------------------------------------------------------


def test_estimate_per_participant_with_intervals_and_comparison():
    sequences = landmark_sequences(6, {7: 1.3, 9: 1.9})
    estimate = aspect.estimate_y_scale(sequences, n_bootstrap=100)
    assert estimate.method == "rigid" and estimate.n_sequences == 40 and estimate.n_hand_sequences == 80
    assert estimate.ci_low <= estimate.y_scale <= estimate.ci_high
    for participant, planted in ((7, 1.3), (9, 1.9)):
        found = estimate.per_participant[participant]
        assert found["y_scale"] == pytest.approx(planted, rel=0.01)
        assert found["ci"][0] <= found["y_scale"] <= found["ci"][1] and found["ci"][1] - found["ci"][0] < 0.1
        assert found["n_sequences"] == 20
    assert 1.3 < estimate.y_scale < 1.9  # one camera cannot fit two
    assert estimate.comparison["method"] == "affine" and np.isfinite(estimate.comparison["y_scale"])
    again = aspect.estimate_y_scale(sequences, n_bootstrap=100)
    assert again.to_dict() == estimate.to_dict()  # seeded
    json.dumps(estimate.to_dict(), allow_nan=False)


def test_frames_used_are_counted_per_method():
    sequences = landmark_sequences(7, {1: 1.5}, per_participant=5)
    complete = sum(len(h) for s in sequences for h in aspect.hand_sequences_of(s.frames))
    rigid = aspect.estimate_y_scale(sequences, n_bootstrap=0)
    assert rigid.n_frames == complete and np.isnan(rigid.ci_low)
    affine = aspect.estimate_y_scale(sequences, method="affine", n_bootstrap=0)
    assert 0 < affine.n_frames <= complete and affine.z_scale is None
    assert affine.comparison["y_scale"] == pytest.approx(rigid.y_scale)


def test_memory_cap_thins_frames_and_keeps_the_answer(monkeypatch):
    sequences = landmark_sequences(8, {1: 1.6}, per_participant=30)
    monkeypatch.setattr(aspect, "MAX_RIGID_FRAMES", 300)
    estimate = aspect.estimate_y_scale(sequences, n_bootstrap=0)
    assert estimate.n_frames <= 300
    assert estimate.y_scale == pytest.approx(1.6, rel=0.01)


def test_errors_name_what_was_expected():
    with pytest.raises(ConfigError, match="method"):
        aspect.estimate_y_scale([], method="median")
    with pytest.raises(SignpipeError, match="at least one sequence"):
        aspect.estimate_y_scale([])
    no_hands = [LandmarkSequence(1, 1, "x", np.full((5, 543, 3), np.nan, dtype=np.float32))]
    with pytest.raises(SignpipeError, match="complete hands"):
        aspect.estimate_y_scale(no_hands)
    wrong_points = [LandmarkSequence(1, 1, "x", np.zeros((5, 3, 3), np.float32), (0, 1, 2))]
    with pytest.raises(SignpipeError, match="42 points"):
        aspect.estimate_y_scale(wrong_points)


def write_hand_corpus(root: Path, sequences: list[LandmarkSequence]) -> Path:
    """An asl-signs layout corpus holding these hands (other points NaN-free zeros)."""
    rows = []
    for sequence in sequences:
        frames = np.zeros((sequence.n_frames, schema.N_POINTS, 3), dtype=np.float32)
        frames[:, list(schema.LEFT_HAND + schema.RIGHT_HAND)] = sequence.frames
        relative = f"{signs.LANDMARK_DIR}/{sequence.participant_id}/{sequence.sequence_id}.parquet"
        signs.write_landmark_file(root / relative, frames)
        rows.append((relative, sequence.participant_id, sequence.sequence_id, "hello"))
    pd.DataFrame(rows, columns=list(signs.METADATA_COLUMNS)).to_csv(root / "train.csv", index=False)
    (root / schema.SIGN_MAP_FILE).write_text(json.dumps(schema.packaged_map(schema.SIGN_MAP_FILE)))
    return root


def test_cli_prints_json_with_the_overall_scale(tmp_path, capsys):
    from signpipe.cli import main

    root = write_hand_corpus(tmp_path / "corpus", landmark_sequences(9, {3: 1.45}, per_participant=12))
    assert main(["landmarks", "aspect", str(root), "--bootstrap", "20"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["y_scale"] == pytest.approx(1.45, rel=0.01) and printed["method"] == "rigid"
    assert printed["n_sequences"] == 12 and set(printed["per_participant"]) == {"3"}
    assert main(["landmarks", "aspect", str(root), "--method", "affine", "--max-sequences", "5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "affine" and printed["n_sequences"] == 5
    assert main(["landmarks", "aspect", str(root), "--method", "median"]) == 2
    assert "expected one of rigid, affine" in capsys.readouterr().err


def test_real_sample_reports_every_participant(signs_sample):
    estimate = aspect.estimate_y_scale(signs_sample, n_bootstrap=50)
    assert estimate.n_sequences == 84 and len(estimate.per_participant) == 14
    # REFERENCE.md section 4: an implied width/height of about 0.8-1.0 (y scale 1.0-1.25)
    assert 1.0 < estimate.y_scale < 1.4 and 1.0 < estimate.comparison["y_scale"] < 1.4
    assert estimate.ci_low < estimate.y_scale < estimate.ci_high
    assert all(np.isfinite(p["y_scale"]) for p in estimate.per_participant.values())


# --- synthetic corpora with a planted scale (signpipe.data.synth) --------------------------------


@pytest.fixture(scope="module")
def synth_corpora(tmp_path_factory) -> dict[float, Path]:
    """Small fingerspelling corpora, one per planted scale (about 600 hand frames each)."""
    from signpipe.data import synth

    root = tmp_path_factory.mktemp("synth")
    return {y_scale: synth.generate_fingerspelling(root / f"y{y_scale}", 12, seed=1, y_scale=y_scale).root
            for y_scale in PLANTED}


@pytest.mark.parametrize("y_scale", PLANTED)
def test_recovers_the_scale_planted_in_a_synthetic_corpus(synth_corpora, y_scale):
    from signpipe.data import synth

    corpus_dir = synth_corpora[y_scale]
    estimate = aspect.estimate_y_scale(corpus_dir, n_bootstrap=50)
    planted = synth.planted_y_scale(corpus_dir)
    assert planted == y_scale
    assert estimate.y_scale == pytest.approx(planted, rel=0.01)
    assert estimate.z_scale == pytest.approx(1.0, rel=0.01)  # the generator writes z in the unit of x
    assert estimate.ci_high - estimate.ci_low < 0.02 * planted


def test_recovers_each_participants_own_camera(tmp_path):
    from signpipe.data import synth

    corpus = synth.generate_isolated_signs(tmp_path / "signs", 30, seed=2, y_scale=1.5, n_participants=3,
                                           y_scale_spread=0.2)
    truth, _ = synth.read_ground_truth(corpus.root)
    estimate = aspect.estimate_y_scale(corpus.root, n_bootstrap=50)
    for participant in truth["participants"]:
        found = estimate.per_participant[participant["participant_id"]]
        assert found["y_scale"] == pytest.approx(participant["y_scale"], rel=0.02)
