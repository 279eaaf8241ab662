"""A persistent XLA compilation cache shared by every training stage and every run.

On 2 CPU cores a short training stage spends a large share of its time compiling its train and
evaluation steps (seconds each, for every distinct batch shape). The steps of finetuning, the
noisy student and distillation, and of the next run on the same machine, are the same programs,
so jax's persistent cache turns every compilation after the first into a file read.

Where: `$SIGNPIPE_JAX_CACHE` when set (an empty value, or "off", switches the cache off), else
`$XDG_CACHE_HOME/signpipe/jax` (`~/.cache/signpipe/jax`). A cache entry is keyed by the program,
the jax/jaxlib version and the device, so a stale or foreign entry is never used; deleting the
folder is always safe.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

ENV_VAR = "SIGNPIPE_JAX_CACHE"
_enabled: Path | None = None


def cache_dir() -> Path | None:
    """The cache folder this process would use, or None when switched off."""
    value = os.environ.get(ENV_VAR)
    if value is not None:
        value = value.strip()
        if value == "" or value.lower() in ("off", "0", "none", "false"):
            return None
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "signpipe" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point jax's persistent compilation cache at `cache_dir()` (once per process); returns the
    folder, or None when off or when the folder cannot be made (the run goes on uncached)."""
    global _enabled
    if _enabled is not None:
        return _enabled
    folder = cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logging.getLogger(__name__).warning("compilation cache off: cannot create %s (%s)", folder, exc)
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    # every program is worth keeping: on CPU even the "fast" compilations take a second or more
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _enabled = folder
    return folder
