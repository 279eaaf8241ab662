"""Check a corpus directory before a pipeline spends hours on it, and describe what is in it.

`validate_corpus` goes through every check even after failures, so one run lists everything to
fix. Parquet schemas come from the footers; the landmark values are read in full, in bounded
batches (`SCAN_ROWS` rows of a wide file at a time), because a bad value anywhere can poison
training: every coordinate must be finite, and a part (face, left hand, pose, right hand) is
either wholly NaN in a frame (MediaPipe did not detect it) or not NaN at all
(`signpipe.data.values`). A sequence whose x and y are all zero is a problem too (an empty
export, not landmarks). Frame numbers out of order or repeated within a sequence are warnings:
the readers put frames in frame order. Hand presence is counted from one point per hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from signpipe.data import fingerspelling, signs
from signpipe.data.corpus import detect_kind
from signpipe.data.corpus_base import (
    FINGERSPELLING,
    METADATA_FILE,
    QUOTED_ITEMS,
    _one_line,
    check_columns,
    describe_path,
    find_label_map,
    float32_frames,
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
from signpipe.data.values import describe_frame, frame_faults
from signpipe.errors import CorpusError, Problem

#: the point of each hand whose presence stands for the whole hand: the wrist
HAND_PROBES = (LEFT_HAND[0], RIGHT_HAND[0])
#: rows of a wide landmark file read at a time (all 1,629 coordinates: about 27 MB as float32)
SCAN_ROWS = 4096


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


class _Examples:
    """Frames of one kind of fault in one file: how many, in which sequences, the first few."""

    def __init__(self) -> None:
        self.frames = 0
        self.sequences: set[int] = set()
        self.examples: list[str] = []

    def add(self, rows: np.ndarray, view: np.ndarray, points, ids: np.ndarray, frame_numbers: np.ndarray, kind: str) -> None:
        self.frames += len(rows)
        self.sequences.update(ids[rows].tolist())
        for r in rows[: max(0, QUOTED_ITEMS - len(self.examples))]:
            self.examples.append(f"sequence_id {ids[r]} frame {frame_numbers[r]} ({describe_frame(view, int(r), points, kind)})")

    def message(self) -> str:
        n, m = self.frames, len(self.sequences)
        more = self.frames - len(self.examples)
        return (f"{n:,} frame{'s' if n > 1 else ''} of {m:,} sequence{'s' if m > 1 else ''}: "
                + "; ".join(self.examples) + (f"; and {more:,} more" if more > 0 else ""))


class _ValueFindings:
    """The value and frame-number findings of one landmark file, reported as one problem or
    warning per kind of finding (with the sequences and frames it concerns)."""

    def __init__(self) -> None:
        self.infinite = _Examples()
        self.partly_nan = _Examples()
        self.zero_xy: list[int] = []
        self.no_landmarks: list[int] = []
        self.unordered: list[int] = []
        self.repeated: list[str] = []

    def add_frames(self, view: np.ndarray, points, ids: np.ndarray, frame_numbers: np.ndarray,
                   checked: np.ndarray | None = None) -> None:
        """Value faults of the rows `view [N, P, 3]` (`checked`: which rows count)."""
        faults = frame_faults(view, points)
        for examples, bad, kind in ((self.infinite, faults.infinite, "infinite"),
                                    (self.partly_nan, faults.partly_nan, "partly_nan")):
            if checked is not None:
                bad = bad & checked
            if bad.any():
                examples.add(np.flatnonzero(bad), view, points, ids, frame_numbers, kind)

    def add_sequence(self, sequence_id: int, frame_numbers: np.ndarray, any_finite_xy: bool, any_nonzero_xy: bool,
                     unordered: bool | None = None) -> None:
        """Whole-sequence findings: its frame numbers (in file order unless `unordered` says
        whether they were), whether any x or y is finite / nonzero."""
        if any_finite_xy and not any_nonzero_xy:
            self.zero_xy.append(sequence_id)
        elif not any_finite_xy:
            self.no_landmarks.append(sequence_id)
        if unordered is None:
            unordered = bool(np.any(frame_numbers[1:] < frame_numbers[:-1]))
        if unordered:
            self.unordered.append(sequence_id)
        values, counts = np.unique(frame_numbers, return_counts=True)
        if np.any(counts > 1):
            twice = values[counts > 1]
            self.repeated.append(f"{sequence_id} (frame{'s' if len(twice) > 1 else ''} {quote_items(twice.tolist())})")

    def report_into(self, path: Path, report: ValidationReport) -> None:
        where = str(path)
        if self.infinite.frames:
            report.problems.append(Problem(where, "expected finite landmark coordinates, found infinite values in "
                                                  + self.infinite.message()))
        if self.partly_nan.frames:
            report.problems.append(Problem(where, "expected each part (face, left_hand, pose, right_hand) of a frame "
                                                  "either wholly NaN (not detected) or without NaN, found a part partly "
                                                  "NaN in " + self.partly_nan.message()))
        if self.zero_xy:
            report.problems.append(Problem(where, f"expected landmark coordinates, found x and y all zero in every frame "
                                                  f"of sequence_id {quote_items(self.zero_xy)} (an empty export?)"))
        if self.no_landmarks:
            report.warnings.append(Problem(where, f"found no landmark detected in any frame of sequence_id "
                                                  f"{quote_items(self.no_landmarks)} (every coordinate NaN); they will "
                                                  "train on zeros"))
        if self.unordered:
            report.warnings.append(Problem(where, f"expected frame numbers in increasing order, found them out of order "
                                                  f"in sequence_id {quote_items(self.unordered)} (the readers sort frames "
                                                  "by frame number)"))
        if self.repeated:
            report.warnings.append(Problem(where, f"expected each frame number once per sequence, found repeated frame "
                                                  f"numbers in sequence_id {quote_items(self.repeated)}"))


def _xy_flags(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `view [N, P, 3]`: any finite x or y; any finite nonzero x or y."""
    xy = view[:, :, :2]
    finite = np.isfinite(xy)
    return finite.any(axis=(1, 2)), (finite & (xy != 0)).any(axis=(1, 2))


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


