"""Append-only JSON-lines journal of every command and reading.

One event per line: ``{"seq": n, "time": unix_s, "monotonic": s, "event": name, ...}``.
Each append is flushed and ``os.fsync``-ed before returning, so an event written before
a command is sent survives a crash. Sequence numbers are monotonic and continue across
reopenings. A crash mid-write can leave a torn last line: :func:`read_journal` drops it
and reports it; :class:`Journal` truncates it (logged) before appending, so nothing
before it is lost and later lines stay parseable. Any other line that is not a JSON
object with an integer ``seq`` (garbage, a nesting bomb, an integer of 5,000 digits) is a
``ValueError`` naming the file and the line.

Any value can be journaled, and every line stays short and valid JSON (no NaN
literals): NaN and infinities become ``"nan"``, ``"inf"``, ``"-inf"``; an integer wider
than 64 bits, an object JSON does not know (a numpy array, a set) becomes short text
(:func:`~synthgap.envs.userfiles.short`); a string longer than ``MAX_TEXT_CHARS``
keeps its first ``TEXT_PREFIX_CHARS`` and its length; containers keep at most
``MAX_ITEMS`` items and ``MAX_DEPTH`` levels; a line still longer than
``MAX_LINE_CHARS`` is written with every field quoted short (``"truncated": true``).
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

import numpy as np

from synthgap.envs.userfiles import short

__all__ = ["Journal", "JournalContents", "read_journal"]

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4096  # a journaled string longer than this is cut (an error message, a name)
TEXT_PREFIX_CHARS = 200  # characters kept of a cut string
MAX_ITEMS = 1000  # items kept of one list / dict
MAX_DEPTH = 32  # nesting levels kept
MAX_NODES = 20_000  # values converted per event (bounds shared / cyclic structures)
MAX_LINE_CHARS = 65_536  # longest line written; longer events are written quoted short
MAX_EXACT_INT_BITS = 63  # wider ints are journaled as text (a signed 64-bit integer fits)


@dataclass(frozen=True)
class JournalContents:
    """Events read back; ``torn_tail`` holds the start (at most ``TEXT_PREFIX_CHARS``
    characters) of the dropped partial last line, if any; ``valid_bytes`` is the length
    of the complete lines."""

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
            event = _parse_line(line)
        except ValueError as exc:
            if last:
                torn = line[:TEXT_PREFIX_CHARS].decode("utf-8", errors="replace")
                log.warning("journal %s: dropping torn last line (%d bytes)", path, len(line))
                break
            raise ValueError(f"journal {path}: corrupt line {i + 1}: {exc}; that is not a torn last "
                             "write: repair or move the file") from exc
        events.append(event)
        offset += len(line) + 1
    return JournalContents(events, torn, offset)


def _parse_line(line: bytes) -> dict[str, Any]:
    """One journal line as an event; ``ValueError`` (short) for anything else."""
    try:
        event = json.loads(line)
    except RecursionError:  # a line of 100,000 "[": not a ValueError in the json module
        raise ValueError("nested too deeply to be an event") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int of > 4300 digits
        raise ValueError(str(exc)[:TEXT_PREFIX_CHARS]) from None
    if not isinstance(event, dict):
        raise ValueError(f"not an event object: {short(event)}")
    seq = event.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValueError(f"no integer 'seq' (got {short(seq)})")
    return event


def _text(value: str) -> str:
    if len(value) <= MAX_TEXT_CHARS:
        return value
    return f"{value[:TEXT_PREFIX_CHARS]}... ({len(value)} chars, cut)"


def _jsonable(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """``value`` as something ``json.dumps(allow_nan=False)`` writes short (module docstring)."""
    budget = [MAX_NODES] if budget is None else budget
    budget[0] -= 1
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(str(value))
    if isinstance(value, np.generic):  # numpy scalars: as the Python number
        value = value.item() if isinstance(value, np.bool_ | np.integer | np.floating) else value
        if isinstance(value, np.generic):  # np.longdouble .item() stays numpy; complex, str_...
            return short(value)
        return _jsonable(value, depth, budget)
    if isinstance(value, int):
        return int(value) if value.bit_length() <= MAX_EXACT_INT_BITS else short(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))  # "nan", "inf", "-inf"
    if isinstance(value, os.PathLike):
        return _text(os.fspath(value)) if isinstance(os.fspath(value), str) else short(value)
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH or budget[0] <= 0:
            return f"<{type(value).__name__} nested too deeply or too large, cut>"
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for n, (k, v) in enumerate(value.items()):
                if n == MAX_ITEMS:
                    out["..."] = f"{len(value) - MAX_ITEMS} more keys cut"
                    break
                out[_text(k) if isinstance(k, str) else short(k)] = _jsonable(v, depth + 1, budget)
            return out
        items = [_jsonable(v, depth + 1, budget) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"... {len(value) - MAX_ITEMS} more items cut")
        return items
    return short(value)  # arrays, sets, bytes, objects: short text


def _encode(record: dict[str, Any]) -> str:
    """One journal line (no newline), at most about ``MAX_LINE_CHARS`` characters."""
    line = json.dumps(record, allow_nan=False)
    if len(line) <= MAX_LINE_CHARS:
        return line
    cut = {k: v if k in ("seq", "time", "monotonic", "event") else short(v, TEXT_PREFIX_CHARS)
           for k, v in record.items()}
    cut["truncated"] = True
    return json.dumps(cut, allow_nan=False)


def append_quietly(journal: Journal, event: str, **data: Any) -> None:
    """``journal.append``, but a failing journal (disk full) is logged at CRITICAL instead of
    raised: for what is journaled around an emergency stop, which must go out regardless."""
    try:
        journal.append(event, **data)
    except Exception as exc:  # noqa: BLE001
        log.critical("journaling %s failed: %r", event, exc)


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
        self._last: dict[str, dict[str, Any]] = {}
        for e in contents.events:
            self._last[str(e.get("event"))] = e
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open

    def append(self, event: str, **data: Any) -> int:
        """Write one event durably; returns its sequence number."""
        with self._lock:
            self.seq += 1
            record = {"seq": self.seq, "time": time.time(), "monotonic": time.monotonic(),
                      "event": event}
            record.update({k: _jsonable(v) for k, v in data.items()})
            self._fh.write(_encode(record) + "\n")
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
            self._last[event] = record
            return self.seq

    def last_event(self, event: str) -> dict[str, Any] | None:
        """The last event named ``event`` in this journal (read at opening or appended), or None."""
        with self._lock:
            return self._last.get(event)

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
