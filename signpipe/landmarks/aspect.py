"""How much to stretch y so that x, y and z of a corpus share one unit (the y scale).

MediaPipe divides x by the camera frame's width and y by its height, while z is meant to use
roughly the unit of x. A phone held upright has a frame taller than wide, so every hand comes out
squeezed in y by height/width; multiplying y by that factor (the "y scale") restores the real
shape, which 3-D rotation augmentation and any geometry rely on. The camera is unknown, so the
factor is estimated from the corpus' hands: a hand is a nearly rigid object of known shape.

Two estimators, vectorized over all frames:

* ``"affine"``, the fingerspelling seed's: for each frame with a hand, the 2x3 affine map taking
  its wrist, index MCP and pinky MCP (x, y) onto a fixed canonical 2-D palm. The map undoes the
  camera's squeeze, so for a palm seen face-on its linear part is `rotation^T diag(1, k) / size`
  and the ratio of its column norms (y column over x column) is the frame's y scale k. The corpus
  value is the mean of the frame values between 1/5 and 5 (the seed cut at 5). A palm seen at an
  angle is foreshortened, which the fit reads as a different k, and a canonical palm of other
  proportions than the landmark model's shifts every frame: the estimate depends on how the hands
  face the camera and whose hands they are.
* ``"rigid"``, 3-D: bones keep their length. Within each hand-sequence (one hand of one sequence,
  its frames with the hand complete), the log length of every rigid segment (each phalanx, the
  wrist to the thumb's base, every pair of palm points) is split into a per-frame term (the hand
  moving toward or away from the camera scales all lengths alike), a per-segment term, and a
  residual. The y scale (and, by default, the unit of z relative to x) is what minimizes the
  pooled residual sum of squares: the scaling under which the hands change least besides their
  distance to the camera. It uses every frame in which a hand turns, whichever way it faces.
  Solved by Gauss-Newton on log scales (3-6 iterations), participants all at once; the
  interval is a one-step bootstrap from each corpus sequence's gradient and Gauss-Newton Hessian.

The z unit is fitted along with y because MediaPipe's z is not quite in the unit of x: on the real
asl-signs sample the bones are most rigid with z stretched by 1.69, and holding z at 1 drags the
y scale from 1.22 to 1.06. On data whose z is in the unit of x the fit returns 1.00 and the same y.

Default ``"rigid"`` (z fitted). Figures (tests/test_aspect.py checks the same cases on smaller
inputs):

* synthetic corpora (`signpipe.data.synth`, 200 sequences, planted 1.0, 1.5, 1.8979, 2.2):
  rigid -0.03 % on all four fingerspelling corpora and -0.03 % to -0.07 % on isolated signs, 95 %
  intervals +-0.1 %; affine -15 % to -21 % (fingerspelling) and +22 % to -2 % (signs). With the
  generator's own palm as the canonical one the affine error at 1.0 falls to -0.4 %, at 1.8979
  it is still -6.7 % (the mean of a skewed ratio; the median is -0.5 %): the canonical palm's
  proportions and the hands' orientations decide the affine answer.
* rigid 3-D hands turning freely (the tests' generator), 200 hand-sequences: rigid within 0.01 %,
  0.06 % with coordinate noise of 2 % of the palm length; affine +20 %, +7 %, +2 %, -2 %.
* the real asl-signs sample (84 sequences, 14 participants, 802 hand frames): rigid 1.22 (95 %
  interval 1.13-1.32, z 1.69), affine 1.12 (1.07-1.18), both within REFERENCE.md's implied
  width/height of 0.8-1.0; per participant (6 sequences each, intervals up to +-0.4) rigid
  0.81-1.48, affine 0.99-1.37.

So the affine method holds up only for palms facing the camera and a canonical palm matching the
landmark model; the rigid one needs neither, only hands that turn a little during a sequence, as
signing hands do. Cost: a fit is 4-6 passes over the hand frames, about 0.45 s a pass per
100,000 frames on this project's shared 2-core machine, twice (corpus, participants); at most
`MAX_RIGID_FRAMES` frames are kept (thinned in time beyond that).

Uncertainty: percentile bootstrap over corpus sequences (the two hands of a sequence share a
camera and stay together), seeded per method and participant, so a corpus always gets the same
interval.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.data import schema
from signpipe.errors import ConfigError, SignpipeError

METHODS = ("rigid", "affine")
DEFAULT_METHOD = "rigid"

# --- hand geometry --------------------------------------------------------------------------------

WRIST, INDEX_MCP, PINKY_MCP = 0, 5, 17
#: wrist, index MCP, pinky MCP of a palm facing the camera, fingers up, in units of the wrist to
#: index-MCP distance: MediaPipe's palm proportions as measured on the asl-signs sample
#: (|wrist-index| : |wrist-pinky| : |index-pinky| = 1 : 0.91 : 0.71)
CANONICAL_PALM = np.array([[0.0, 0.0], [-0.32, -0.95], [0.38, -0.83]])

_PALM_POINTS = (0, 5, 9, 13, 17)
_FINGER_CHAINS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
#: point pairs of a hand whose distance does not change while it moves: every pair of palm
#: points, the wrist to the thumb's base, and each phalanx
RIGID_SEGMENTS: tuple[tuple[int, int], ...] = (
    tuple(itertools.combinations(_PALM_POINTS, 2))
    + ((0, 1),)
    + tuple((a, b) for chain in _FINGER_CHAINS for a, b in zip(chain[:-1], chain[1:]))
)
_SEGMENT_FROM, _SEGMENT_TO = np.array(RIGID_SEGMENTS).T

#: the affine method's accepted frame values: the seed dropped values >= 5; the mirror cut drops
#: palms seen edge-on the other way
AFFINE_RANGE = (0.2, 5.0)

#: hand frames the rigid method keeps in memory (segment squares, 312 bytes a frame); beyond it
#: every other frame is dropped, again as often as needed: neighbouring video frames say nearly
#: the same thing, and half a million frames pin the scale far below a percent
MAX_RIGID_FRAMES = 500_000
#: frames evaluated at once by the rigid method (bounds its temporaries to about 100 MB)
_RIGID_CHUNK_FRAMES = 100_000
#: largest Gauss-Newton step in log scale (a factor of 1.65); the first steps from 1 can be large
_MAX_LOG_STEP = 0.5
_LOG_STEP_TOLERANCE = 1e-7
_MAX_ITERATIONS = 60


# --- the affine method (the seed's) ----------------------------------------------------------------


def frame_y_scales_affine(hands: np.ndarray, canonical_palm: np.ndarray = CANONICAL_PALM) -> np.ndarray:
    """Per-frame y scale of the affine method: hands `[N, 21, >=2]` -> `[N]`, NaN where unusable.

    The map goes from the observed palm to the canonical one; its linear part is
    `E_canonical @ inv(E_observed)`, `E` being the 2x2 matrix of the two palm edges leaving the
    wrist. The ratio of its column norms does not depend on the inverse's determinant, so the
    adjugate stands in for the inverse and only collapsed palm triangles (or NaN) give NaN.
    """
    hands = np.asarray(hands, dtype=np.float64)
    if hands.ndim != 3 or hands.shape[1] != 21 or hands.shape[2] < 2:
        raise ValueError(f"expected hands [N, 21, 2 or 3], got {hands.shape}")
    observed = hands[:, [INDEX_MCP, PINKY_MCP], :2] - hands[:, [WRIST], :2]  # [N, edge, xy]
    canonical = np.asarray(canonical_palm, dtype=np.float64)
    canonical_edges = (canonical[1:] - canonical[:1]).T  # [xy, edge]
    # E_observed = [[ax, bx], [ay, by]] (edges as columns); its adjugate is [[by, -bx], [-ay, ax]]
    (ax, ay), (bx, by) = observed[:, 0].T, observed[:, 1].T
    adjugate = np.stack([np.stack([by, -bx], -1), np.stack([-ay, ax], -1)], -2)
    column_norms = np.linalg.norm(canonical_edges @ adjugate, axis=-2)  # [N, (x column, y column)]
    area = np.abs(ax * by - ay * bx)
    usable = np.isfinite(area) & (area > 1e-6 * np.hypot(ax, ay) * np.hypot(bx, by)) & (column_norms[:, 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = column_norms[:, 1] / column_norms[:, 0]
    return np.where(usable, ratio, np.nan)


def affine_accepted(frame_scales: np.ndarray) -> np.ndarray:
    """Which per-frame affine values enter the mean: finite and strictly inside `AFFINE_RANGE`."""
    low, high = AFFINE_RANGE
    with np.errstate(invalid="ignore"):
        return np.isfinite(frame_scales) & (frame_scales > low) & (frame_scales < high)


def y_scale_affine(hands: np.ndarray) -> float:
    """The seed's estimate from hand frames `[N, 21, >=2]`: the mean of the accepted frame values."""
    values = frame_y_scales_affine(hands)
    kept = values[affine_accepted(values)]
    if len(kept) == 0:
        raise SignpipeError("affine y scale: expected frames with a complete hand, found none usable")
    return float(kept.mean())