def _no_sequences(metadata: pd.DataFrame, where: Path, report: ValidationReport) -> bool:
    """A metadata csv with a header and no rows is a corpus of nothing: a problem, not "ok"."""
    if len(metadata):
        return False
    report.problems.append(Problem(str(where), "expected at least one sequence, found a header and no rows"))
    return True


def _validate_fingerspelling(root: Path, label_map: dict[str, int] | None, report: ValidationReport) -> None:
    metadata, problems = fingerspelling.load_metadata(root)
    report.problems += problems
    if metadata is None or _no_sequences(metadata, root / fingerspelling.PARTS_FILES["train"], report):
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
                                                      f"found {describe_path(path)}"))
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
        findings = _ValueFindings()
        try:
            found = _scan_wide_file(parquet, path, listed, counts[part], findings)
        except CorpusError as exc:
            report.problems += exc.problems
            continue
        findings.report_into(path, report)
        absent = listed[~np.isin(listed, found)]
        if len(absent):
            report.problems.append(Problem(str(path), f"expected frames of sequence_id {quote_items(absent.tolist())} "
                                                      f"(listed in {fingerspelling.PARTS_FILES[part]}), found no rows"))
        unlisted = found[~np.isin(found, metadata["sequence_id"].to_numpy())]
        if len(unlisted):
            report.warnings.append(Problem(str(path), f"found sequence_id {quote_items(unlisted.tolist())} in the file "
                                                      "but not in the metadata; they will not be used"))
    for part, part_counts in counts.items():
        report.summary[part] = part_counts.summarize(part, metadata[metadata["part"] == part])


def _usable_points(schema: pa.Schema) -> list[int]:
    """The points whose x, y and z columns are all present as floats (all 543 in a sound file)."""
    present = {f.name for f in schema if pa.types.is_float32(f.type) or pa.types.is_float64(f.type)}
    return [p for p in range(N_POINTS) if all(c in present for c in wide_columns([p]))]


