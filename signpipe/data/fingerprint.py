"""A corpus fingerprint: what identifies the data a run read, cheaply enough to compute on every run.

A scheduled retraining points at the same corpus address every time; the pipeline's cache keys a
step by its inputs, and a corpus imported by address is the same input whether or not its files
changed. The fingerprint is what changes when they do: every step that reads the corpus takes it
as an input, so new data at the same address is read afresh and unchanged data may reuse the
cache. It is also the data's name in the lineage (the bundle's metadata, the registry: which
data trained the champion).

What it covers, every file under the corpus folder except hidden ones (names starting with a dot,
such as a writer's temporary folder):

- local folders: the content (SHA-256) of the metadata files (`.csv`, `.json`: small, and what
  says which sequences exist and what they mean), and each other file's size and modification
  time (hashing gigabytes of landmarks on every run would cost more than the cache saves; a
  writer that replaces a file changes its modification time);
- `gs://` folders: each object's MD5 (or CRC32C for composite objects, which have no MD5) and
  size from the Cloud Storage listing, without reading any object; the same bytes uploaded again
  keep their fingerprint.

The digest is over the sorted list of (relative path, content identity) lines; its first 32 hex
digits are the fingerprint (short enough to be a Vertex AI label value).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from signpipe.errors import ConfigError, SignpipeError

CONTENT_HASHED = (".csv", ".json")
"""Suffixes of the local files hashed by content (the corpus' metadata)."""
DIGITS = 32


@dataclasses.dataclass(frozen=True)
class CorpusFingerprint:
    """The fingerprint of one corpus folder and what it was computed over."""

    fingerprint: str
    uri: str
    n_files: int
    n_bytes: int
    method: str
    """"local" (metadata content, landmark sizes and times) or "gcs" (object MD5/CRC32C and sizes)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _digest(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:DIGITS]


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _local_fingerprint(root: Path) -> CorpusFingerprint:
    if not root.is_dir():
        raise SignpipeError(f"{root}: no such corpus folder (expected a corpus in the Kaggle layout)")
    lines, total = [], 0
    # followlinks: a corpus split into training and held-out signers may be made of links
    for directory, folders, files in os.walk(root, followlinks=True):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if _is_hidden(relative):
                continue
            try:
                info = path.stat()
                identity = (f"sha256={_file_sha256(path)}" if path.suffix.lower() in CONTENT_HASHED
                            else f"size={info.st_size},mtime_ns={info.st_mtime_ns}")
            except OSError as exc:
                raise SignpipeError(f"{path}: cannot be read to fingerprint the corpus ({exc.strerror or exc})") from None
            lines.append(f"{relative}\t{identity}")
            total += info.st_size
    if not lines:
        raise SignpipeError(f"{root}: an empty corpus folder (expected a corpus in the Kaggle layout)")
    return CorpusFingerprint(_digest(lines), str(root), len(lines), total, "local")


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """("bucket", "prefix/") of `gs://bucket/prefix`; the prefix ends with a slash (or is empty)."""
    if not uri.startswith("gs://"):
        raise ConfigError(f"{uri!r}: expected a gs://BUCKET/PATH address")
    bucket, _, prefix = uri[len("gs://"):].partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r}: expected a gs://BUCKET/PATH address (no bucket)")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _gcs_fingerprint(uri: str, client: Any = None) -> CorpusFingerprint:
    from google.api_core import exceptions
    from google.cloud import storage

    bucket, prefix = split_gcs_uri(uri)
    client = client or storage.Client()
    lines, total = [], 0
    try:
        for blob in client.list_blobs(bucket, prefix=prefix):
            relative = blob.name[len(prefix):]
            if not relative or relative.endswith("/") or _is_hidden(relative):
                continue  # the folder placeholders some tools create, hidden files
            if blob.md5_hash:
                identity = f"md5={blob.md5_hash}"
            elif blob.crc32c:
                identity = f"crc32c={blob.crc32c}"
            else:  # neither checksum listed: the object's generation changes with every write
                identity = f"generation={blob.generation}"
            lines.append(f"{relative}\t{identity},size={blob.size}")
            total += int(blob.size or 0)
    except exceptions.GoogleAPICallError as exc:
        raise SignpipeError(f"{uri}: the corpus cannot be listed to fingerprint it ({exc})") from None
    if not lines:
        raise SignpipeError(f"{uri}: no objects under this prefix (expected a corpus in the Kaggle layout)")
    return CorpusFingerprint(_digest(lines), uri, len(lines), total, "gcs")


def corpus_fingerprint(uri: str | Path, client: Any = None) -> CorpusFingerprint:
    """The fingerprint of the corpus at `uri`: a local folder, or `gs://BUCKET/PATH` (listed with
    `client`, by default a `google.cloud.storage.Client` with the ambient credentials)."""
    text = str(uri)
    if text.startswith("gs://"):
        return _gcs_fingerprint(text, client)
    return _local_fingerprint(Path(text))


def cache_key(fingerprint: str, max_age_days: int, now: float) -> str:
    """What the steps reading a corpus take as their input: the fingerprint, plus, when cached
    outputs must not outlive `max_age_days` (a bucket that deletes run artifacts after N days:
    a cache hit would point at deleted files), the number of the `max_age_days` period `now`
    falls in. A cached output is then reused only within the period it was made in, so never
    once it is `max_age_days` old."""
    if max_age_days < 0:
        raise ConfigError(f"cache_max_age_days must be 0 (cached outputs never expire) or more, got {max_age_days}")
    if max_age_days == 0:
        return fingerprint
    return f"{fingerprint}-p{int(now // (max_age_days * 86400))}"