# --- the rigid method (3-D) ------------------------------------------------------------------------


def segment_squares(hands: np.ndarray) -> np.ndarray:
    """Squared x, y, z extents of every rigid segment: hands `[T, 21, 3]` -> `[T, S, 3]` float32."""
    hands = np.asarray(hands, dtype=np.float64)
    delta = hands[:, _SEGMENT_TO] - hands[:, _SEGMENT_FROM]
    return (delta * delta).astype(np.float32)


@dataclass(frozen=True)
class RigidTerms:
    """Per hand-sequence at given log scales: `rss` (the residual sum of squares of 2 log
    length), `gradient [n, k]` (half the gradient) and `hessian [n, k, k]` (half the
    Gauss-Newton Hessian), k = 2 (log y, log z) or 1 (log y, z held)."""

    rss: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray


class RigidProblem:
    """Hand-sequences (at least 2 complete frames each) as segment squares, ready to be fitted.

    The model, per hand-sequence, frame t and segment j: `2 log length_tj = log(x^2 + s^2 y^2 +
    c^2 z^2)_tj = frame_t + segment_j + residual_tj`. Removing the frame and segment terms is a
    projection, so residuals and their derivatives are the doubly centred values and the
    Gauss-Newton normal equations are sums of their products.
    """

    def __init__(self, squares: list[np.ndarray]):
        squares = [np.asarray(s, dtype=np.float32) for s in squares]
        for s in squares:
            if s.ndim != 3 or s.shape[1:] != (len(RIGID_SEGMENTS), 3) or len(s) < 2:
                raise ValueError(f"expected segment squares [T >= 2, {len(RIGID_SEGMENTS)}, 3], got {s.shape}")
        self.n_frames = np.array([len(s) for s in squares], dtype=np.int64)
        self._chunks: list[tuple[slice, np.ndarray, np.ndarray]] = []  # (sequences, starts, [M, S, 3])
        first = 0
        while first < len(squares):
            last, frames = first, 0
            while last < len(squares) and (last == first or frames + len(squares[last]) <= _RIGID_CHUNK_FRAMES):
                frames += len(squares[last])
                last += 1
            lengths = self.n_frames[first:last]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            self._chunks.append((slice(first, last), starts, np.concatenate(squares[first:last])))
            first = last

    @classmethod
    def from_hand_sequences(cls, hand_sequences: Iterable[np.ndarray]) -> RigidProblem:
        """From hand-sequences `[T, 21, 3]` (complete frames); those of fewer than 2 frames say
        nothing about the scale and are left out."""
        return cls([segment_squares(h) for h in hand_sequences if len(h) >= 2])

    def __len__(self) -> int:
        return len(self.n_frames)

    def terms(self, log_scales: np.ndarray, fit_z: bool) -> RigidTerms:
        """`log_scales [n, 2]` (log y scale, log z scale) per hand-sequence -> `RigidTerms`."""
        k = 2 if fit_z else 1
        n = len(self)
        rss, gradient, hessian = np.zeros(n), np.zeros((n, k)), np.zeros((n, k, k))
        for sequences, starts, squares in self._chunks:
            lengths = self.n_frames[sequences]
            factors = np.exp(2 * log_scales[sequences]).astype(np.float32)  # [n_chunk, 2]
            y_part = squares[..., 1] * np.repeat(factors[:, 0], lengths)[:, None]
            z_part = squares[..., 2] * np.repeat(factors[:, 1], lengths)[:, None]
            length2 = np.maximum(squares[..., 0] + y_part + z_part, np.float32(1e-30))
            # 2 log length and its derivatives by log s and log c, centred per frame here and
            # per segment through the column sums below
            centred = [np.log(length2), 2 * y_part / length2] + ([2 * z_part / length2] if fit_z else [])
            for values in centred:
                values -= values.mean(axis=1, keepdims=True)
            column_sums = [np.add.reduceat(v, starts, axis=0, dtype=np.float64) for v in centred]
            products = np.empty((len(lengths), k + 1, k + 1))
            for i, j in itertools.combinations_with_replacement(range(k + 1), 2):
                frame_sums = np.einsum("ts,ts->t", centred[i], centred[j])
                total = np.add.reduceat(frame_sums, starts, dtype=np.float64)
                products[:, i, j] = products[:, j, i] = total - (column_sums[i] * column_sums[j]).sum(1) / lengths
            rss[sequences] = products[:, 0, 0]
            gradient[sequences] = products[:, 0, 1:]
            hessian[sequences] = products[:, 1:, 1:]
        return RigidTerms(rss, gradient, hessian)

    def fit(self, groups: np.ndarray, n_groups: int, fit_z: bool = True, z_scale: float = 1.0,
            start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, RigidTerms]:
        """Fit one pair of scales per group of hand-sequences, all groups at once.

        Returns `log_scales [n_groups, 2]`, `determined [n_groups]` (False where the hands
        never turn, so nothing pins the y scale), and the terms per hand-sequence at its
        group's solution (what the bootstrap re-weights).
        """
        k = 2 if fit_z else 1
        groups = np.asarray(groups)
        log_scales = np.zeros((n_groups, 2)) if start is None else np.array(start, dtype=np.float64)
        if not fit_z:
            log_scales[:, 1] = np.log(z_scale)
        terms = self.terms(log_scales[groups], fit_z)
        totals = _group_totals(terms, groups, n_groups)
        shrink = np.ones(n_groups)
        for _ in range(_MAX_ITERATIONS):
            step = _newton_step(totals.gradient, totals.hessian)
            step = np.clip(step, -_MAX_LOG_STEP, _MAX_LOG_STEP) * shrink[:, None]
            if np.all(np.abs(step) < _LOG_STEP_TOLERANCE):
                break
            trial = log_scales.copy()
            trial[:, :k] += step
            trial_terms = self.terms(trial[groups], fit_z)
            trial_totals = _group_totals(trial_terms, groups, n_groups)
            # float32 sums: accept a step that does not raise the objective beyond rounding
            better = trial_totals.rss <= totals.rss * (1 + 1e-6) + 1e-12
            log_scales = np.where(better[:, None], trial, log_scales)
            terms = _select_terms(better[groups], trial_terms, terms)
            totals = _select_terms(better, trial_totals, totals)
            shrink = np.where(better, 1.0, shrink / 2)
        frames = np.bincount(groups, weights=self.n_frames * len(RIGID_SEGMENTS), minlength=n_groups)
        determined = totals.hessian[:, 0, 0] > 1e-6 * frames
        return log_scales, determined, terms


