"""Videos -> a corpus in either Kaggle layout, so a user's own recordings train like Kaggle data.

Runs in the main environment. Everything that can be checked without decoding a frame (the files
are videos, every video has a label, every label is in the label map, the output directory is
new) is checked first; the landmarks then come from the video environment's MediaPipe worker
(`signpipe.video.client`), and the corpus is built under a temporary name and renamed into
place only when complete, so a failed or interrupted extraction leaves nothing behind.

`extract_folder` is the entry the pipeline's extraction component calls; `signpipe extract`
calls `extract_videos` with the videos named on its command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.data.atomic import atomic_directory
from signpipe.data.corpus import KINDS, quote_items
from signpipe.data.schema import load_map, packaged_map
from signpipe.errors import ConfigError, CorpusError, SignpipeError
from signpipe.video.client import FrameProgress, landmark_videos
from signpipe.video.corpus_writer import INDEX_FILE, WRITERS
from signpipe.video.inputs import check_videos, content_id, folder_videos, unique_ids
from signpipe.video.labels import label_problems, match_labels, read_labels

#: `landmarker(videos, progress, python)` yields `(video, frames [T, 543, 3])` in the given order;
#: `landmark_videos` (MediaPipe in the video environment) unless a caller brings its own
Landmarker = Callable[[Sequence[Path], Callable[[FrameProgress], None] | None, str | Path | None],
                      Iterator[tuple[Path, np.ndarray]]]


@dataclass
class ExtractionResult:
    """What an extraction wrote, for the CLI's summary and the pipeline component's metrics."""

    root: Path
    layout: str
    #: `videos.csv` as written: one row per sequence with its video, ids, path and part counts
    index: pd.DataFrame
    labelled: bool
    #: wall time of landmarking, start-up of the video environment included
    seconds: float
    #: of which until the first frame was done (interpreter, mediapipe import, first graph);
    #: `None` when the landmarker reported no progress
    startup_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def sequences(self) -> int:
        return len(self.index)

    @property
    def frames(self) -> int:
        return int(self.index["frames"].sum())

    @property
    def frames_per_second(self) -> float:
        """Landmarking speed once started: what a longer extraction on this machine will see."""
        if self.startup_seconds is not None and self.frames > 1 and self.seconds > self.startup_seconds:
            return (self.frames - 1) / (self.seconds - self.startup_seconds)
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def _labels_for(paths: list[Path], labels_csv: str | Path, layout: str, map_path: str | Path | None,
                warnings: list[str]) -> tuple[list[str], dict[str, int]]:
    writer = WRITERS[layout]
    label_map = load_map(map_path) if map_path is not None else packaged_map(writer.map_file)
    labels, unused = match_labels(paths, read_labels(labels_csv), labels_csv)
    problems = label_problems(labels, paths, label_map, layout, labels_csv)
    if problems:
        raise CorpusError(problems)
    if unused:
        warnings.append(f"{labels_csv}: {len(unused)} label{'s' if len(unused) > 1 else ''} matched no video "
                        f"({quote_items(unused)})")
    return labels, label_map


def extract_videos(
    videos: Iterable[str | Path],
    out_dir: str | Path,
    layout: str,
    labels_csv: str | Path | None = None,
    *,
    participant_id: int = 0,
    map_path: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[FrameProgress], None] | None = None,
    python: str | Path | None = None,
    landmarker: Landmarker = landmark_videos,
) -> ExtractionResult:
    """Landmark `videos` and write them as a new corpus at `out_dir` in `layout`.

    `layout` is "fingerspelling" (wide parquet) or "isolated-signs" (long parquet per sequence).
    With `labels_csv` (columns video,label) the result is a training corpus (`train.csv` and
    the label map, `map_path` or the competition's); without, only landmark files and
    `videos.csv`. Each video's `sequence_id` comes from a hash of its bytes, so the same video
    always gets the same id. `python` picks the video environment's interpreter.
    """
    if layout not in KINDS:
        raise ConfigError(f"layout: expected one of {', '.join(KINDS)}, found {layout!r}")
    if participant_id < 0:
        raise ConfigError(f"participant_id: expected a non-negative integer, found {participant_id}")
    paths = check_videos(videos)
    warnings: list[str] = []
    labels: list[str | None] = [None] * len(paths)
    label_map = None
    if labels_csv is not None:
        labels, label_map = _labels_for(paths, labels_csv, layout, map_path, warnings)
    sequence_ids = unique_ids([content_id(p) for p in paths])
    about = {path: (sequence_id, label) for path, sequence_id, label in zip(paths, sequence_ids, labels)}

    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as building:
        writer = WRITERS[layout](building, participant_id)
        first_frame_at: list[float] = []

        def timed(update: FrameProgress) -> None:
            if not first_frame_at:
                first_frame_at.append(time.perf_counter())
            if progress is not None:
                progress(update)

        started = time.perf_counter()
        for video, frames in landmarker(paths, timed, python):
            sequence_id, label = about[video]
            writer.add(video, sequence_id, label, frames)
        seconds = time.perf_counter() - started
        written = {Path(row["video"]) for row in writer.rows}
        missing = [p.name for p in paths if p not in written]
        if missing:
            raise SignpipeError(f"landmarker: expected the frames of every video, found none for {quote_items(missing)}")
        index = writer.finish(label_map)
    no_person = index.loc[index["pose_frames"] == 0, "video"].map(lambda v: Path(v).name).tolist()
    if no_person:
        warnings.append(f"MediaPipe found no person (no pose in any frame) in {quote_items(no_person)}")
    if label_map is None:
        warnings.append(f"no labels given: wrote landmark files and {INDEX_FILE} only, not a training corpus "
                        "(pass a labels csv with columns video,label for train.csv)")
    startup = first_frame_at[0] - started if first_frame_at else None
    return ExtractionResult(out_dir, layout, index, label_map is not None, seconds, startup, warnings)


def extract_folder(
    videos_dir: str | Path,
    out_dir: str | Path,
    layout: str,
    labels_csv: str | Path | None = None,
    **options,
) -> ExtractionResult:
    """`extract_videos` of every video file in `videos_dir` (not its subfolders), in name order.

    Files without a video ending (a labels csv kept beside the videos, a readme) are skipped and
    named in the result's warnings. `options` are those of `extract_videos`.
    """
    videos, ignored = folder_videos(videos_dir)
    result = extract_videos(videos, out_dir, layout, labels_csv, **options)
    if ignored:
        result.warnings.insert(0, f"{videos_dir}: skipped {len(ignored)} file{'s' if len(ignored) > 1 else ''} "
                                  f"without a video ending ({quote_items(p.name for p in ignored)})")
    return result
