"""The videos a user hands to `signpipe extract`: are they videos at all, which files of a folder
to take, and which `sequence_id` each one gets.

These checks run in the main environment, before the video environment is started, so a typo or
a stray csv among the videos fails in a fraction of a second with every bad file named, instead of
after minutes of landmarking. A file is recognized by its first bytes, not by its name: a `.mp4`
that is really a text file is caught here, and a video renamed `.bin` is accepted. What only a
decoder can tell (a damaged stream, a container holding zero frames) is checked by the worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from signpipe.errors import CorpusError, Problem

#: file name endings taken as videos when a whole folder is extracted (case-insensitive)
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts",
                            ".flv", ".wmv", ".asf", ".ogv", ".3gp", ".y4m", ".gif"})
#: how many leading bytes `identify_file` reads; MPEG-TS needs its second sync byte at offset 188
HEADER_BYTES = 512
#: sequence ids stay below 2**31 like the competition's, so they fit any int32 consumer
SEQUENCE_ID_BITS = 31
_HASH_CHUNK = 1 << 20


class VideoError(CorpusError):
    """One or more input videos cannot be used; carries a `Problem` per bad file.

    A `CorpusError` because the videos are the source corpus of an extraction, and so the CLI lists
    every problem on its own line as it does for a corpus.
    """


@dataclass(frozen=True)
class FileKind:
    """What the first bytes of a file say it is, in words a user recognizes."""

    description: str
    is_video: bool


# ISO base media brands that are still images or audio, not video
_ISO_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif"}
_ISO_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
# (prefix, description, is_video), first match wins
_SIGNATURES: tuple[tuple[bytes, str, bool], ...] = (
    (b"\x1a\x45\xdf\xa3", "a Matroska/WebM video", True),
    (b"\x00\x00\x01\xba", "an MPEG program stream video", True),
    (b"\x00\x00\x01\xb3", "an MPEG video stream", True),
    (b"FLV", "a Flash video", True),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "a Windows Media (ASF) video", True),
    (b"OggS", "an Ogg container", True),
    (b"YUV4MPEG2", "a Y4M raw video", True),
    (b"GIF87a", "a GIF animation", True),
    (b"GIF89a", "a GIF animation", True),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", False),
    (b"\xff\xd8\xff", "a JPEG image", False),
    (b"PAR1", "a parquet file", False),
    (b"PK\x03\x04", "a zip archive", False),
    (b"%PDF", "a PDF document", False),
    (b"\x1f\x8b", "a gzip archive", False),
    (b"ID3", "an MP3 audio file", False),
    (b"fLaC", "a FLAC audio file", False),
)


def identify_bytes(header: bytes) -> FileKind:
    """Tell a video container from other files by the signature at the start of `header`."""
    if not header:
        return FileKind("an empty file (0 bytes)", False)
    if header[4:8] == b"ftyp":
        brand = header[8:12]
        if brand in _ISO_IMAGE_BRANDS:
            return FileKind("an HEIF/AVIF still image", False)
        if brand in _ISO_AUDIO_BRANDS:
            return FileKind("an MPEG-4 audio file", False)
        return FileKind("an MP4/QuickTime video", True)
    if header[4:8] in _QUICKTIME_ATOMS:
        return FileKind("a QuickTime video", True)
    if header[:4] == b"RIFF":
        riff_type = header[8:12]
        if riff_type == b"AVI ":
            return FileKind("an AVI video", True)
        if riff_type == b"WAVE":
            return FileKind("a WAV audio file", False)
        if riff_type == b"WEBP":
            return FileKind("a WebP image", False)
        return FileKind(f"a RIFF file of type {riff_type!r}", False)
    if len(header) > 188 and header[0] == 0x47 and header[188] == 0x47:
        return FileKind("an MPEG transport stream video", True)
    for prefix, description, is_video in _SIGNATURES:
        if header.startswith(prefix):
            return FileKind(description, is_video)
    if b"\x00" not in header:
        try:
            header.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(header) - 4:  # not just a character cut at the end of the header
                return FileKind("unrecognized binary data", False)
        return FileKind("a text file", False)
    return FileKind("unrecognized binary data", False)


def identify_file(path: str | Path) -> FileKind:
    """`identify_bytes` of a file's first bytes; raises `OSError` when it cannot be read."""
    with open(path, "rb") as stream:
        return identify_bytes(stream.read(HEADER_BYTES))


