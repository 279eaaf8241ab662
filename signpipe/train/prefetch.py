"""Training batches prepared in a background thread while the device runs the previous step.

Augmentation and collation are numpy work on the host (about 20 ms for a batch of 32 on one CPU
core); run in line, the device waits for them at every step. jax releases the GIL while a
compiled step runs, so a thread that builds the next batches meanwhile hides most of that time.

The wrapper keeps the iterator's checkpoint contract: `state` is the position after the last
batch the loop *took*, not after the last one prepared, so a checkpoint resumes exactly where
training was, whatever the thread had prepared ahead. An exception in the thread is raised in
the loop at the batch where it happened.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from signpipe.train.batching import IteratorState

_DONE = object()


class PrefetchedBatches:
    """`batches` (a restorable iterator: `state`, `restore`, `__next__`) read `depth` batches ahead."""

    def __init__(self, batches: Any, depth: int = 2):
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, got {depth}")
        self.batches = batches
        self.depth = depth
        self._state: IteratorState = batches.state
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def state(self) -> IteratorState:
        return self._state

    def restore(self, state: IteratorState) -> None:
        self.close()
        self.batches.restore(state)
        self._state = self.batches.state

    def _produce(self, out: queue.Queue, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                batch = next(self.batches)
                item = (batch, self.batches.state, None)
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the consumer, raised at the batch it belongs to
            out.put((None, None, exc))

    def _start(self) -> None:
        self._stop = threading.Event()
        self._queue = queue.Queue(maxsize=self.depth)
        self._thread = threading.Thread(target=self._produce, args=(self._queue, self._stop), name="batch-prefetch",
                                        daemon=True)
        self._thread.start()

    def __iter__(self) -> PrefetchedBatches:
        return self

    def __next__(self) -> Any:
        if self._thread is None:
            self._start()
        assert self._queue is not None
        batch, state, error = self._queue.get()
        if error is not None:
            self.close()
            raise error
        self._state = state
        return batch

    def close(self) -> None:
        """Stop the thread; the wrapped iterator is left somewhere ahead of `state`, so a later
        `__next__` would restart from it: `restore(state)` first to go on exactly."""
        if self._thread is None:
            return
        self._stop.set()
        assert self._queue is not None
        while self._thread.is_alive():
            try:  # unblock a producer waiting on a full queue
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)
        self._thread = None
        self._queue = None
        # the wrapped iterator ran ahead: put it back where the consumer is
        self.batches.restore(self._state)
