"""SIGINT/SIGTERM during a campaign: unwind first, then the emergency stop.

:func:`stop_on_signals` installs a handler that touches nothing that takes a lock (no
port, no journal, no logging): it runs in the main thread between two bytecodes of
whatever was interrupted, possibly inside a Modbus transaction or inside
:meth:`Journal.append <synthgap.hardware.journal.Journal.append>` holding its lock, and
re-entering either would merge frames or deadlock. It only notes the signal and raises
(KeyboardInterrupt for SIGINT, SystemExit for SIGTERM). Once the stack has unwound to the
block no transaction is in flight: the signal is journaled and the stop sent. Only the
first signal raises; later ones (during the unwinding or the stop) are journaled, never
obeyed, so cleanup and the stop are not cut short. SIGKILL remains the hard stop; the
journal makes it resumable.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["stop_on_signals"]

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(stop: Callable[[str], Any], record: Callable[..., None]) -> Iterator[None]:
    """Within this block SIGINT/SIGTERM unwind it, then ``stop("signal <NAME>")`` runs.

    Args:
        stop: the emergency stop (takes the reason).
        record: journals an event, ``record(event, **data)``; each signal is journaled
            (``signal``, name; ``during="emergency stop"`` for one that came during the stop).
    """
    pending: list[str] = []

    def handler(signum: int, frame: object) -> None:
        pending.append(signal.Signals(signum).name)  # list.append: atomic, lock-free
        if len(pending) > 1:
            return  # already unwinding or stopping: let it finish
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        try:
            if pending:
                log.critical("%s: campaign unwound, emergency stop", pending[0])
                def note(name: str, **extra: str) -> None:  # a failing journal must not keep the stop back
                    try:
                        record("signal", name=name, **extra)
                    except Exception as exc:  # noqa: BLE001 - the log says it
                        log.critical("journaling signal %s failed: %r", name, exc)

                for name in pending[:]:
                    note(name)
                recorded = len(pending)
                stop(f"signal {pending[0]}")
                for name in pending[recorded:]:  # arrived during the stop
                    note(name, during="emergency stop")
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