def _scan_wide_file(parquet, path: Path, listed: np.ndarray, counts: _HandCounts, findings: _ValueFindings) -> np.ndarray:
    """Read every row of one wide file in batches of `SCAN_ROWS`: value faults of the listed
    sequences into `findings`, their frame and missing-hand counts into `counts`; returns the ids
    found in the file (listed or not)."""
    points = _usable_points(parquet.schema_arrow)
    position = {p: k for k, p in enumerate(points)}
    probes = [position[p] for p in HAND_PROBES]
    coordinate_columns = wide_columns(points)
    per_sequence: dict[int, list[tuple[np.ndarray, np.ndarray, bool, bool]]] = {}
    try:
        for batch in parquet.iter_batches(batch_size=SCAN_ROWS, columns=["sequence_id", "frame", *coordinate_columns]):
            if not batch.num_rows:
                continue
            ids = batch.column(0).to_numpy()
            frame_numbers = batch.column(1).to_numpy()
            block = float32_frames(batch, coordinate_columns)  # [N, 3P], a transposed view of [3P, N]
            view = block.T.reshape(3, len(points), -1).transpose(2, 1, 0)  # [N, P, 3], no copy
            checked = np.isin(ids, listed)
            findings.add_frames(view, points, ids, frame_numbers, checked)
            missing = np.isnan(view[:, probes, 0])
            any_finite, any_nonzero = _xy_flags(view)
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
            for start, end in zip(starts, np.r_[starts[1:], len(ids)]):
                rows = order[start:end]
                per_sequence.setdefault(int(sorted_ids[start]), []).append(
                    (frame_numbers[rows], missing[rows], bool(any_finite[rows].any()), bool(any_nonzero[rows].any())))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorpusError(Problem(str(path), f"expected readable parquet data, found {_one_line(exc)}")) from None
    listed_ids = set(listed.tolist())
    for sequence_id, pieces in per_sequence.items():
        if sequence_id not in listed_ids:
            continue
        frame_numbers = np.concatenate([p[0] for p in pieces])
        missing = np.concatenate([p[1] for p in pieces])
        counts.add(missing[:, 0], missing[:, 1])
        findings.add_sequence(sequence_id, frame_numbers, any(p[2] for p in pieces), any(p[3] for p in pieces))
    return np.fromiter(per_sequence, dtype=np.int64, count=len(per_sequence))


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
    if metadata is None or _no_sequences(metadata, root / METADATA_FILE, report):
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
            missing_hands = _check_long_file(path, report, sequence_id)
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


def _check_long_file(path: Path, report: ValidationReport, sequence_id=None) -> tuple[np.ndarray, np.ndarray] | None:
    """Schema, rows per frame, point order, frame numbers and values of one long file; its
    per-frame missing hands.

    Returns `None` when the columns needed for the frame checks are themselves missing (already
    reported as schema problems).
    """
    parquet = open_parquet(path)
    schema = parquet.schema_arrow
    schema_problems = check_columns(schema, LONG_COLUMNS, path)
    report.problems += schema_problems
    usable = [c for c in ("frame", "type", "landmark_index", "x", "y", "z")
              if not check_columns(schema, {c: LONG_COLUMNS[c]}, path)]
    if "frame" not in usable:
        return None
    table = read_parquet_columns(parquet, path, usable)
    frame_numbers = table.column("frame").to_numpy()
    order = signs.frame_order(frame_numbers)
    if order is not None:  # the readers sort the rows by frame (stable): check what they will read
        table, frame_numbers = table.take(pa.array(order)), frame_numbers[order]
    n_frames = signs.long_frame_blocks(frame_numbers, path)
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
    findings = _ValueFindings()
    sorted_frames = frame_numbers[::N_POINTS]
    label = -1 if sequence_id is None else int(sequence_id)
    if all(axis in usable for axis in ("y", "z")):
        view = float32_frames(table, ("x", "y", "z")).reshape(n_frames, N_POINTS, 3)
        findings.add_frames(view, None, np.full(n_frames, label), sorted_frames)
        any_finite, any_nonzero = _xy_flags(view)
        findings.add_sequence(label, sorted_frames, bool(any_finite.any()), bool(any_nonzero.any()), order is not None)
    else:
        view = table.column("x").fill_null(np.nan).to_numpy().reshape(n_frames, N_POINTS, 1)
        findings.add_sequence(label, sorted_frames, True, True, order is not None)
    findings.report_into(path, report)
    missing = np.isnan(view[:, list(HAND_PROBES), 0])
    return missing[:, 0], missing[:, 1]
