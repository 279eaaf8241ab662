"""Write-then-rename helpers, so a killed process never leaves a half-written file behind.

`atomic_directory` is how every command that writes a folder (`data synth`, `landmarks
preprocess`, the held-out corpora, video extraction) produces it:

- the output must not be, contain or sit inside one of the command's inputs (symbolic links
  resolved), so `--out` pointing at the corpus is refused before anything is read or written;
- an exclusive lock beside the output (`.NAME.lock`, an `flock` held for the whole run) stops a
  second writer of the same output at once, instead of both reporting success;
- the folder is built under a unique temporary name beside it (`.NAME.<random>.tmp`, so two
  runs never share one), created first, so a read-only location fails in one line before any
  expensive work;
- only after the body succeeded is the new folder swapped in: a previous output is moved aside,
  the new one renamed into place, then the old one deleted. A failed run removes its temporary
  folder (and any parent folders it created) and leaves what was there before as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from signpipe.errors import ConfigError, SignpipeError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_writable_file(path: str | Path) -> Path:
    """The output file `path`, after checking, before any expensive work, that it can be written:
    not a folder, and its folder (made if missing) takes a new file (tried for real, so a
    read-only file system is found even by root). A `SignpipeError` in one line otherwise."""
    given = Path(path)
    if given.is_dir():
        raise SignpipeError(f"{given}: expected an output file name, found a folder there")
    folder = given.expanduser().absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{given.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SignpipeError(f"{given}: expected a folder the output can be written in, found that {folder} is not "
                            f"writable ({_os_reason(exc)})") from None
    return given


# --- output folders -----------------------------------------------------------------------------


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _is_within(inner: Path, outer: Path) -> bool:
    """Whether `inner` is `outer` or below it (both resolved), also through bind mounts and
    hard-linked folders: any existing ancestor of `inner` that is the same file as `outer`."""
    if inner == outer or outer in inner.parents:
        return True
    if not outer.exists():
        return False
    for candidate in (inner, *inner.parents):
        try:
            if candidate.exists() and os.path.samefile(candidate, outer):
                return True
        except OSError:
            continue
    return False


def check_output_directory(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """The resolved output folder `path`, after checking it can be one: not an existing file, and
    neither equal to, inside, nor containing any of `inputs` (symbolic links resolved)."""
    given = Path(path)
    try:
        out = given.expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop on the way
        raise ConfigError(f"{given}: expected an output folder path, found one that cannot be resolved ({exc})") from None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{given}: expected an output folder, found a file there")
    for item in inputs:
        if item is None:
            continue
        source = Path(item).expanduser().resolve()
        if _is_within(out, source):
            same = out == source or (out.exists() and os.path.samefile(out, source))
            relation = "is" if same else "is inside"
            raise ConfigError(f"{given}: expected an output folder apart from the input {item}, found that it {relation} "
                              "the input (writing there would replace or alter what is being read); choose another output folder")
        if _is_within(source, out):
            raise ConfigError(f"{given}: expected an output folder apart from the input {item}, found that it contains "
                              "the input (replacing it would delete what is being read); choose another output folder")
    return out


def _create_parents(directory: Path) -> list[Path]:
    """`mkdir -p directory`; the folders it created, deepest first, for cleaning up on failure."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(missing)
        raise SignpipeError(f"{directory}: expected a folder the output can be written in, found that it cannot be "
                            f"created ({_os_reason(exc)})") from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; rmdir removes only empty folders
        try:
            folder.rmdir()
        except OSError:
            break


def lock_path(path: str | Path) -> Path:
    """The lock file held while `path` is being written: `.NAME.lock` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold the exclusive writer's lock of output `path` (its parent must exist), or refuse.

    An `flock` on `.NAME.lock` beside the output: the kernel drops it when its process dies, so a
    killed run never blocks the next one. The lock file is removed on release; a writer that
    opened it just before checks, once locked, that it still holds the file at that name.
    """
    lock = lock_path(path)
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            raise SignpipeError(f"{lock.parent}: expected a writable folder for the output {Path(path).name}, found "
                                f"that it is not writable ({_os_reason(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SignpipeError(f"{path}: expected no other run writing this output, found one writing it now "
                                    f"(it holds {lock}); wait for it to finish or choose another --out") from None
            if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                yield from _exclusive_create_lock(lock, path)  # a file system without flock
                return
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder released and removed it in between: try again on the new file
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _exclusive_create_lock(lock: Path, path: str | Path) -> Iterator[Path]:
    """Where `flock` is not supported: the lock is the file's exclusive creation (`O_EXCL`)."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise SignpipeError(f"{path}: expected no other run writing this output, found its lock file {lock} "
                            "(remove it if no run is writing there)") from None
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)


def unique_directory(parent: Path, prefix: str, suffix: str) -> Path:
    """A new folder `parent/<prefix><random><suffix>` no other call can get (like `mkdtemp`, but
    with the ordinary permissions, umask applied, as the output will keep them)."""
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(errno.EEXIST, "no unused temporary folder name", str(parent))


def _swap_in(tmp: Path, path: Path) -> None:
    """Rename the finished folder `tmp` onto `path`; an existing `path` is moved aside first and
    deleted only once the new one is in place (put back if the rename fails)."""
    if not (path.exists() or path.is_symlink()):
        os.replace(tmp, path)
        return
    backup = unique_directory(path.parent, f".{path.name}.", ".old")
    os.replace(path, backup)  # onto the empty folder just made: POSIX rename allows that
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(backup, path)
        raise
    shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(
    path: str | Path, overwrite: bool = False, *, inputs: Iterable[str | Path | None] = ()
) -> Iterator[Path]:
    """Build a directory under a unique temporary name and swap it into place when complete.

    Refuses (`SignpipeError`, before the body runs) an output that overlaps `inputs`, an existing
    non-empty one unless `overwrite`, one another run is writing, and one that cannot be written.
    On failure nothing that existed before is touched.
    """
    given = Path(path)
    path = check_output_directory(given, inputs)
    created = _create_parents(path.parent)
    try:
        with output_lock(path):
            if path.exists() and not os.access(path, os.W_OK | os.X_OK):
                raise SignpipeError(f"{given}: expected a writable output folder, found it read-only")
            if path.exists() and not overwrite and any(path.iterdir()):
                raise SignpipeError(f"{given}: output directory exists and is not empty (expected a new or empty "
                                    "directory, or the command's overwrite option where it has one)")
            try:
                tmp = unique_directory(path.parent, f".{path.name}.", ".tmp")
            except OSError as exc:
                raise SignpipeError(f"{path.parent}: expected a writable folder for the output {path.name}, found "
                                    f"that it is not writable ({_os_reason(exc)})") from None
            try:
                yield tmp
                _swap_in(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except BaseException:
        _remove_empty(created)
        raise
