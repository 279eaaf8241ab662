"""`signpipe predict`: run a published bundle on landmark files or videos, exactly as deployed.

The point of predicting through the bundle rather than the training code is that what is checked
is what ships: the zip's `model.tflite` is called through `ai_edge_litert`'s
`get_signature_runner("serving_default")` (`signpipe.export.evaluate.signature_runner`, the
scorer's call), and the output is read the way each competition's scorer read it.

Which task a bundle serves is read from its signature's input, not from a flag, so a user cannot
pair a model with the wrong decoding:
- fingerspelling, input `[n_frames, len(selected_columns)]`: the columns named by
  `inference_args.json`, in the file's row order (`read_selected_columns`, the same selection as
  `signpipe evaluate`); output rows argmax'ed one by one through the character map, an index the
  map does not hold (the CTC blank) giving "" (`FingerspellingProtocol.decode`);
- isolated signs, input `[n_frames, 543, 3]` (the asl-signs scorer's call; its bundle may be
  `model.tflite` alone): output one score per sign of `sign_to_prediction_index_map.json`,
  reported as the top k signs.

Inputs are recognized by their bytes, not their names (a folder stands for the landmark parquet
files under it, at any depth, so a corpus root predicts its whole corpus): a parquet file in the fingerspelling
layout (wide columns, many sequences: every one is predicted, or those of `sequence_ids`), a
parquet file in the asl-signs layout (long rows, one sequence), or a video, whose landmarks come
from MediaPipe in the video environment (`signpipe.video.client`, docs/video.md). Landmarks that
are not already the bundle's columns (long files, videos, for a fingerspelling bundle) are laid
out as the wide columns the bundle names, the layout `signpipe.data.schema` defines.

The true answer, when the input sits in a corpus: the nearest folder above a parquet file that
holds a `train.csv` (with `sequence_id` and `phrase` or `sign`, as either Kaggle layout has it; a
fingerspelling corpus' `supplemental_metadata.csv` too) is its corpus, and the sequence's row there
gives `truth`; a prediction then also says whether it `match`es and, for a phrase, its normalized
Levenshtein `score` ((N - D) / N, the competition's metric on that one sequence).

The TFLite runtime announces its CPU delegate on the process' stderr at the first model call
("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", from C++, so neither Python's
logging nor TF_CPP_MIN_LOG_LEVEL reaches it): that call runs with file descriptor 2 captured, and
whatever else the runtime wrote then is passed on (`_native_stderr_filtered`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from signpipe.data.corpus import FINGERSPELLING, ISOLATED_SIGNS, open_parquet, quote_items, read_parquet_columns
from signpipe.data.fingerspelling import PARTS_FILES
from signpipe.data.schema import (CHARACTER_MAP_FILE, N_POINTS, SIGN_MAP_FILE, WIDE_COLUMNS, character_table, load_map,
                                  packaged_map)
from signpipe.errors import ConfigError, CorpusError, Problem, SignpipeError
from signpipe.export.bundle import (
    ARGS_FILE,
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAME,
    Bundle,
    read_bundle,
    serving_signature,
    shape_signature,
)

#: what an input file is, as far as prediction is concerned
WIDE_PARQUET = "wide parquet"
LONG_PARQUET = "long parquet"
VIDEO = "video"
#: the columns that make a parquet file the asl-signs (long) layout; `row_id`, `type` and
#: `landmark_index` only restate the fixed point order, so they are not required
LONG_LAYOUT_COLUMNS = ("frame", "x", "y", "z")
PARQUET_MAGIC = b"PAR1"
DEFAULT_TOP_K = 5
#: wide column name -> its position in the axis-major layout (x of every point, then y, then z)
_WIDE_POSITION = {name: position for position, name in enumerate(WIDE_COLUMNS)}


class InputError(CorpusError):
    """Inputs that cannot be predicted on (missing, neither a landmark file nor a video, a parquet
    file in neither layout); carries one `Problem` per bad input so all are fixed in one go."""


@dataclass(frozen=True)
class SignScore:
    sign: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """The bundle's answer for one sequence: a phrase (fingerspelling) or the top signs."""

    input: Path
    source: str
    """`WIDE_PARQUET`, `LONG_PARQUET` or `VIDEO`"""
    sequence_id: int | None
    """the sequence's id in a parquet file (a long file's name when it is a number); `None` for a video"""
    n_frames: int
    task: str
    phrase: str | None = None
    signs: tuple[SignScore, ...] = ()
    truth: str | None = None
    """the corpus' phrase or sign for the sequence, when the input sits in a corpus that has it"""

    @property
    def answer(self) -> str:
        """The phrase, or the top sign ("" when there is none)."""
        if self.task == FINGERSPELLING:
            return self.phrase or ""
        return self.signs[0].sign if self.signs else ""

    @property
    def match(self) -> bool | None:
        """Whether the answer is the truth (None when the truth is not known)."""
        return None if self.truth is None else self.answer == self.truth

    @property
    def score(self) -> float | None:
        """A phrase's normalized Levenshtein score against the truth, (N - D) / N (None when not known,
        for signs, or for an empty truth)."""
        if self.task != FINGERSPELLING or not self.truth:
            return None
        from signpipe.metrics import levenshtein_totals

        return levenshtein_totals([self.truth], [self.phrase or ""]).score

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"input": str(self.input), "source": self.source, "sequence_id": self.sequence_id,
                                  "frames": self.n_frames, "task": self.task}
        if self.task == FINGERSPELLING:
            values["phrase"] = self.phrase
        else:
            values["signs"] = [{"sign": s.sign, "score": s.score} for s in self.signs]
        if self.truth is not None:
            values["truth"] = self.truth
            values["match"] = self.match
            if self.score is not None:
                values["normalized_levenshtein"] = self.score
        return values


