"""Training-time augmentation of landmark sequences (the fingerspelling seed's pipeline).

Every transform is `transform(sample, rng) -> sample` on a `Sample` (points `[T, P, 3]`, label,
optional per-frame alignment), draws only from the `numpy.random.Generator` it is given, and works
on whole arrays (no loop over frames or points). `default_pipeline(max_length)` chains them as the
seed did; `sample` states the conventions for missing points and labels that all of them keep.

    augment = default_pipeline(max_length=384)
    out = augment(Sample(points, label), np.random.default_rng(seed))
    out.points, out.mask, out.label  # [384, 75, 3], [384], characters CTC can emit
"""

from signpipe.landmarks.augment.geometry import (
    LIP_MIRROR_PARTNERS,
    POSE_MIRROR_PARTNERS,
    HorizontalFlip,
    Normalize,
    RandomInterpolatedRotation,
    RandomScale,
    RandomShear,
    RandomShift,
    feature_mirror,
    rotation_matrices,
)
from signpipe.landmarks.augment.masking import FeatureMask, FrameBlockMask, FrameNoise, choose_share
from signpipe.landmarks.augment.pipeline import default_pipeline
from signpipe.landmarks.augment.sample import Sample, collapse_alignment, ctc_min_frames, missing_points
from signpipe.landmarks.augment.timeline import (
    AlignCTCLabel,
    FitLength,
    Pad,
    RandomResample,
    TimeFlip,
    Truncate,
    resample_alignment,
    resample_frames,
)
from signpipe.landmarks.augment.transform import LandmarkGroups, Sequential, Transform

__all__ = [
    "LIP_MIRROR_PARTNERS",
    "POSE_MIRROR_PARTNERS",
    "AlignCTCLabel",
    "FeatureMask",
    "FrameBlockMask",
    "FrameNoise",
    "HorizontalFlip",
    "LandmarkGroups",
    "Normalize",
    "Pad",
    "RandomInterpolatedRotation",
    "RandomResample",
    "RandomScale",
    "RandomShear",
    "RandomShift",
    "Sample",
    "Sequential",
    "TimeFlip",
    "Transform",
    "FitLength",
    "Truncate",
    "choose_share",
    "collapse_alignment",
    "ctc_min_frames",
    "default_pipeline",
    "feature_mirror",
    "missing_points",
    "resample_alignment",
    "resample_frames",
    "rotation_matrices",
]
