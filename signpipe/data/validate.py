"""Check a corpus directory before a pipeline spends hours on it, and describe what is in it.

`validate_corpus` goes through every check even after failures, so one run lists everything to
fix. It reads only what each check needs: parquet schemas come from the footers, and of the
landmark data only the frame layout and one point per hand (a hand is either fully present or
fully NaN in a frame), which is enough for frame counts and hand-presence figures. For the wide
fingerspelling files that is 8 of 1,631 columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from signpipe.data import fingerspelling, signs
from signpipe.data.corpus import (
    FINGERSPELLING,
    METADATA_FILE,
    check_columns,
    detect_kind,
    find_label_map,
    open_parquet,
    quote_items,
    read_parquet_columns,
)
from signpipe.data.schema import (
    CHARACTER_MAP_FILE,
    LEFT_HAND,
    N_POINTS,
    PARTS,
    POINT_NAMES,
    RIGHT_HAND,
    SIGN_MAP_FILE,
    WIDE_COLUMNS,
    load_map,
    wide_columns,
)
from signpipe.errors import CorpusError, Problem

#: the point of each hand whose presence stands for the whole hand: the wrist
HAND_PROBES = (LEFT_HAND[0], RIGHT_HAND[0])


@dataclass
class PartSummary:
    """Size and hand coverage of one part (train / supplemental) as far as it could be read."""

    part: str
    sequences: int
    participants: int
    sequences_read: int = 0
    frames_total: int = 0
    frames_min: int | None = None
    frames_median: float | None = None
    frames_mean: float | None = None
    frames_max: int | None = None
    no_hand_fraction: float | None = None
    no_left_hand_fraction: float | None = None
    no_right_hand_fraction: float | None = None
    no_dominant_hand_fraction: float | None = None


@dataclass
class ValidationReport:
    """Everything found in one corpus: problems (it cannot be used as is), warnings (it can, but
    something was not checked or is unusual) and a summary per part."""

    root: Path
    kind: str | None = None
    map_path: Path | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    summary: dict[str, PartSummary] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "kind": self.kind,
            "map": None if self.map_path is None else str(self.map_path),
            "ok": self.ok,
            "problems": [asdict(p) for p in self.problems],
            "warnings": [asdict(p) for p in self.warnings],
            "summary": {part: asdict(s) for part, s in self.summary.items()},
        }


class _HandCounts:
    """Per-sequence frame and missing-hand counts of one part, gathered file by file."""

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.no_left: list[int] = []
        self.no_right: list[int] = []
        self.no_hand: list[int] = []

    def add(self, left_missing: np.ndarray, right_missing: np.ndarray) -> None:
        self.frames.append(len(left_missing))
        self.no_left.append(int(left_missing.sum()))
        self.no_right.append(int(right_missing.sum()))
        self.no_hand.append(int((left_missing & right_missing).sum()))

    def summarize(self, part: str, metadata: pd.DataFrame) -> PartSummary:
        summary = PartSummary(part, len(metadata), int(metadata["participant_id"].nunique()), len(self.frames))
        if not self.frames:
            return summary
        frames = np.asarray(self.frames)
        total = int(frames.sum())
        no_left, no_right = np.asarray(self.no_left), np.asarray(self.no_right)
        # the dominant hand of a sequence is the one MediaPipe found in more frames
        no_dominant = np.minimum(no_left, no_right)
        summary.frames_total = total
        summary.frames_min, summary.frames_max = int(frames.min()), int(frames.max())
        summary.frames_median, summary.frames_mean = float(np.median(frames)), float(frames.mean())
        if total:
            summary.no_hand_fraction = sum(self.no_hand) / total
            summary.no_left_hand_fraction = int(no_left.sum()) / total
            summary.no_right_hand_fraction = int(no_right.sum()) / total
            summary.no_dominant_hand_fraction = int(no_dominant.sum()) / total
        return summary


def validate_corpus(root: str | Path, map_path: str | Path | None = None) -> ValidationReport:
    """Check a corpus in either Kaggle layout and summarize it; never raises for a bad corpus."""
    root = Path(root)
    report = ValidationReport(root)
    try:
        report.kind = detect_kind(root)
    except CorpusError as exc:
        report.problems += exc.problems
        return report
    map_file = CHARACTER_MAP_FILE if report.kind == FINGERSPELLING else SIGN_MAP_FILE
    label_map = _label_map(root, map_file, map_path, report)
    if report.kind == FINGERSPELLING:
        _validate_fingerspelling(root, label_map, report)
    else:
        _validate_signs(root, label_map, report)
    return report


def _label_map(root: Path, map_file: str, map_path: str | Path | None, report: ValidationReport) -> dict[str, int] | None:
    try:
        found = find_label_map(root, map_file, map_path)
        if found is None:
            report.warnings.append(Problem(str(root), f"labels were not checked: expected {map_file} in the corpus "
                                                      "directory or in ../maps, found neither (pass --map)"))
            return None
        label_map = load_map(found)
    except CorpusError as exc:
        report.problems += exc.problems
        return None
    report.map_path = found
    return label_map


def _integer_ids(metadata: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    """Whether the id columns parsed as integers (their dtype problems are already reported)."""
    return all(pd.api.types.is_integer_dtype(metadata[c]) for c in columns)


# --- asl-fingerspelling -------------------------------------------------------------------------


def _validate_fingerspelling(root: Path, label_map: dict[str, int] | None, report: ValidationReport) -> None:
    metadata, problems = fingerspelling.load_metadata(root)
    report.problems += problems
    if metadata is None:
        return
    for part in metadata["part"].unique():
        landmark_dir = root / fingerspelling.PARTS_DIRS[part]
        if not landmark_dir.is_dir():
            report.problems.append(Problem(str(landmark_dir), f"expected the landmark directory of the {part} part, "
                                                              "found no such directory"))
    if label_map is not None:
        report.problems += _phrase_problems(metadata, label_map, root)
    if not _integer_ids(metadata, fingerspelling.INTEGER_COLUMNS):
        return

    stems = metadata["path"].map(lambda p: Path(p).stem)
    mismatched = metadata[stems != metadata["file_id"].astype(str)]
    for (part, path), rows in mismatched.groupby(["part", "path"], sort=False):
        report.problems.append(Problem(str(root / fingerspelling.PARTS_FILES[part]),
                                       f"expected path <dir>/{rows['file_id'].iloc[0]}.parquet for file_id "
                                       f"{rows['file_id'].iloc[0]}, found {path}"))

    counts = {part: _HandCounts() for part in metadata["part"].unique()}
    hand_columns = ["sequence_id", "frame", *wide_columns(HAND_PROBES)]
    expected = {"sequence_id": "integer", "frame": "integer", **dict.fromkeys(WIDE_COLUMNS, "floating")}
    for (part, relative_path), rows in metadata.groupby(["part", "path"], sort=False):
        path = root / relative_path
        listed = rows["sequence_id"].to_numpy()
        if not path.is_file():
            report.problems.append(Problem(str(path), f"expected the parquet file of {len(listed):,} sequence"
                                                      f"{'s' if len(listed) > 1 else ''} in {fingerspelling.PARTS_FILES[part]}, "
                                                      "found no such file"))
            continue
        try:
            parquet = open_parquet(path)
        except CorpusError as exc:
            report.problems += exc.problems
            continue
        schema_problems = check_columns(parquet.schema_arrow, expected, path)
        report.problems += schema_problems
        if schema_problems and check_columns(parquet.schema_arrow, {c: expected[c] for c in hand_columns}, path):
            continue  # the columns the remaining checks read are themselves missing or mistyped
        found, listed_ids = [], set(listed.tolist())
        try:
            for sequence_id, frames in fingerspelling.read_wide_sequences(path, None, HAND_PROBES, skip_missing=True,
                                                                          parquet=parquet):
                found.append(sequence_id)
                if sequence_id in listed_ids:
                    missing_hand = np.isnan(frames[:, :, 0])
                    counts[part].add(missing_hand[:, 0], missing_hand[:, 1])
        except CorpusError as exc:
            report.problems += exc.problems
            continue
        found_ids = np.asarray(found, dtype=np.int64)
        absent = listed[~np.isin(listed, found_ids)]
        if len(absent):
            report.problems.append(Problem(str(path), f"expected frames of sequence_id {quote_items(absent.tolist())} "
                                                      f"(listed in {fingerspelling.PARTS_FILES[part]}), found no rows"))
        unlisted = found_ids[~np.isin(found_ids, metadata["sequence_id"].to_numpy())]
        if len(unlisted):
            report.warnings.append(Problem(str(path), f"found sequence_id {quote_items(unlisted.tolist())} in the file "
                                                      "but not in the metadata; they will not be used"))
    for part, part_counts in counts.items():
        report.summary[part] = part_counts.summarize(part, metadata[metadata["part"] == part])


def _phrase_problems(metadata: pd.DataFrame, label_map: dict[str, int], root: Path) -> list[Problem]:
    problems = []
    for part, rows in metadata.groupby("part", sort=False):
        phrases = rows["phrase"].astype(str)
        unknown = sorted(set("".join(phrases.tolist())) - set(label_map))
        for character in unknown:
            holders = rows.loc[phrases.str.contains(character, regex=False).to_numpy(), "sequence_id"]
            problems.append(Problem(str(root / fingerspelling.PARTS_FILES[part]),
                                    f"expected phrase characters from the character map, found {character!r} in "
                                    f"{len(holders):,} phrase{'s' if len(holders) > 1 else ''} "
                                    f"(sequence_id {quote_items(holders.tolist())})"))
    return problems


# --- asl-signs ----------------------------------------------------------------------------------

LONG_COLUMNS = {"frame": "integer", "row_id": "string", "type": "string", "landmark_index": "integer",
                "x": "floating", "y": "floating", "z": "floating"}
PART_NAMES = [part for part, _ in PARTS]
PART_NAME_ARRAY = pa.array(PART_NAMES, pa.string())
#: the part code and index of each of the 543 rows of a frame, the order every file must follow
EXPECTED_TYPE_CODES = np.array([PART_NAMES.index(part) for part, _ in POINT_NAMES], dtype=np.int32)
EXPECTED_LANDMARK_INDEX = np.array([i for _, i in POINT_NAMES], dtype=np.int64)


def _validate_signs(root: Path, label_map: dict[str, int] | None, report: ValidationReport) -> None:
    metadata, problems = signs.load_metadata(root)
    report.problems += problems
    if metadata is None:
        return
    csv = str(root / METADATA_FILE)
    landmark_dir = root / signs.LANDMARK_DIR
    if not landmark_dir.is_dir():
        report.problems.append(Problem(str(landmark_dir), "expected the landmark directory, found no such directory"))
    if label_map is not None:
        signs_listed = metadata["sign"]
        for sign in sorted(set(signs_listed) - set(label_map)):
            holders = metadata.loc[(signs_listed == sign).to_numpy(), "sequence_id"]
            report.problems.append(Problem(csv, f"expected signs from the sign map, found {sign!r} for "
                                                f"{len(holders):,} sequence{'s' if len(holders) > 1 else ''} "
                                                f"(sequence_id {quote_items(holders.tolist())})"))
    ids_usable = _integer_ids(metadata, signs.INTEGER_COLUMNS)
    counts = _HandCounts()
    for relative_path, participant_id, sequence_id in zip(metadata["path"], metadata["participant_id"], metadata["sequence_id"]):
        path = root / relative_path
        if ids_usable:
            report.problems += _signs_path_problems(csv, relative_path, participant_id, sequence_id)
        try:
            missing_hands = _check_long_file(path, report)
        except CorpusError as exc:
            report.problems += exc.problems
            continue
        if missing_hands is not None:
            counts.add(*missing_hands)
    report.summary["train"] = counts.summarize("train", metadata)


def _signs_path_problems(csv: str, relative_path: str, participant_id: int, sequence_id: int) -> list[Problem]:
    """The competition names each file `<participant_id>/<sequence_id>.parquet`; a file named
    otherwise usually means the csv and the files were taken from different copies."""
    path = Path(relative_path)
    problems = []
    if path.stem != str(sequence_id):
        problems.append(Problem(csv, f"expected the file of sequence_id {sequence_id} to be named {sequence_id}.parquet, "
                                     f"found {relative_path}"))
    if path.parent.name != str(participant_id):
        problems.append(Problem(csv, f"expected the file of sequence_id {sequence_id} in a directory named after "
                                     f"participant_id {participant_id}, found {relative_path}"))
    return problems


def _check_long_file(path: Path, report: ValidationReport) -> tuple[np.ndarray, np.ndarray] | None:
    """Schema, rows per frame and point order of one long file; its per-frame missing hands.

    Reads `frame`, `type`, `landmark_index` and `x` only. Returns `None` when the columns needed
    for the frame checks are themselves missing (already reported as schema problems).
    """
    parquet = open_parquet(path)
    schema = parquet.schema_arrow
    schema_problems = check_columns(schema, LONG_COLUMNS, path)
    report.problems += schema_problems
    usable = [c for c in ("frame", "type", "landmark_index", "x")
              if not check_columns(schema, {c: LONG_COLUMNS[c]}, path)]
    if "frame" not in usable:
        return None
    table = read_parquet_columns(parquet, path, usable)
    n_frames = signs.long_frame_blocks(table.column("frame").to_numpy(), path)
    if "type" in usable and "landmark_index" in usable:
        codes = pc.index_in(table.column("type").cast(pa.string()), value_set=PART_NAME_ARRAY)
        codes = codes.fill_null(-1).to_numpy().reshape(n_frames, N_POINTS)
        indices = table.column("landmark_index").to_numpy().reshape(n_frames, N_POINTS)
        wrong = (codes != EXPECTED_TYPE_CODES) | (indices != EXPECTED_LANDMARK_INDEX)
        if wrong.any():
            frame, row = np.argwhere(wrong)[0]
            found_type = table.column("type")[int(frame * N_POINTS + row)].as_py()
            expected_part, expected_index = POINT_NAMES[row]
            report.problems.append(Problem(str(path), f"expected the {N_POINTS} rows of every frame in the order face 0-467, "
                                                      f"left_hand 0-20, pose 0-32, right_hand 0-20, found {found_type} "
                                                      f"{indices[frame, row]} at row {row} of frame {frame} "
                                                      f"(where {expected_part} {expected_index} belongs)"))
    if "x" not in usable:
        return None
    x = table.column("x").fill_null(np.nan).to_numpy().reshape(n_frames, N_POINTS)
    missing = np.isnan(x[:, list(HAND_PROBES)])
    return missing[:, 0], missing[:, 1]
