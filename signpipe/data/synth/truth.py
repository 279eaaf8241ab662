"""Ground truth of a synthetic corpus, written beside (never inside) the Kaggle files.

```
ROOT/synth_truth.json          one JSON object:
    generator        "signpipe.data.synth"
    version          1
    kind             "fingerspelling" | "isolated_signs"
    seed, n_sequences
    y_scale          the planted canvas height / width: multiplying y by it restores square geometry
    y_scale_spread   0 when every participant shares y_scale (else see participants[*].y_scale)
    alphabet_seed, sign_template_seed, shapes_digest   (which fixed alphabet/templates were used)
    hand_nan_fraction  measured share of frames with the signing hand missing
    participants     list of {participant_id, handedness ("right"|"left"), signing_hand
                     ("right_hand"|"left_hand"), hand_size, hand_length_m, frames_per_character,
                     sign_speed, hand_miss_fraction, y_scale, camera {width_m, height_m, origin_x,
                     origin_y, roll_deg}, n_sequences}
ROOT/synth_alignment.parquet   fingerspelling only; one row per character of every phrase:
    sequence_id (int64), char_index (int16, position in the phrase), character (string),
    start_frame (int32), end_frame (int32, exclusive): the frames, numbered as the parquet
    `frame` column, in which that character's hand shape dominates (blend weight >= 1/2).
```
Spans of consecutive characters are contiguous and in order; frames before the first span and after
the last are the hand rising and lowering.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.atomic import atomic_path, atomic_write_text
from signpipe.errors import CorpusError

TRUTH_FILE = "synth_truth.json"
ALIGNMENT_FILE = "synth_alignment.parquet"
GENERATOR = "signpipe.data.synth"
TRUTH_VERSION = 1
ALIGNMENT_SCHEMA = pa.schema(
    [
        ("sequence_id", pa.int64()),
        ("char_index", pa.int16()),
        ("character", pa.string()),
        ("start_frame", pa.int32()),
        ("end_frame", pa.int32()),
    ]
)


def ground_truth_dir(corpus_dir: str | Path) -> Path | None:
    """Where a corpus's ground truth lives (its own root, by convention), or None if it has none.

    Real corpora have none; callers that score against ground truth check this first.
    """
    root = Path(corpus_dir)
    return root if (root / TRUTH_FILE).is_file() else None


def write_ground_truth(root: Path, truth: dict, alignment: pa.Table | None) -> None:
    atomic_write_text(root / TRUTH_FILE, json.dumps(truth, indent=1, sort_keys=True) + "\n")
    if alignment is not None:
        with atomic_path(root / ALIGNMENT_FILE) as tmp:
            pq.write_table(alignment.cast(ALIGNMENT_SCHEMA), tmp, compression="snappy")


def _read_truth_json(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / TRUTH_FILE
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"no {TRUTH_FILE} (expected a corpus written by `signpipe data synth`)", str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"not valid JSON ({exc}); expected the synthetic corpus's ground truth", str(path)) from None
    if not isinstance(truth, dict) or truth.get("generator") != GENERATOR:
        raise CorpusError(f"expected a JSON object with generator {GENERATOR!r}", str(path))
    if truth.get("version") != TRUTH_VERSION:
        raise CorpusError(f"ground truth version {truth.get('version')!r}, expected {TRUTH_VERSION}", str(path))
    return truth


def read_ground_truth(corpus_dir: str | Path) -> tuple[dict, pd.DataFrame | None]:
    """The truth object and, for fingerspelling, the per-character alignment table (else None)."""
    truth = _read_truth_json(corpus_dir)
    if truth.get("kind") != "fingerspelling":
        return truth, None
    path = Path(corpus_dir) / ALIGNMENT_FILE
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        message = f"no {ALIGNMENT_FILE}, expected beside {TRUTH_FILE} for a fingerspelling corpus"
        raise CorpusError(message, str(path)) from None
    missing = [name for name in ALIGNMENT_SCHEMA.names if name not in table.column_names]
    if missing:
        raise CorpusError(f"missing columns {missing}; expected {ALIGNMENT_SCHEMA.names}", str(path))
    return truth, table.select(ALIGNMENT_SCHEMA.names).cast(ALIGNMENT_SCHEMA).to_pandas()


def planted_y_scale(corpus_dir: str | Path) -> float:
    """The y scale the generator planted (canvas height / width), to score an estimate against."""
    truth = _read_truth_json(corpus_dir)
    value = truth.get("y_scale")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise CorpusError(f"y_scale is {value!r}; expected a positive number", str(Path(corpus_dir) / TRUTH_FILE))
    return float(value)
