"""The fingerspelling seed's augmentation pipeline, as used for pretraining and finetuning."""

from __future__ import annotations

import numpy as np

from signpipe.errors import ConfigError
from signpipe.landmarks.augment.geometry import (
    HorizontalFlip,
    RandomInterpolatedRotation,
    RandomScale,
    RandomShear,
    RandomShift,
    feature_mirror,
)
from signpipe.landmarks.augment.masking import FeatureMask, FrameBlockMask, FrameNoise
from signpipe.landmarks.augment.timeline import AlignCTCLabel, Pad, RandomResample, TimeFlip, Truncate
from signpipe.landmarks.augment.transform import LandmarkGroups, Sequential


def default_pipeline(max_length: int, train: bool = True) -> Sequential:
    """The seed's pipeline (its probabilities and limits) for samples of the features module.

    Input: `Sample`s whose points are `features.featurize` output, `[T, 75, 3]` float32: y
    already scaled by the corpus' aspect ratio, then each group (dominant hand 21, pose 11-24 14,
    lips 40) centred and divided by its largest |x| or |y|, missing points 0. The seed normalized
    inside its pipeline; here the input is normalized already, so that step is not repeated.
    Output: `max_length` frames, missing points and padding 0, `mask` marking the real frames,
    a label CTC can emit in them.

    `train=False` keeps only what evaluation needs: truncate, fit the label, pad.

    One deliberate change from the seed: it flipped each group with its own coin and never swapped
    left and right landmarks; here one coin mirrors the whole sample and pose and lip landmarks trade
    slots with their partners (`feature_mirror`), so a flipped sample is a mirrored signer.
    """
    if max_length < 1:
        raise ConfigError(f"default_pipeline: max_length must be >= 1, got {max_length}")
    # imported here: the features module pulls in jax, which augmentation workers do not need
    from signpipe.landmarks import features

    groups = features.GROUPS
    if not train:
        return Sequential(Truncate(max_length), AlignCTCLabel(max_length), Pad(max_length))
    return Sequential(
        TimeFlip(p=0.5),
        RandomResample(limit=0.5, p=0.5),
        Truncate(max_length),
        AlignCTCLabel(max_length),
        LandmarkGroups(
            (
                FrameBlockMask(ratio=0.8, block_size=3, p=0.1),
                FrameBlockMask(ratio=0.1, block_size=3, p=0.25),
                FrameBlockMask(ratio=0.1, block_size=3, p=0.25),
            ),
            lengths=groups,
        ),
        FrameNoise(ratio=0.1, noise_stdev=0.3, p=0.25),
        FeatureMask(ratio=0.1, p=0.1),
        HorizontalFlip(lengths=groups, mirror=feature_mirror(), p=0.5),
        LandmarkGroups(
            Sequential(
                RandomInterpolatedRotation(0.2, np.pi / 4, p=0.5),
                RandomShear(limit=0.2),
                RandomScale(limit=0.2),
                RandomShift(stdev=0.1),
            ),
            lengths=groups,
        ),
        Pad(max_length),
    )