# --- the bundle ---------------------------------------------------------------------------------


def _open_zip(path: Path) -> Bundle:
    """Model bytes and selected columns of a bundle zip; a bundle without `inference_args.json`
    (the asl-signs form) gets no columns, which only an isolated-signs model may do."""
    if not path.is_file():
        raise SignpipeError(f"{path}: bundle not found (expected a zip holding {MODEL_FILE}, with {ARGS_FILE} for a "
                            "fingerspelling model)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if MODEL_FILE not in names:
                raise SignpipeError(f"{path}: bundle lacks {MODEL_FILE} (expected it at the top of the zip, found "
                                    f"{quote_items(sorted(names)) or 'nothing'})")
            if ARGS_FILE not in names:
                return Bundle(path, archive.read(MODEL_FILE), ())
    except zipfile.BadZipFile as exc:
        raise SignpipeError(f"{path}: not a readable zip ({exc}); expected a bundle zip holding {MODEL_FILE}") from None
    return read_bundle(path, check_model=False)


def _signature_shapes(model: bytes, where: str) -> tuple[list[int], list[int]]:
    """Input and output shapes (-1 for a dynamic axis) of the model's `serving_default`, after
    checking it is the scorer's call: float32 `inputs` in, `outputs` out."""
    inputs, outputs = serving_signature(model, where)
    if inputs["dtype"] != np.float32:
        raise SignpipeError(f"{where}: input {INPUT_NAME!r} is {np.dtype(inputs['dtype']).name}; expected float32")
    return shape_signature(inputs), shape_signature(outputs)


class BundlePredictor:
    """A loaded bundle: which task it serves, its signature runner, and how to read its output.

    Built by `load_predictor`; reuse one for many inputs so the model is loaded once.
    """

    def __init__(self, bundle: Bundle, task: str, label_map: dict[str, int], runner: Any):
        self.bundle = bundle
        self.task = task
        self.label_map = label_map
        self.labels = character_table(label_map)
        self.runner = runner
        self._called = False
        self.selected_columns = bundle.selected_columns
        if task == FINGERSPELLING:
            from signpipe.export.evaluate import FingerspellingProtocol

            self._protocol = FingerspellingProtocol(label_map)
        # where each selected column sits in frames [T, 543, 3]: (point, axis) of its wide name
        self._not_coordinates = [c for c in self.selected_columns if c not in _WIDE_POSITION]
        positions = np.fromiter((_WIDE_POSITION.get(c, 0) for c in self.selected_columns), dtype=np.int64)
        self._axes, self._points = np.divmod(positions, N_POINTS)

    @property
    def path(self) -> Path:
        return self.bundle.path

    def model_inputs(self, frames: np.ndarray, where: str) -> np.ndarray:
        """Frames `[T, 543, 3]` as this model's input: as they are for a signs model, the selected
        wide columns `[T, len(selected_columns)]` for a fingerspelling one."""
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 3 or frames.shape[1:] != (N_POINTS, 3) or len(frames) == 0:
            raise CorpusError(Problem(where, f"expected landmark frames [n_frames >= 1, {N_POINTS}, 3], found "
                                             f"{frames.shape}"))
        if self.task == ISOLATED_SIGNS:
            return np.ascontiguousarray(frames)
        if self._not_coordinates:
            raise SignpipeError(f"{self.path}:{ARGS_FILE} selects {quote_items(self._not_coordinates)}: not landmark "
                                f"coordinate columns (x_face_0 ... z_right_hand_20), so it cannot read the frames of "
                                f"{where}; expected a wide parquet file holding those columns")
        return np.ascontiguousarray(frames[:, self._points, self._axes])

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """The scorer's call on one sequence's model input (the first one with the runtime's
        delegate announcement kept off stderr)."""
        if not self._called:
            with _native_stderr_filtered():
                outputs = self.runner(**{INPUT_NAME: inputs})[OUTPUT_NAME]
            self._called = True
            return np.asarray(outputs)
        return np.asarray(self.runner(**{INPUT_NAME: inputs})[OUTPUT_NAME])

    def phrase(self, outputs: np.ndarray) -> str:
        """Rows argmax'ed through the character map, as `signpipe evaluate` decodes them."""
        return self._protocol.decode(outputs)

    def top_signs(self, outputs: np.ndarray, k: int) -> tuple[SignScore, ...]:
        scores = np.asarray(outputs, dtype=np.float32).reshape(-1)
        if scores.size != len(self.labels):
            raise SignpipeError(f"{self.path}: model output {OUTPUT_NAME!r} holds {scores.size} scores; expected one "
                                f"per sign of the map ({len(self.labels)})")
        best = np.argsort(-scores, kind="stable")[:k]
        return tuple(SignScore(str(self.labels[i]), float(scores[i])) for i in best)

    def predict(self, model_inputs: np.ndarray, top_k: int = DEFAULT_TOP_K) -> tuple[str | None, tuple[SignScore, ...]]:
        """`(phrase, ())` or `(None, top signs)` for one sequence's model input."""
        outputs = self.run(model_inputs)
        if self.task == FINGERSPELLING:
            return self.phrase(outputs), ()
        return None, self.top_signs(outputs, top_k)


#: what the TFLite runtime prints on stderr that is not worth a reader's attention
_RUNTIME_CHATTER = ("INFO: Created TensorFlow Lite", "INFO: Initialized TensorFlow Lite runtime")


@contextlib.contextmanager
def _native_stderr_filtered() -> Iterator[None]:
    """Capture file descriptor 2 (where the C++ runtime writes) for the block; afterwards pass on
    every captured line but the runtime's INFO announcements. When fd 2 cannot be captured (no
    such descriptor), the block runs as it is."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as capture:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if line.strip() and not line.startswith(_RUNTIME_CHATTER)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_predictor(bundle: str | Path, *, threads: int = 1, map_path: str | Path | None = None) -> BundlePredictor:
    """Open a bundle, tell its task from the signature's input shape and load the label map
    (`map_path`, else the competition's map of that task)."""
    from signpipe.export.evaluate import signature_runner

    path = Path(bundle)
    opened = _open_zip(path)
    where = f"{path}:{MODEL_FILE}"
    input_shape, output_shape = _signature_shapes(opened.model, where)
    if len(input_shape) == 2:
        if not opened.selected_columns:
            raise SignpipeError(f"{path}: a fingerspelling model (input [n_frames, {input_shape[1]}]) needs {ARGS_FILE} "
                                "with its selected_columns beside it; the bundle has none")
        if input_shape[1] != len(opened.selected_columns):
            raise SignpipeError(f"{where}: input {INPUT_NAME!r} is [n_frames, {input_shape[1]}]; expected one column per "
                                f"selected column of {ARGS_FILE} ({len(opened.selected_columns)})")
        task, map_file = FINGERSPELLING, CHARACTER_MAP_FILE
    elif len(input_shape) == 3 and input_shape[1:] == [N_POINTS, 3]:
        task, map_file = ISOLATED_SIGNS, SIGN_MAP_FILE
    else:
        raise SignpipeError(f"{where}: input {INPUT_NAME!r} has shape {input_shape}; expected [n_frames, n_columns] "
                            f"(fingerspelling) or [n_frames, {N_POINTS}, 3] (isolated signs)")
    label_map = load_map(map_path) if map_path is not None else packaged_map(map_file)
    known_outputs = [n for n in output_shape if n > 0]
    if task == ISOLATED_SIGNS and len(known_outputs) == len(output_shape) and int(np.prod(output_shape)) != len(label_map):
        raise SignpipeError(f"{where}: output {OUTPUT_NAME!r} has shape {output_shape}; expected one score per sign of "
                            f"the map ({len(label_map)})")
    return BundlePredictor(opened, task, label_map, signature_runner(opened.model, threads))


# --- inputs -------------------------------------------------------------------------------------


@dataclass
class PlannedInput:
    """One input, what it is, and (for parquet files) which of its sequences to predict."""

    path: Path
    source: str
    sequence_ids: list[int | None] = field(default_factory=list)


def _parquet_layout(path: Path) -> tuple[str | None, pq.ParquetFile]:
    parquet = open_parquet(path)
    names = set(parquet.schema_arrow.names)
    if "sequence_id" in names and not names.isdisjoint(_WIDE_POSITION):
        return WIDE_PARQUET, parquet
    if names.issuperset(LONG_LAYOUT_COLUMNS):
        return LONG_PARQUET, parquet
    return None, parquet


def _wide_sequence_ids(path: Path, parquet: pq.ParquetFile) -> list[int]:
    """Ids of a wide file in the order they first appear, as the scorer would meet them."""
    ids = read_parquet_columns(parquet, path, ["sequence_id"]).column("sequence_id").to_numpy()
    unique, first = np.unique(ids, return_index=True)
    return unique[np.argsort(first)].tolist()


def _long_sequence_id(path: Path) -> int | None:
    """The asl-signs layout names each file `<sequence_id>.parquet`."""
    return int(path.stem) if path.stem.isdigit() else None


def expand_folders(paths: Sequence[Path], problems: list[Problem]) -> tuple[list[Path], set[Path]]:
    """`paths` with each folder replaced by the parquet files under it (any depth, sorted, hidden
    folders and files left out); returns them and the set of those that came from a folder (a
    parquet file there in neither landmark layout is passed over, not refused). A folder without
    any parquet file is a problem."""
    expanded: list[Path] = []
    from_folder: set[Path] = set()
    for path in paths:
        if not path.is_dir():
            expanded.append(path)
            continue
        found = sorted(p for p in path.rglob("*.parquet")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not found:
            problems.append(Problem(str(path), "expected landmark parquet files in the folder (at any depth), found none"))
        expanded += found
        from_folder.update(found)
    return expanded, from_folder


def plan_inputs(inputs: Iterable[str | Path], sequence_ids: Iterable[int] | None = None) -> list[PlannedInput]:
    """What each input is and which sequences of it to predict, every bad input named at once.

    `sequence_ids` narrows the parquet inputs to those sequences (each must be found in one of
    them); videos are always predicted.
    """
    from signpipe.video.inputs import HEADER_BYTES, identify_bytes

    given = [Path(p) for p in inputs]
    if not given:
        raise InputError(Problem("inputs", "expected at least one landmark parquet file, folder or video, found none"))
    wanted = None if sequence_ids is None else {int(i) for i in sequence_ids}
    planned, problems = [], []
    paths, from_folder = expand_folders(given, problems)
    for path in paths:
        if not path.exists():
            problems.append(Problem(str(path), "expected a landmark parquet file or a video, found no such file"))
            continue
        if not path.is_file():
            problems.append(Problem(str(path), "expected a landmark parquet file or a video, found a directory"
                                               if path.is_dir() else "expected a file, found a special file"))
            continue
        try:
            with open(path, "rb") as stream:
                header = stream.read(HEADER_BYTES)
        except OSError as exc:
            problems.append(Problem(str(path), f"expected a readable file, found it unreadable ({exc.strerror or exc})"))
            continue
        kind = identify_bytes(header)
        if kind.is_video:
            planned.append(PlannedInput(path, VIDEO, [None]))
            continue
        if not header.startswith(PARQUET_MAGIC):
            problems.append(Problem(str(path), "expected a landmark parquet file (either Kaggle layout) or a video "
                                               f"(MP4/MOV, AVI, MKV/WebM, ...), found {kind.description}"))
            continue
        try:
            layout, parquet = _parquet_layout(path)
        except CorpusError as exc:
            problems += exc.problems
            continue
        if layout is None and path in from_folder:  # a folder's other tables (a synthetic corpus' alignments)
            continue
        if layout is None:
            found = quote_items(parquet.schema_arrow.names) or "no columns"
            problems.append(Problem(str(path), "expected a landmark file in the fingerspelling layout (sequence_id, "
                                               "frame, x_face_0 ... z_right_hand_20) or the asl-signs layout "
                                               f"(frame, row_id, type, landmark_index, x, y, z), found {found}"))
            continue
        if layout == WIDE_PARQUET:
            try:
                ids: list[int | None] = list(_wide_sequence_ids(path, parquet))
            except CorpusError as exc:
                problems += exc.problems
                continue
        else:
            ids = [_long_sequence_id(path)]
        if wanted is not None:
            ids = [i for i in ids if i in wanted]
            if not ids:
                continue
        planned.append(PlannedInput(path, layout, ids))
    if wanted is not None:
        found_ids = {i for item in planned for i in item.sequence_ids}
        missing = sorted(wanted - found_ids)
        if missing:
            problems.append(Problem("--sequence-id", f"expected sequence_id {quote_items(missing)} in the parquet "
                                                     "inputs, found no such sequence"))
    if not planned and not problems:
        problems.append(Problem(", ".join(map(str, given)), "expected landmark files (either Kaggle layout) or videos, "
                                                            "found only other parquet files"))
    if problems:
        raise InputError(problems)
    return planned


# --- the true answers ---------------------------------------------------------------------------

METADATA_FILES = tuple(PARTS_FILES.values())
"""`train.csv` first (the file that makes a folder a corpus), then `supplemental_metadata.csv`."""
LABEL_COLUMNS = ("phrase", "sign")


class CorpusTruth:
    """The true phrase or sign of a sequence, from the corpus its file sits in: the nearest folder
    above the file holding a `train.csv` with `sequence_id` and `phrase` or `sign` (plus, beside it,
    `supplemental_metadata.csv`). Each corpus' metadata is read once."""

    def __init__(self) -> None:
        self._roots: dict[Path, Path | None] = {}
        self._tables: dict[Path, tuple[dict[tuple[str, int], str], dict[int, str], set[str]]] = {}

    def _table(self, root: Path) -> tuple[dict[tuple[str, int], str], dict[int, str], set[str]] | None:
        if root in self._tables:
            return self._tables[root]
        import pandas as pd

        by_path: dict[tuple[str, int], str] = {}
        by_id: dict[int, str] = {}
        listed: set[str] = set()
        for name in METADATA_FILES:
            path = root / name
            if not path.is_file():
                continue
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            label = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
            if label is None or "sequence_id" not in frame.columns:
                continue
            paths = frame["path"] if "path" in frame.columns else [""] * len(frame)
            for file, sequence_id, truth in zip(paths, frame["sequence_id"], frame[label], strict=True):
                if not str(sequence_id).strip().lstrip("-").isdigit():
                    continue
                by_path[(str(file), int(sequence_id))] = str(truth)
                by_id.setdefault(int(sequence_id), str(truth))
                listed.add(str(file))
        table = (by_path, by_id, listed) if by_id else None
        self._tables[root] = table  # type: ignore[assignment]
        return table

    def root_of(self, path: Path) -> Path | None:
        """The corpus folder of `path`: the nearest ancestor whose train.csv names sequences."""
        folder = path.resolve().parent
        if folder in self._roots:
            return self._roots[folder]
        found = None
        for candidate in (folder, *folder.parents):
            if (candidate / METADATA_FILES[0]).is_file() and self._table(candidate) is not None:
                found = candidate
                break
        self._roots[folder] = found
        return found

    def truth(self, path: Path, sequence_id: int | None) -> str | None:
        if sequence_id is None:
            return None
        root = self.root_of(path)
        if root is None:
            return None
        by_path, by_id, listed = self._table(root)  # type: ignore[misc]
        relative = path.resolve().relative_to(root).as_posix()
        if relative in listed:
            return by_path.get((relative, int(sequence_id)))
        return by_id.get(int(sequence_id))


def with_truth(predictions: Iterable[Prediction], truths: CorpusTruth | None = None) -> list[Prediction]:
    """`predictions` with `truth` set where the corpus of their file has it (videos have none)."""
    truths = truths or CorpusTruth()
    return [p if p.source == VIDEO else dataclasses.replace(p, truth=truths.truth(p.input, p.sequence_id))
            for p in predictions]


# --- predicting ---------------------------------------------------------------------------------


def _wide_model_inputs(predictor: BundlePredictor, item: PlannedInput) -> Iterator[tuple[int, np.ndarray]]:
    """`(sequence_id, model input)` of the wanted sequences of one wide file."""
    ids = [int(i) for i in item.sequence_ids if i is not None]
    if predictor.task == FINGERSPELLING:
        from signpipe.export.evaluate import read_selected_columns

        columns = read_selected_columns(item.path, list(predictor.selected_columns), ids)
        for sequence_id in ids:
            yield sequence_id, columns[sequence_id]
        return
    from signpipe.data.fingerspelling import read_wide_sequences

    frames = dict(read_wide_sequences(item.path, ids))
    for sequence_id in ids:
        yield sequence_id, predictor.model_inputs(frames[sequence_id], f"{item.path} sequence_id {sequence_id}")


def _parquet_predictions(predictor: BundlePredictor, item: PlannedInput, top_k: int) -> Iterator[Prediction]:
    if item.source == WIDE_PARQUET:
        pairs = _wide_model_inputs(predictor, item)
    else:
        from signpipe.data.signs import read_long_frames

        frames, _ = read_long_frames(item.path)
        pairs = iter([(item.sequence_ids[0], predictor.model_inputs(frames, str(item.path)))])
    for sequence_id, model_inputs in pairs:
        phrase, signs = predictor.predict(model_inputs, top_k)
        yield Prediction(item.path, item.source, sequence_id, len(model_inputs), predictor.task, phrase, signs)


def predict(
    bundle: str | Path | BundlePredictor,
    inputs: Sequence[str | Path],
    *,
    sequence_ids: Iterable[int] | None = None,
    top_k: int = DEFAULT_TOP_K,
    threads: int = 1,
    map_path: str | Path | None = None,
    progress: Callable[[Any], None] | None = None,
    python: str | Path | None = None,
) -> list[Prediction]:
    """One `Prediction` per sequence of `inputs`, in input order (a wide file's sequences in the
    order they first appear in it; a folder's parquet files in path order), with the `truth` of
    each sequence whose file sits in a corpus that has it.

    What needs no landmark read and no frame decoded (the bundle, each input's kind and layout,
    the sequence ids) is checked for all inputs before the first model call. All videos go
    through one video worker (MediaPipe's start-up paid once), after the parquet inputs;
    `progress` receives its `FrameProgress` updates and `python` overrides where the video
    environment is found.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top: expected a positive number of signs to list, found {top_k!r}")
    predictor = bundle if isinstance(bundle, BundlePredictor) else load_predictor(bundle, threads=threads,
                                                                                  map_path=map_path)
    planned = plan_inputs(inputs, sequence_ids)
    by_input: list[list[Prediction]] = [[] for _ in planned]
    videos = [k for k, item in enumerate(planned) if item.source == VIDEO]
    for k, item in enumerate(planned):
        if item.source != VIDEO:
            by_input[k] = list(_parquet_predictions(predictor, item, top_k))
    if videos:
        from signpipe.video.client import landmark_videos

        landmarked = landmark_videos([planned[k].path for k in videos], progress, python)
        for k, (_, frames) in zip(videos, landmarked, strict=True):
            phrase, signs = predictor.predict(predictor.model_inputs(frames, str(planned[k].path)), top_k)
            by_input[k] = [Prediction(planned[k].path, VIDEO, None, len(frames), predictor.task, phrase, signs)]
    return with_truth(prediction for predictions in by_input for prediction in predictions)
