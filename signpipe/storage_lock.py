"""A lock held in one Cloud Storage object, for steps on different machines that must not overlap.

Cloud Storage has no lock service, but it creates objects conditionally: an insert with
`ifGenerationMatch=0` succeeds only if no object of that name exists, so of several racing
inserts exactly one succeeds and the others get 412 Precondition Failed. The lock is such an
object. Its body names the owner (a random token; the host and process are there for a person
reading it), why it is held and how long the owner may hold it (`ttl_s`). Releasing deletes it with
`ifGenerationMatch` set to the generation this owner created, so a release never deletes a lock
someone else holds by then.

A holder that dies leaves its lock behind. A waiter treats a lock as stale once it is older than
its holder's `ttl_s` (the object's creation time, as Cloud Storage recorded it, against this
machine's clock) and deletes it, on the generation it read: of several waiters breaking the same
stale lock one succeeds, and none deletes a fresh lock taken meanwhile. Nothing renews a lock, so
`ttl_s` must exceed the longest critical section; the holder calls `check_held` right before its
decisive write and stops there if its lock was broken. A waiter gives up after `wait_s` with an
error naming the holder and the object to delete if no holder is alive.

The lock always goes through the Cloud Storage API, never through a Cloud Storage FUSE mount
(`/gcs/...`), whose file operations carry no generation preconditions.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from signpipe.errors import ConfigError, SignpipeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockState:
    """The lock object as read back: its generation, when Cloud Storage created it, its body."""

    generation: int
    created: datetime.datetime
    body: dict[str, Any]

    def expires(self, default_ttl_s: float) -> datetime.datetime:
        ttl = self.body.get("ttl_s")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            ttl = default_ttl_s
        return self.created + datetime.timedelta(seconds=float(ttl))

    def holder(self) -> str:
        who = self.body.get("host", "?"), self.body.get("pid", "?"), self.body.get("purpose", "")
        return f"{who[0]} pid {who[1]}" + (f" ({who[2]})" if who[2] else "")


class StorageLock:
    """An exclusive lock on `uri` (`gs://BUCKET/OBJECT`), as a context manager:

        with StorageLock("gs://bucket/models/m/.champion-lock.json", project, purpose="publish m") as lock:
            ...
            lock.check_held()
            ...  # the write the lock protects
    """

    def __init__(self, uri: str, project: str | None = None, credentials: Any = None, ttl_s: float = 600.0,
                 wait_s: float = 900.0, purpose: str = "", poll_s: float | None = None):
        bucket, _, name = uri[len("gs://"):].partition("/") if uri.startswith("gs://") else ("", "", "")
        if not (bucket and name and not name.endswith("/")):
            raise ConfigError(f"storage lock {uri!r}: expected gs://BUCKET/OBJECT")
        if not ttl_s > 0 or not wait_s >= 0:
            raise ConfigError(f"storage lock {uri}: ttl_s must be positive and wait_s 0 or more, got {ttl_s} and {wait_s}")
        self.uri, self.project, self.credentials = uri, project, credentials
        self.bucket_name, self.name = bucket, name
        self.ttl_s, self.wait_s, self.purpose = float(ttl_s), float(wait_s), purpose
        self.poll_s = poll_s if poll_s is not None else min(2.0, max(0.05, self.wait_s / 50))
        self.token: str | None = None
        self.generation: int | None = None
        self._bucket_handle: Any = None

    def __repr__(self) -> str:
        return f"StorageLock({self.uri!r}, held={self.generation is not None})"

    def _bucket(self) -> Any:
        if self._bucket_handle is None:
            from google.cloud import storage

            self._bucket_handle = storage.Client(project=self.project, credentials=self.credentials).bucket(self.bucket_name)
        return self._bucket_handle

    def _read(self) -> LockState | None:
        """The lock as it is now, or None when there is none (or it changed while being read)."""
        from google.api_core import exceptions

        blob = self._bucket().get_blob(self.name)
        if blob is None:
            return None
        try:
            raw = blob.download_as_bytes(if_generation_match=blob.generation)
        except (exceptions.NotFound, exceptions.PreconditionFailed):
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        created = blob.time_created or datetime.datetime.now(datetime.timezone.utc)
        return LockState(int(blob.generation), created, body if isinstance(body, dict) else {})

    def _break(self, stale: LockState) -> None:
        """Delete a stale lock, only if it is still the generation judged stale."""
        from google.api_core import exceptions

        log.warning("%s: breaking a stale lock held by %s since %s (expired %s)", self.uri, stale.holder(),
                    stale.created.isoformat(timespec="seconds"), stale.expires(self.ttl_s).isoformat(timespec="seconds"))
        try:
            self._bucket().blob(self.name).delete(if_generation_match=stale.generation)
        except (exceptions.NotFound, exceptions.PreconditionFailed):
            pass  # another waiter broke it first, or it was released

    def acquire(self) -> StorageLock:
        """Take the lock, waiting up to `wait_s` for its holder (breaking it once stale)."""
        from google.api_core import exceptions

        if self.generation is not None:
            raise SignpipeError(f"{self.uri}: this lock is already held here")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_s
        retries_at_once = 0
        while True:
            now = datetime.datetime.now(datetime.timezone.utc)
            body = {"owner": token, "host": socket.gethostname(), "pid": os.getpid(), "purpose": self.purpose,
                    "acquired": now.isoformat(timespec="seconds"), "ttl_s": self.ttl_s,
                    "expires": (now + datetime.timedelta(seconds=self.ttl_s)).isoformat(timespec="seconds")}
            blob = self._bucket().blob(self.name)
            try:
                blob.upload_from_string(json.dumps(body), content_type="application/json", if_generation_match=0)
            except exceptions.PreconditionFailed:
                pass
            else:
                self.token, self.generation = token, int(blob.generation)
                return self
            current = self._read()
            if current is not None and current.body.get("owner") == token:
                # an insert retried after its reply was lost: the first attempt had taken the lock
                self.token, self.generation = token, current.generation
                return self
            stale = current is not None and datetime.datetime.now(datetime.timezone.utc) >= current.expires(self.ttl_s)
            if stale:
                self._break(current)
            if (current is None or stale) and retries_at_once < 10:
                retries_at_once += 1  # the lock is free now: try again without waiting
                continue
            retries_at_once = 0
            left = deadline - time.monotonic()
            if left <= 0:
                held = (f"locked by {current.holder()} since {current.created.isoformat(timespec='seconds')} "
                        f"(expires {current.expires(self.ttl_s).isoformat(timespec='seconds')})"
                        if current is not None else "changing hands too fast to take")
                raise SignpipeError(
                    f"{self.uri}: {held}; gave up after waiting {self.wait_s:g} s. Another publish of this model is "
                    f"running; if none is, delete that object (gcloud storage rm {self.uri}) or wait until it "
                    f"expires, then publish again"
                )
            time.sleep(min(left, self.poll_s * random.uniform(0.5, 1.5)))

    def check_held(self) -> None:
        """Raise unless this lock is still ours (it was not broken after outliving `ttl_s`)."""
        current = self._bucket().get_blob(self.name)
        if self.generation is None or current is None or int(current.generation) != self.generation:
            raise SignpipeError(f"{self.uri}: the lock was lost (held past its {self.ttl_s:g} s and broken by another "
                                f"process); stopping before the write it protects")

    def release(self) -> None:
        """Delete the lock if it is still the one this owner created."""
        from google.api_core import exceptions

        if self.generation is None:
            return
        generation, self.generation, self.token = self.generation, None, None
        try:
            self._bucket().blob(self.name).delete(if_generation_match=generation)
        except (exceptions.NotFound, exceptions.PreconditionFailed):
            log.warning("%s: the lock had been broken by another process before it was released", self.uri)

    def __enter__(self) -> StorageLock:
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()
