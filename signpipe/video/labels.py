"""The labels of extracted videos: a csv `video,label` naming each video's phrase or sign.

A corpus is training data only with a label per sequence (the validator rejects an empty phrase
or sign), so when labels are given every video must have one and every label must be in the
label map, both checked before any frame is landmarked. `video` holds a file name (`hello.mp4`)
or its stem (`hello`); file names rather than paths, so one csv serves wherever the folder moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from signpipe.data.corpus import quote_items
from signpipe.errors import CorpusError, Problem

LABEL_COLUMNS = ("video", "label")


def read_labels(path: str | Path) -> dict[str, str]:
    """`{video name or stem: label}` from a labels csv, every problem of the file reported at once."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise CorpusError(Problem(where, "expected a labels csv with columns video,label, found no such file"))
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise CorpusError(Problem(where, f"expected a csv with columns video,label, found {type(exc).__name__}: "
                                         f"{' '.join(str(exc).split())[:200]}")) from None
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise CorpusError(Problem(where, f"expected columns video,label, found {','.join(map(str, table.columns)) or 'none'}"))
    videos = table["video"].str.strip()
    labels = table["label"]
    problems = []
    for column, values in (("video", videos), ("label", labels.str.strip())):
        empty = (values.str.len() == 0).to_numpy()
        if empty.any():
            lines = [int(i) + 2 for i in empty.nonzero()[0]]
            problems.append(Problem(where, f"expected a non-empty {column} on every line, found empty values on "
                                           f"line{'s' if len(lines) > 1 else ''} {quote_items(lines)}"))
    repeated = videos[videos.duplicated() & (videos.str.len() > 0)].unique()
    if len(repeated):
        problems.append(Problem(where, f"expected each video once, found {quote_items(repeated)} more than once"))
    if problems:
        raise CorpusError(problems)
    return dict(zip(videos.tolist(), labels.tolist()))


def match_labels(videos: Sequence[Path], labels: dict[str, str], where: str | Path) -> tuple[list[str], list[str]]:
    """Each video's label, in the order of `videos`, and the csv entries no video used.

    A video is matched by its file name first, then by its stem; a video without an entry, or an
    entry that names two of the videos (same stem, different endings), is an error.
    """
    where = str(where)
    problems, matched, used = [], [], set()
    by_stem: dict[str, list[Path]] = {}
    for video in videos:
        by_stem.setdefault(video.stem, []).append(video)
    for video in videos:
        key = video.name if video.name in labels else video.stem if video.stem in labels else None
        if key is None:
            problems.append(video)
            matched.append("")
            continue
        if key == video.stem and len(by_stem[key]) > 1:
            raise CorpusError(Problem(where, f"expected {key!r} to name one video, found it matches "
                                             f"{quote_items(v.name for v in by_stem[key])}: use the file names"))
        used.add(key)
        matched.append(labels[key])
    if problems:
        raise CorpusError(Problem(where, f"expected a label for every video, found none for "
                                         f"{quote_items(v.name for v in problems)}"))
    return matched, [k for k in labels if k not in used]


def label_problems(labels: Sequence[str], videos: Sequence[Path], label_map: dict[str, int], layout: str,
                   where: str | Path) -> list[Problem]:
    """Labels the label map cannot encode: characters of phrases (fingerspelling) or whole signs.

    The same checks `signpipe data validate` makes on the written corpus, made up front.
    """
    from signpipe.data.corpus import FINGERSPELLING

    where = str(where)
    problems = []
    if layout == FINGERSPELLING:
        unknown = sorted(set("".join(labels)) - set(label_map))
        for character in unknown:
            holders = [v.name for v, phrase in zip(videos, labels) if character in phrase]
            problems.append(Problem(where, f"expected phrase characters from the character map, found {character!r} "
                                           f"in the phrase of {quote_items(holders)}"))
    else:
        for sign in sorted(set(labels) - set(label_map)):
            holders = [v.name for v, label in zip(videos, labels) if label == sign]
            problems.append(Problem(where, f"expected signs from the sign map, found {sign!r} for "
                                           f"{quote_items(holders)}"))
    return problems
