"""Append-only JSON-lines journal of every command and reading.

One event per line: ``{"seq": n, "time": unix_s, "monotonic": s, "event": name, ...}``.
Each append is flushed and ``os.fsync``-ed before returning, so an event written before
a command is sent survives a crash. Sequence numbers are monotonic and continue across
reopenings. A crash mid-write can leave a torn last line: :func:`read_journal` drops it
and reports it; :class:`Journal` truncates it (logged) before appending, so nothing
before it is lost and later lines stay parseable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalContents", "read_journal"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalContents:
    """Events read back; ``torn_tail`` holds the dropped partial last line, if any."""

    events: list[dict[str, Any]]
    torn_tail: str | None
    valid_bytes: int


def read_journal(path: str | Path) -> JournalContents:
    """Read every complete event of ``path``; a torn last line is dropped and reported.

    Raises:
        ValueError: a line other than the last is corrupt (that is not a torn write).
    """
    data = Path(path).read_bytes() if Path(path).exists() else b""
    events: list[dict[str, Any]] = []
    offset = 0
    torn = None
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        try:
            if last:  # no trailing newline: the write did not complete
                raise ValueError("unterminated")
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if last:
                torn = line.decode("utf-8", errors="replace")
                log.warning("journal %s: dropping torn last line (%d bytes)", path, len(line))
                break
            raise ValueError(f"journal {path}: corrupt line {i + 1}: {exc}") from exc
        events.append(event)
        offset += len(line) + 1
    return JournalContents(events, torn, offset)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN/inf; keep the information as text
    return value


class Journal:
    """Append-only event journal at ``path`` (created if missing).

    Args:
        path: the ``.jsonl`` file.
        fsync: ``os.fsync`` after every event (default; turn off only in tests).
    """

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()
        contents = read_journal(self.path)
        if contents.torn_tail is not None:
            with open(self.path, "r+b") as fh:
                fh.truncate(contents.valid_bytes)
            log.warning("journal %s: truncated torn tail %r", self.path, contents.torn_tail)
        self.seq = contents.events[-1]["seq"] if contents.events else 0
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open

    def append(self, event: str, **data: Any) -> int:
        """Write one event durably; returns its sequence number."""
        with self._lock:
            self.seq += 1
            record = {"seq": self.seq, "time": time.time(), "monotonic": time.monotonic(),
                      "event": event}
            record.update({k: _jsonable(v) for k, v in data.items()})
            self._fh.write(json.dumps(record, default=str) + "\n")
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            return self.seq

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
