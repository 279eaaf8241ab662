"""One way to open either Kaggle corpus, whatever its layout on disk.

`open_corpus(root)` looks at the columns of `root/train.csv` to tell the asl-fingerspelling layout
(wide parquet files shared by many sequences) from the asl-signs layout (one long parquet file
per sequence) and returns a corpus object with the same interface for both, so that preprocessing
and training never branch on the layout. Both yield `LandmarkSequence`s.

The readers (`signpipe.data.fingerspelling`, `signpipe.data.signs`) build on
`signpipe.data.corpus_base` (layout names, the `Corpus` interface, the shared checks), whose names
this module re-exports, so `from signpipe.data.corpus import open_corpus, FINGERSPELLING` keeps
working; the readers themselves never import this module.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from signpipe.data import fingerspelling, signs
from signpipe.data.corpus_base import (
    FINGERSPELLING,
    ISOLATED_SIGNS,
    KINDS,
    METADATA_FILE,
    QUOTED_ITEMS,
    SIBLING_MAPS_DIR,
    Corpus,
    check_columns,
    describe_path,
    duplicate_id_problems,
    find_label_map,
    float32_frames,
    open_parquet,
    quote_items,
    read_metadata_csv,
    read_parquet_columns,
    require_directory,
    require_label_map,
    resolve_points,
)
from signpipe.data.corpus_base import _one_line
from signpipe.data.fingerspelling import FingerspellingCorpus
from signpipe.data.signs import SignsCorpus
from signpipe.errors import CorpusError, Problem

__all__ = [
    "Corpus",
    "FINGERSPELLING",
    "FingerspellingCorpus",
    "ISOLATED_SIGNS",
    "KINDS",
    "METADATA_FILE",
    "QUOTED_ITEMS",
    "SIBLING_MAPS_DIR",
    "SignsCorpus",
    "check_columns",
    "describe_path",
    "detect_kind",
    "duplicate_id_problems",
    "find_label_map",
    "float32_frames",
    "open_corpus",
    "open_parquet",
    "quote_items",
    "read_metadata_csv",
    "read_parquet_columns",
    "require_directory",
    "require_label_map",
    "resolve_points",
]


def detect_kind(root: str | Path) -> str:
    """`"fingerspelling"` or `"isolated-signs"`, from the header of `root/train.csv`."""
    root = require_directory(root)
    csv = root / METADATA_FILE
    if not csv.is_file():
        raise CorpusError(Problem(str(csv), f"expected the corpus metadata csv, found {describe_path(csv)}"))
    try:
        header = pd.read_csv(csv, nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise CorpusError(Problem(str(csv), f"expected a csv header, found {_one_line(exc)}")) from None
    columns = set(header)
    fingerspelling_columns, signs_columns = set(fingerspelling.METADATA_COLUMNS), set(signs.METADATA_COLUMNS)
    if columns >= fingerspelling_columns:
        return FINGERSPELLING
    if columns >= signs_columns:
        return ISOLATED_SIGNS
    # an incomplete header still says which layout it meant by the columns only that layout has,
    # so the metadata check can then name exactly the missing ones
    only_fingerspelling = columns & (fingerspelling_columns - signs_columns)
    only_signs = columns & (signs_columns - fingerspelling_columns)
    if only_fingerspelling and not only_signs:
        return FINGERSPELLING
    if only_signs and not only_fingerspelling:
        return ISOLATED_SIGNS
    raise CorpusError(Problem(str(csv), f"expected the columns of asl-fingerspelling ({','.join(fingerspelling.METADATA_COLUMNS)}) "
                                        f"or of asl-signs ({','.join(signs.METADATA_COLUMNS)}), found {','.join(map(str, header))}"))


def open_corpus(root: str | Path, map_path: str | Path | None = None) -> FingerspellingCorpus | SignsCorpus:
    """Open a corpus directory in either Kaggle layout, detected from its `train.csv` columns."""
    kind = detect_kind(root)
    corpus_type = FingerspellingCorpus if kind == FINGERSPELLING else SignsCorpus
    return corpus_type.open(root, map_path)
