"""Synthetic corpora in the exact Kaggle layouts, with ground truth to score pipelines against.

`generate_fingerspelling` writes an asl-fingerspelling corpus (`train.csv`, wide parquet files
under `train_landmarks/`, `character_to_prediction_index.json`); `generate_isolated_signs` an
asl-signs corpus (`train.csv`, long parquet files under `train_landmark_files/<participant>/`,
`sign_to_prediction_index_map.json`). The landmarks come from a kinematic 3-D hand whose joint
angles follow one fixed hand shape per character (`shapes.py`) or a fixed motion template per
sign (`sign_templates.py`), with co-articulated transitions, per-signer hands, speed, handedness
and camera, 3-D wrist rotation, a body and face that move with it, and a camera that squeezes y
by a planted aspect ratio (`camera.py`).

Ground truth sits beside the Kaggle files, in the corpus root (`ground_truth_dir`):

- `synth_truth.json`: generator, version, kind, seed, n_sequences, the planted `y_scale` (canvas
  height / width; y * y_scale restores square geometry), y_scale_spread, alphabet_seed,
  sign_template_seed, shapes_digest, hand_nan_fraction, and `participants`: per participant id,
  handedness, signing_hand, hand size, speed, miss fraction, own y_scale and camera, n_sequences.
- `synth_alignment.parquet` (fingerspelling only): sequence_id int64, char_index int16,
  character string, start_frame int32, end_frame int32 (exclusive): where each character of each
  phrase dominates, in the parquet's `frame` numbering.

`read_ground_truth(dir)` returns both (the table is None for isolated signs) and
`planted_y_scale(dir)` the planted y scale; both raise `CorpusError` on a corpus without truth.
"""

from signpipe.data.synth.corpus import (
    FINGERSPELLING_Y_SCALE,
    ISOLATED_SIGNS_Y_SCALE,
    SynthCorpus,
    generate_fingerspelling,
    generate_isolated_signs,
)
from signpipe.data.synth.truth import ALIGNMENT_FILE, TRUTH_FILE, ground_truth_dir, planted_y_scale, read_ground_truth

__all__ = [
    "ALIGNMENT_FILE",
    "FINGERSPELLING_Y_SCALE",
    "ISOLATED_SIGNS_Y_SCALE",
    "TRUTH_FILE",
    "SynthCorpus",
    "generate_fingerspelling",
    "generate_isolated_signs",
    "ground_truth_dir",
    "planted_y_scale",
    "read_ground_truth",
]