def video_problem(path: Path) -> Problem | None:
    """Why `path` cannot be extracted as a video, or `None` when it looks like one."""
    if not path.exists():
        return Problem(str(path), "expected a video file, found no such file")
    if path.is_dir():
        return Problem(str(path), "expected a video file, found a directory (extract a folder with extract_folder, "
                                  "or name its videos)")
    if not path.is_file():
        return Problem(str(path), "expected a video file, found a special file")
    try:
        kind = identify_file(path)
    except OSError as exc:
        return Problem(str(path), f"expected a readable video file, found it unreadable ({exc.strerror or exc})")
    if not kind.is_video:
        return Problem(str(path), f"expected a video (MP4/MOV, AVI, MKV/WebM, MPEG, ...), found {kind.description}")
    return None


def check_videos(videos: Iterable[str | Path]) -> list[Path]:
    """Absolute paths of `videos`, after checking every one; raises one `VideoError` naming all bad
    files (and any file given twice) so a user fixes the whole list in one go."""
    paths = [Path(v).expanduser().absolute() for v in videos]
    if not paths:
        raise VideoError(Problem("videos", "expected at least one video, found none"))
    problems = [p for p in map(video_problem, paths) if p is not None]
    seen: dict[Path, int] = {}
    for path in paths:
        seen[path.resolve()] = seen.get(path.resolve(), 0) + 1
    problems += [Problem(str(path), f"expected each video once, found it {count} times")
                 for path, count in seen.items() if count > 1]
    if problems:
        raise VideoError(problems)
    return paths


def folder_videos(directory: str | Path) -> tuple[list[Path], list[Path]]:
    """`(videos, ignored)` of one folder (not its subfolders), both sorted by name.

    Videos are the files with a video ending (`VIDEO_SUFFIXES`); everything else (a labels csv, a
    readme, hidden files) is returned as ignored, for the caller to report. The videos are not yet
    checked: `check_videos` does that, so a damaged `.mp4` is an error rather than skipped.
    """
    directory = Path(directory)
    if not directory.is_dir():
        found = "a file" if directory.exists() else "no such directory"
        raise VideoError(Problem(str(directory), f"expected a folder of videos, found {found}"))
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise VideoError(Problem(str(directory), f"expected video files ({', '.join(sorted(VIDEO_SUFFIXES))}), "
                                                 f"found {len(files)} other file{'s' if len(files) != 1 else ''}"))
    return videos, [p for p in files if p.suffix.lower() not in VIDEO_SUFFIXES]


def content_id(path: str | Path, bits: int = SEQUENCE_ID_BITS) -> int:
    """A number from the SHA-256 of a file's bytes, below `2**bits`.

    Ids derived from content make re-extracting the same video give the same `sequence_id`, and
    make collisions with the competition's ids (or another user's extraction) unlikely when an
    extracted corpus is added to a Kaggle one as supplemental data.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return int.from_bytes(digest.digest()[:8], "big") >> (64 - bits)


def unique_ids(ids: Sequence[int], bits: int = SEQUENCE_ID_BITS) -> list[int]:
    """`ids` with repeats moved to the next free number (in order), so two copies of one video, or
    two videos whose hashes collide, still get distinct sequence ids, deterministically."""
    taken: set[int] = set()
    out = []
    limit = 1 << bits
    for wanted in ids:
        candidate = wanted
        while candidate in taken:
            candidate = (candidate + 1) % limit
        taken.add(candidate)
        out.append(candidate)
    return out
