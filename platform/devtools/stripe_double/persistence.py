"""`--state-file`: the double's state written to a JSON file, so a restarted `make run` keeps it.

Writing on every change would make a payout run of thousands of transfers quadratic, so changes
only mark the state dirty and a background thread writes at most every `interval_s`, atomically
(temporary file, then rename). `close` writes whatever is left.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read(path: Path) -> dict[str, Any] | None:
    """The snapshot at `path`, or None when there is none yet."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


class SnapshotWriter:
    def __init__(self, path: Path, dump: Callable[[], dict[str, Any]], *, interval_s: float = 0.5) -> None:
        self._path = path
        self._dump = dump
        self._interval_s = interval_s
        self._dirty = threading.Event()
        # Dirty from the start, so the file exists (and holds the starting balance) at once.
        self._dirty.set()
        self._stopping = threading.Event()
        self._write_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stripe-double-snapshots", daemon=True)
        self._thread.start()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def flush(self) -> None:
        """Write now if anything changed since the last write."""
        with self._write_lock:
            if not self._dirty.is_set():
                return
            self._dirty.clear()
            snapshot = self._dump()
            temporary = self._path.with_name(self._path.name + ".tmp")
            temporary.write_text(json.dumps(snapshot))
            os.replace(temporary, self._path)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            self.flush()