def _group_totals(terms: RigidTerms, groups: np.ndarray, n_groups: int) -> RigidTerms:
    def total(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n_groups,) + values.shape[1:])
        np.add.at(out, groups, values)
        return out

    return RigidTerms(total(terms.rss), total(terms.gradient), total(terms.hessian))


def _select_terms(take_new: np.ndarray, new: RigidTerms, old: RigidTerms) -> RigidTerms:
    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(take_new.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    return RigidTerms(pick(new.rss, old.rss), pick(new.gradient, old.gradient), pick(new.hessian, old.hessian))


def _newton_step(gradient: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """`-H^-1 g` for stacks `[..., k]`, `[..., k, k]`, with a tiny ridge so that a direction the
    data do not inform (z when no hand ever tilts out of the image plane) stays where it is."""
    k = gradient.shape[-1]
    ridge = 1e-9 * np.trace(hessian, axis1=-2, axis2=-1)[..., None, None] + 1e-300
    return -np.linalg.solve(hessian + ridge * np.eye(k), gradient[..., None])[..., 0]


@dataclass(frozen=True)
class RigidFit:
    """The rigid method's answer for some hand-sequences."""

    y_scale: float
    z_scale: float
    n_frames: int
    n_sequences: int


def fit_rigid(hand_sequences: Iterable[np.ndarray], z_scale: float | None = None) -> RigidFit:
    """Rigid estimate from hand-sequences `[T, 21, 3]` (complete frames only), pooled.

    `z_scale=None` fits the unit of z along with the y scale; a number holds z at that factor.
    """
    problem = RigidProblem.from_hand_sequences(hand_sequences)
    if len(problem) == 0:
        raise SignpipeError("rigid y scale: expected hand-sequences of at least 2 frames, found none")
    log_scales, determined, _ = problem.fit(
        np.zeros(len(problem), dtype=np.int64), 1, fit_z=z_scale is None, z_scale=z_scale or 1.0
    )
    if not determined[0]:
        raise SignpipeError("rigid y scale: the hands never turn, so their shape does not fix the y scale")
    y_scale, fitted_z = np.exp(log_scales[0])
    return RigidFit(float(y_scale), float(fitted_z), int(problem.n_frames.sum()), len(problem))


def y_scale_rigid(hand_sequences: Iterable[np.ndarray], z_scale: float | None = None) -> float:
    """The rigid method's y scale of hand-sequences `[T, 21, 3]` (see `fit_rigid`)."""
    return fit_rigid(hand_sequences, z_scale).y_scale


# --- a corpus ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AspectEstimate:
    """A corpus' y scale (multiply normalized y by it), with its uncertainty and support.

    `ci_low`/`ci_high`: percentile bootstrap interval at `confidence`. `z_scale`: the rigid
    method's unit of z relative to x (fitted, or as held), None for the affine method.
    `per_participant`: participant id -> `{"y_scale", "ci": [low, high], "n_frames",
    "n_sequences"}` (and `"z_scale"` for rigid) of the chosen method; `comparison`: the other
    method's overall result in the same form plus its `"method"`. Values the data do not
    determine (a participant whose hands never turn) are NaN.
    """

    y_scale: float
    ci_low: float
    ci_high: float
    n_frames: int
    n_sequences: int
    method: str
    per_participant: dict[int, dict[str, Any]] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    z_scale: float | None = None
    n_hand_sequences: int = 0
    confidence: float = 0.95
    n_bootstrap: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes null, participant ids become strings."""
        raw = asdict(self)
        raw["per_participant"] = {str(k): v for k, v in self.per_participant.items()}
        return _json_ready(raw)


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def hand_sequences_of(frames: np.ndarray) -> list[np.ndarray]:
    """Both hands of a sequence `[T, 42, 3]` (left hand points, then right hand points), each
    as a hand-sequence of its complete frames; a hand never seen gives none."""
    out = []
    for hand in (frames[:, :21], frames[:, 21:42]):
        complete = np.isfinite(hand).all(axis=(1, 2))
        if complete.any():
            out.append(np.asarray(hand[complete], dtype=np.float64))
    return out


class _HandStatistics:
    """What both estimators need from a corpus, gathered while it is read once.

    Affine: per corpus sequence, the sum and count of accepted frame values (exact, streamed).
    Rigid: the segment squares of every hand-sequence, thinned to `MAX_RIGID_FRAMES`.
    """

    def __init__(self) -> None:
        self.participants: list[int] = []
        self.n_hand_sequences = 0
        self.affine_sums: list[float] = []
        self.affine_counts: list[int] = []
        self.rigid_squares: list[np.ndarray] = []
        self.rigid_positions: list[int] = []  # corpus sequence of each stored hand-sequence
        self._stride = 1
        self._stored_frames = 0

    def add(self, participant_id: int, hand_frames: np.ndarray) -> None:
        hands = hand_sequences_of(hand_frames)
        position = len(self.participants)
        self.participants.append(int(participant_id))
        self.n_hand_sequences += len(hands)
        frame_scales = frame_y_scales_affine(np.concatenate(hands) if hands else np.zeros((0, 21, 3)))
        accepted = affine_accepted(frame_scales)
        self.affine_sums.append(float(frame_scales[accepted].sum()))
        self.affine_counts.append(int(accepted.sum()))
        for hand in hands:
            kept = hand[:: self._stride]
            if len(kept) >= 2:
                self.rigid_squares.append(segment_squares(kept))
                self.rigid_positions.append(position)
                self._stored_frames += len(kept)
        while self._stored_frames > MAX_RIGID_FRAMES:
            self._thin()

    def _thin(self) -> None:
        self._stride *= 2
        pairs = [(p, s[::2]) for p, s in zip(self.rigid_positions, self.rigid_squares) if len(s) >= 4]
        self.rigid_positions = [p for p, _ in pairs]
        self.rigid_squares = [s for _, s in pairs]
        self._stored_frames = sum(len(s) for s in self.rigid_squares)


@dataclass(frozen=True)
class _AffineSums:
    """Per corpus sequence: the sum of its accepted frame values and how many (`used`)."""

    sums: np.ndarray
    used: np.ndarray

    def estimate(self, rows: np.ndarray) -> dict[str, float]:
        count = self.used[rows].sum()
        return {"y_scale": float(self.sums[rows].sum() / count) if count > 0 else np.nan}

    def replicates(self, rows: np.ndarray, weights: np.ndarray, point: dict[str, float]) -> np.ndarray:
        """Bootstrap counts `[B, len(rows)]` of the sequences `rows` -> replicate y scales `[B]`."""
        counts = weights @ self.used[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(counts > 0, (weights @ self.sums[rows]) / counts, np.nan)


@dataclass(frozen=True)
class _RigidSolution:
    """The rigid fit of each group (the whole corpus, or each participant), with each corpus
    sequence's gradient and Hessian at its group's solution."""

    log_scales: dict[int, np.ndarray]  # group -> (log y, log z)
    determined: dict[int, bool]
    gradient: np.ndarray  # [n_sequences, k]
    hessian: np.ndarray  # [n_sequences, k, k]
    used: np.ndarray
    group_of: np.ndarray  # [n_sequences] group of each corpus sequence

    def estimate(self, rows: np.ndarray) -> dict[str, float]:
        group = int(self.group_of[rows[0]])
        if not self.determined[group] or self.used[rows].sum() == 0:
            return {"y_scale": np.nan, "z_scale": np.nan}
        y_scale, z_scale = np.exp(self.log_scales[group])
        return {"y_scale": float(y_scale), "z_scale": float(z_scale)}

    def replicates(self, rows: np.ndarray, weights: np.ndarray, point: dict[str, float]) -> np.ndarray:
        """One Newton step from the group's solution on each replicate's re-weighted sums: the
        replicate's minimizer to first order, without refitting."""
        step = _newton_step(weights @ self.gradient[rows], np.einsum("bn,nij->bij", weights, self.hessian[rows]))
        return point["y_scale"] * np.exp(np.clip(step[:, 0], -1.0, 1.0))


def _solve_rigid(statistics: _HandStatistics, participant: np.ndarray, z_scale: float | None
                 ) -> tuple[_RigidSolution, _RigidSolution]:
    """Rigid fits for the corpus and for every participant (all participants in one fit)."""
    n = len(participant)
    fit_z = z_scale is None
    k = 2 if fit_z else 1
    used = np.zeros(n)
    positions = np.array(statistics.rigid_positions, dtype=np.int64)
    if len(positions) == 0:
        empty = _RigidSolution({0: np.zeros(2)}, {0: False}, np.zeros((n, k)), np.zeros((n, k, k)), used,
                               np.zeros(n, dtype=np.int64))
        return empty, empty
    problem = RigidProblem(statistics.rigid_squares)
    np.add.at(used, positions, problem.n_frames)

    def solve(group_of_sequence: np.ndarray, n_groups: int, start: np.ndarray | None) -> _RigidSolution:
        log_scales, determined, terms = problem.fit(
            group_of_sequence[positions], n_groups, fit_z=fit_z, z_scale=z_scale or 1.0, start=start
        )
        gradient, hessian = np.zeros((n, k)), np.zeros((n, k, k))
        np.add.at(gradient, positions, terms.gradient)
        np.add.at(hessian, positions, terms.hessian)
        return _RigidSolution(dict(enumerate(log_scales)), dict(enumerate(determined.tolist())),
                              gradient, hessian, used, group_of_sequence)

    overall = solve(np.zeros(n, dtype=np.int64), 1, None)
    ids, group_of = np.unique(participant, return_inverse=True)
    per_participant = solve(group_of, len(ids), np.repeat(overall.log_scales[0][None], len(ids), axis=0))
    return overall, per_participant


def estimate_y_scale(
    corpus_or_dir: Any,
    method: str = DEFAULT_METHOD,
    max_sequences: int | None = None,
    map_path: str | Path | None = None,
    z_scale: float | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> AspectEstimate:
    """Estimate a corpus' y scale, overall and per participant, with a bootstrap interval.

    `corpus_or_dir`: a corpus directory (either Kaggle layout), an opened corpus
    (`signpipe.data.corpus.open_corpus`), or `LandmarkSequence`s of all 543 points or of the 42
    hand points (left hand, then right hand). `max_sequences`: read a seeded random subset of
    that many sequences of a corpus (the first that many of an iterable). `z_scale`: None fits
    the unit of z (rigid method), a number holds it.
    Both methods are always computed; `method` picks the one reported, the other goes to
    `comparison`.
    """
    if method not in METHODS:
        raise ConfigError(f"method: expected one of {', '.join(METHODS)}, found {method!r}")
    if max_sequences is not None and max_sequences < 1:
        raise ConfigError(f"max_sequences: expected a positive number of sequences, found {max_sequences}")
    if z_scale is not None and not (np.isfinite(z_scale) and z_scale > 0):
        raise ConfigError(f"z_scale: expected a positive factor (or none, to fit it), found {z_scale}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence: expected a level strictly between 0 and 1, found {confidence}")
    if n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap: expected 0 or more replicates, found {n_bootstrap}")

    statistics = _HandStatistics()
    for participant_id, hand_frames in _hand_frames(corpus_or_dir, max_sequences, map_path, seed):
        statistics.add(participant_id, hand_frames)
    where = _describe(corpus_or_dir)
    if not statistics.participants:
        raise SignpipeError(f"{where}: expected at least one sequence, found none")

    participant = np.array(statistics.participants, dtype=np.int64)
    affine = _AffineSums(np.array(statistics.affine_sums), np.array(statistics.affine_counts, dtype=np.float64))
    rigid_overall, rigid_per_participant = _solve_rigid(statistics, participant, z_scale)
    overall = {"affine": affine, "rigid": rigid_overall}
    by_participant = {"affine": affine, "rigid": rigid_per_participant}
    if overall[method].used.sum() == 0:
        needs = "complete hands in at least two frames of a sequence" if method == "rigid" else "complete hands"
        raise SignpipeError(f"{where}: expected {needs} for the {method} y scale, found none")

    everything = np.arange(len(participant))
    summaries = {m: _summarize(overall[m], everything, n_bootstrap, confidence, (seed, i, 0))
                 for i, m in enumerate(METHODS)}
    chosen = summaries[method]
    if not np.isfinite(chosen["y_scale"]):
        raise SignpipeError(f"{where}: expected hands that turn during a sequence, found none, so the {method} "
                            "y scale is not determined")
    per_participant = {
        int(p): _summarize(by_participant[method], np.flatnonzero(participant == p), n_bootstrap, confidence,
                           (seed, METHODS.index(method), int(p) % 2**63 + 1))
        for p in np.unique(participant)
    }
    other = next(m for m in METHODS if m != method)
    return AspectEstimate(
        y_scale=chosen["y_scale"],
        ci_low=chosen["ci"][0],
        ci_high=chosen["ci"][1],
        n_frames=chosen["n_frames"],
        n_sequences=chosen["n_sequences"],
        method=method,
        per_participant=per_participant,
        comparison={"method": other, **summaries[other]},
        z_scale=chosen.get("z_scale"),
        n_hand_sequences=statistics.n_hand_sequences,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
    )


def _summarize(estimator: _AffineSums | _RigidSolution, rows: np.ndarray, n_bootstrap: int, confidence: float,
               rng_key: tuple[int, ...]) -> dict[str, Any]:
    """Point estimate over corpus sequences `rows` and a percentile bootstrap over them."""
    point = estimator.estimate(rows)
    ci = [np.nan, np.nan]
    if n_bootstrap > 0 and np.isfinite(point["y_scale"]):
        rng = np.random.default_rng(rng_key)
        n = len(rows)
        draws = rng.integers(0, n, size=(n_bootstrap, n)) + n * np.arange(n_bootstrap)[:, None]
        weights = np.bincount(draws.ravel(), minlength=n_bootstrap * n).reshape(n_bootstrap, n).astype(np.float64)
        replicates = estimator.replicates(rows, weights, point)
        replicates = replicates[np.isfinite(replicates)]
        if len(replicates):
            tail = 100 * (1 - confidence) / 2
            ci = [float(np.percentile(replicates, tail)), float(np.percentile(replicates, 100 - tail))]
    used = estimator.used[rows]
    return {**point, "ci": ci, "n_frames": int(used.sum()), "n_sequences": int((used > 0).sum())}


def _hand_frames(corpus_or_dir: Any, max_sequences: int | None, map_path: str | Path | None, seed: int
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """`(participant id, hand frames [T, 42, 3])` of every sequence to use."""
    hand_points = schema.LEFT_HAND + schema.RIGHT_HAND
    if isinstance(corpus_or_dir, (str, Path)):
        from signpipe.data.corpus import open_corpus

        corpus_or_dir = open_corpus(corpus_or_dir, map_path=map_path)
    if hasattr(corpus_or_dir, "iter_sequences"):
        sequence_ids = None
        if max_sequences is not None and max_sequences < len(corpus_or_dir):
            ids = corpus_or_dir.metadata["sequence_id"].to_numpy()
            sequence_ids = np.random.default_rng(seed).choice(ids, size=max_sequences, replace=False)
        sequences: Iterable[Any] = corpus_or_dir.iter_sequences(points=hand_points, sequence_ids=sequence_ids)
    else:
        sequences = itertools.islice(corpus_or_dir, max_sequences)
    for sequence in sequences:
        frames = np.asarray(sequence.frames)
        points = tuple(range(schema.N_POINTS)) if sequence.points is None else tuple(sequence.points)
        if points != hand_points:
            position = {p: i for i, p in enumerate(points)}
            missing = [p for p in hand_points if p not in position]
            if missing:
                raise SignpipeError(f"sequence {sequence.sequence_id}: expected both hands' 42 points, "
                                    f"found {len(missing)} of them missing")
            frames = frames[:, [position[p] for p in hand_points]]
        if frames.ndim != 3 or frames.shape[1:] != (len(hand_points), 3):
            raise SignpipeError(f"sequence {sequence.sequence_id}: expected hand frames [T, 42, 3], "
                                f"found {frames.shape}")
        yield sequence.participant_id, frames


def _describe(corpus_or_dir: Any) -> str:
    if isinstance(corpus_or_dir, (str, Path)):
        return str(corpus_or_dir)
    root = getattr(corpus_or_dir, "root", None)
    return str(root) if root is not None else "sequences"
