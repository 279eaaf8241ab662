"""Landmark layout shared by both Kaggle corpora (REFERENCE.md sections 1 and 3).

Every frame holds 543 MediaPipe Holistic points in one fixed order: face 0-467, left hand 0-20,
pose 0-32, right hand 0-20. Point index `p` below always means the position in that order.
The fingerspelling corpus stores them wide (`x_face_0 ... z_right_hand_20`, all x columns,
then all y, then all z); the isolated-signs corpus stores them long (one row per point).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from signpipe.errors import CorpusError

PARTS: tuple[tuple[str, int], ...] = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))
N_POINTS = 543
AXES = ("x", "y", "z")

PART_OFFSET: dict[str, int] = {}
_offset = 0
for _part, _n in PARTS:
    PART_OFFSET[_part] = _offset
    _offset += _n
PART_SIZE = dict(PARTS)
assert _offset == N_POINTS

#: point index -> (part, index within the part)
POINT_NAMES: tuple[tuple[str, int], ...] = tuple((part, i) for part, n in PARTS for i in range(n))

LEFT_HAND = tuple(range(PART_OFFSET["left_hand"], PART_OFFSET["left_hand"] + 21))
RIGHT_HAND = tuple(range(PART_OFFSET["right_hand"], PART_OFFSET["right_hand"] + 21))

CHARACTER_MAP_FILE = "character_to_prediction_index.json"
SIGN_MAP_FILE = "sign_to_prediction_index_map.json"
#: number of characters in the fingerspelling map; the CTC blank takes the next index.
N_CHARACTERS = 59
CTC_BLANK = N_CHARACTERS
N_SIGNS = 250


def point_index(part: str, i: int) -> int:
    """Position of point `i` of `part` in the 543-point order."""
    if part not in PART_OFFSET or not 0 <= i < PART_SIZE.get(part, 0):
        raise ValueError(f"no landmark {part}[{i}]; parts are {dict(PARTS)}")
    return PART_OFFSET[part] + i


def wide_column(axis: str, point: int) -> str:
    """Wide-layout column name of one coordinate, e.g. `x_right_hand_0`."""
    part, i = POINT_NAMES[point]
    return f"{axis}_{part}_{i}"


def wide_columns(points: Sequence[int] | None = None) -> list[str]:
    """Coordinate columns of `points` (default all 543), axis-major as the corpus stores them.

    The order is all x, then all y, then all z, so `frames.reshape(T, 3, P).transpose(0, 2, 1)`
    turns a row block read in this order into `[T, P, 3]`.
    """
    points = range(N_POINTS) if points is None else points
    return [wide_column(axis, p) for axis in AXES for p in points]


WIDE_COLUMNS: tuple[str, ...] = tuple(wide_columns())


def load_map(path: str | Path) -> dict[str, int]:
    """Read a label map (`character_to_prediction_index.json` or the sign map) and check it."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"label map not found (expected a JSON object label -> index)", str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"not valid JSON ({exc}); expected a JSON object label -> index", str(path)) from None
    if not isinstance(raw, dict) or not raw:
        raise CorpusError("expected a non-empty JSON object label -> index", str(path))
    bad = [k for k, v in raw.items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise CorpusError(f"expected integer indices, found {raw[bad[0]]!r} for {bad[0]!r}", str(path))
    if sorted(raw.values()) != list(range(len(raw))):
        raise CorpusError(f"expected indices 0..{len(raw) - 1}, each once", str(path))
    return dict(raw)


def packaged_map(name: str) -> dict[str, int]:
    """The competition's own map shipped with signpipe (`CHARACTER_MAP_FILE` or `SIGN_MAP_FILE`)."""
    with resources.as_file(resources.files("signpipe.data") / "maps" / name) as p:
        return load_map(p)


def character_table(character_map: Mapping[str, int]) -> np.ndarray:
    """Index -> character lookup array built from `character_to_prediction_index.json`."""
    table = np.full(max(character_map.values()) + 1, "", dtype=object)
    for character, index in character_map.items():
        table[index] = character
    return table


def indices_to_phrase(indices: Sequence[int] | np.ndarray, table: np.ndarray) -> str:
    """Join the characters of `indices`; an index the map does not hold (the blank) gives "",
    as in the Kaggle scorer."""
    indices = np.asarray(indices, dtype=np.int64)
    known = (indices >= 0) & (indices < len(table))
    return "".join(table[indices[known]])
