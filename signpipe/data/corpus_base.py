"""What both corpus readers share: the layout names, the metadata file, the `Corpus` interface and
the checks on parquet files, metadata and label maps.

`signpipe.data.fingerspelling` and `signpipe.data.signs` (one reader per Kaggle layout) build on
this module, and `signpipe.data.corpus` (`open_corpus`, which picks the reader) imports them both,
so the readers never import the factory. The readers raise the problems these checks find as one
`CorpusError`; `signpipe.data.validate` collects them and keeps going.
"""

from __future__ import annotations

import errno
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.data.schema import N_POINTS, load_map
from signpipe.data.sequence import LandmarkSequence
from signpipe.errors import ConfigError, CorpusError, Problem

FINGERSPELLING = "fingerspelling"
ISOLATED_SIGNS = "isolated-signs"
KINDS = (FINGERSPELLING, ISOLATED_SIGNS)
METADATA_FILE = "train.csv"
#: where the real sample in shared/data keeps its maps, relative to the corpus root
SIBLING_MAPS_DIR = Path("..") / "maps"

#: how many ids or names a problem message quotes before summarizing the rest as a count
QUOTED_ITEMS = 5


def quote_items(items: Iterable[object], limit: int = QUOTED_ITEMS) -> str:
    """`a, b, c and 7 more`: messages name a few offenders without flooding the terminal."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit:,} more" if len(items) > limit else "")


# --- columns and dtypes -------------------------------------------------------------------------

#: the kinds of column a check can ask for, with the test on an arrow type and the words for it
_ARROW_KINDS = {
    "integer": (pa.types.is_integer, "an integer type"),
    "floating": (lambda t: pa.types.is_float32(t) or pa.types.is_float64(t), "float32 or float64"),
    "string": (
        lambda t: pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or (pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))),
        "a string type",
    ),
}


def check_columns(schema: pa.Schema, expected: dict[str, str], where: str | Path) -> list[Problem]:
    """Compare a parquet schema with `{column: "integer" | "floating" | "string"}`.

    Missing columns and columns of a wrong type are each reported once, grouped, so a file
    lacking all 1,629 coordinate columns gives two lines, not 1,629.
    """
    where = str(where)
    present = {field.name: field.type for field in schema}
    problems = []
    missing = [name for name in expected if name not in present]
    if missing:
        problems.append(Problem(where, f"expected column{'s' if len(missing) > 1 else ''} {quote_items(missing)}, "
                                       f"found {len(missing):,} of the {len(expected):,} expected columns missing"))
    wrong: dict[tuple[str, str], list[str]] = {}
    for name, kind in expected.items():
        if name in present:
            test, _ = _ARROW_KINDS[kind]
            if not test(present[name]):
                wrong.setdefault((kind, str(present[name])), []).append(name)
    for (kind, found), names in wrong.items():
        problems.append(Problem(where, f"expected {_ARROW_KINDS[kind][1]} in column{'s' if len(names) > 1 else ''} "
                                       f"{quote_items(names)}, found {found}"))
    return problems


def describe_path(path: str | Path) -> str:
    """What is at `path` when a regular file was expected there: `no such file`, `a directory`,
    `a symbolic link loop`, `a broken symbolic link to ...`, `a special file (...)`, or `a file`."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return f"a broken symbolic link to {os.readlink(path)}"
        return "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno == errno.ENOTDIR:
            return "no such file (a file stands where a folder on its path belongs)"
        return f"a path that cannot be read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"a special file ({kind})"


def open_parquet(path: str | Path) -> pq.ParquetFile:
    """Open a parquet file, turning a missing or unreadable file into a `CorpusError` on that file."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(Problem(str(path), f"expected a parquet file, found {describe_path(path)}"))
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorpusError(Problem(str(path), f"expected a readable parquet file, found {_one_line(exc)}")) from None


def read_parquet_columns(parquet: pq.ParquetFile, path: Path, columns: list[str], row_group: int | None = None) -> pa.Table:
    """Read some columns (of one row group) and name the file when the data pages are damaged."""
    try:
        if row_group is None:
            return parquet.read(columns=columns)
        return parquet.read_row_group(row_group, columns=columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CorpusError(Problem(str(path), f"expected readable parquet data, found {_one_line(exc)}")) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def float32_frames(table: pa.Table, coordinate_columns: Sequence[str]) -> np.ndarray:
    """Stack coordinate columns into `[rows, len(columns)]` float32, nulls becoming NaN.

    Fills a column-major buffer one column at a time (contiguous writes), then returns its
    transpose, so no float64 or object intermediate of the whole block is ever built.
    """
    out = np.empty((len(coordinate_columns), table.num_rows), dtype=np.float32)
    for row, name in zip(out, coordinate_columns):
        column = table.column(name)
        if column.null_count:
            column = column.fill_null(np.nan)
        row[:] = column.to_numpy()
    return out.T


# --- metadata csv -------------------------------------------------------------------------------


def read_metadata_csv(
    path: str | Path, required: Sequence[str], integer_columns: Sequence[str], text_columns: Sequence[str]
) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Load a metadata csv and list what is wrong with it instead of failing on the first thing.

    Text columns are read as text whatever they hold (a phrase of digits stays a phrase, "NA"
    stays "NA"); integer columns must parse as integers everywhere. Returns `None` as the frame
    when the file itself cannot be used (missing, unparsable, lacking columns).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        return None, [Problem(where, f"expected a metadata csv, found {describe_path(path)}")]
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        return None, [Problem(where, f"expected a csv with columns {', '.join(required)}, found {_one_line(exc)}")]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        return None, [Problem(where, f"expected columns {', '.join(required)}, found {', '.join(map(str, frame.columns)) or 'none'} "
                                     f"(missing {', '.join(missing)})")]
    problems = []
    for column in integer_columns:
        values = frame[column]
        if pd.api.types.is_integer_dtype(values):
            continue
        as_number = pd.to_numeric(values, errors="coerce")
        bad = ~(as_number.notna() & (as_number == np.floor(as_number)))
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            examples = quote_items(f"{values.iloc[r]!r} (line {r + 2})" for r in rows)
            problems.append(Problem(where, f"expected integers in column {column}, found {examples}"))
        else:
            frame[column] = as_number.astype(np.int64)
    for column in text_columns:
        empty = frame[column].str.len().fillna(0).to_numpy() == 0
        if empty.any():
            rows = np.flatnonzero(empty)
            problems.append(Problem(where, f"expected a non-empty {column} on every line, found empty values on "
                                           f"line{'s' if len(rows) > 1 else ''} {quote_items(rows + 2)}"))
    return frame, problems


def duplicate_id_problems(metadata: pd.DataFrame, where: str) -> list[Problem]:
    """Sequence ids must be unique across all parts, or `read_sequence(id)` would be ambiguous."""
    ids = metadata["sequence_id"]
    if not pd.api.types.is_integer_dtype(ids):
        return []
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated) == 0:
        return []
    return [Problem(where, f"expected each sequence_id once, found {quote_items(duplicated)} listed more than once")]


# --- label maps ---------------------------------------------------------------------------------


def find_label_map(root: str | Path, map_file: str, map_path: str | Path | None = None) -> Path | None:
    """Where the label map of a corpus is: an explicit `map_path`, else `root/<map_file>`, else
    `root/../maps/<map_file>` (the layout of the real sample in shared/data). `None` if nowhere.

    An explicit path wins because a user who names a map means that map; it must exist.
    """
    if map_path is not None:
        map_path = Path(map_path)
        if not map_path.is_file():
            raise CorpusError(Problem(str(map_path), f"expected the label map {map_file}, found {describe_path(map_path)}"))
        return map_path
    root = Path(root)
    for candidate in (root / map_file, root / SIBLING_MAPS_DIR / map_file):
        if candidate.is_file():
            return candidate.resolve()
    return None


def require_label_map(root: Path, map_file: str, map_path: str | Path | None) -> tuple[dict[str, int], Path]:
    found = find_label_map(root, map_file, map_path)
    if found is None:
        raise CorpusError(Problem(str(root), f"expected the label map {map_file} in the corpus directory or in "
                                             f"{root / SIBLING_MAPS_DIR}, found neither (pass map_path / --map)"))
    return load_map(found), found


# --- layout detection and the common interface -----------------------------------------------


def require_directory(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        found = describe_path(root)
        raise CorpusError(Problem(str(root), "expected a corpus directory, found "
                                             + ("nothing" if found == "no such file" else found)))
    return root


def resolve_points(points: Sequence[int] | None) -> tuple[int, ...] | None:
    """Check a point selection (indices into the 543-point order) once, before any file is read."""
    if points is None:
        return None
    selected = np.asarray(points)
    if selected.ndim != 1 or len(selected) == 0 or not np.issubdtype(selected.dtype, np.integer):
        raise ConfigError(f"points: expected a non-empty sequence of integer point indices, found {points!r}")
    outside = selected[(selected < 0) | (selected >= N_POINTS)]
    if len(outside):
        raise ConfigError(f"points: expected indices in 0..{N_POINTS - 1}, found {quote_items(outside.tolist())}")
    return tuple(int(p) for p in selected)


class Corpus(ABC):
    """What both layouts share: metadata (one row per sequence, a `part` column), the label map,
    selection by part and id. Subclasses read the landmark files."""

    kind: str = ""
    map_file: str = ""
    part_names: tuple[str, ...] = ("train",)

    def __init__(self, root: Path, metadata: pd.DataFrame, label_map: dict[str, int], map_path: Path | None):
        self.root = Path(root)
        self.metadata = metadata
        self.label_map = label_map
        self.map_path = map_path
        self._row_of_id = pd.Series(np.arange(len(metadata)), index=metadata["sequence_id"].to_numpy())

    def __len__(self) -> int:
        return len(self.metadata)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, sequences={len(self)})"

    @property
    def parts(self) -> tuple[str, ...]:
        present = set(self.metadata["part"])
        return tuple(p for p in self.part_names if p in present)

    def select(self, parts: Iterable[str] | str | None = None, sequence_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """Metadata rows of the given parts and ids (all when `None`), unknown names being errors."""
        rows = self.metadata
        if parts is not None:
            parts = [parts] if isinstance(parts, str) else list(parts)
            unknown = [p for p in parts if p not in self.part_names]
            if unknown:
                raise ConfigError(f"parts: expected some of {', '.join(self.part_names)}, found {quote_items(unknown)}")
            rows = rows[rows["part"].isin(parts)]
        if sequence_ids is not None:
            wanted = np.unique(np.asarray(list(sequence_ids), dtype=np.int64))
            unknown_ids = wanted[~np.isin(wanted, self.metadata["sequence_id"].to_numpy())]
            if len(unknown_ids):
                raise CorpusError(Problem(self._metadata_where(), f"expected sequence_id {quote_items(unknown_ids.tolist())} "
                                                                  "in the metadata, found no such sequence"))
            rows = rows[rows["sequence_id"].isin(wanted)]
        return rows

    def row(self, sequence_id: int) -> pd.Series:
        try:
            position = self._row_of_id[int(sequence_id)]
        except KeyError:
            raise CorpusError(Problem(self._metadata_where(), f"expected sequence_id {sequence_id} in the metadata, "
                                                              "found no such sequence")) from None
        if isinstance(position, pd.Series):  # listed twice: the corpus is invalid, take the first
            position = position.iloc[0]
        return self.metadata.iloc[int(position)]

    def _metadata_where(self) -> str:
        return str(self.root / METADATA_FILE)

    @abstractmethod
    def iter_sequences(
        self,
        points: Sequence[int] | None = None,
        parts: Iterable[str] | str | None = None,
        sequence_ids: Iterable[int] | None = None,
    ) -> Iterator[LandmarkSequence]:
        """Every selected sequence, reading each landmark file once."""

    @abstractmethod
    def read_sequence(self, sequence_id: int, points: Sequence[int] | None = None) -> LandmarkSequence:
        """One sequence by id, for inspection and tests; iterate to read many."""

    def __iter__(self) -> Iterator[LandmarkSequence]:
        return self.iter_sequences()
