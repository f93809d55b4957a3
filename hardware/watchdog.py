"""The shield's watchdog: when to trip, and the thread that keeps asking.

The watchdog trips (an emergency stop) if no believed reading was taken for ``watchdog_s``
seconds, or a dwell runs past ``max_dwell_h``. :func:`watchdog_reason` is the rule;
:class:`WatchdogThread` calls a check every period until stopped.

Units: times s (the shield's monotonic clock), dwell h.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WatchdogThread", "watchdog_reason"]


def watchdog_reason(now: float, *, dwell_deadline: float | None, last_poll: float, watchdog_s: float | None,
                    tripped: bool, max_dwell_h: float) -> str | None:
    """Why the watchdog trips at ``now``, s, or None.

    Args:
        dwell_deadline: clock time the current dwell must end by, s (None: no dwell).
        last_poll: clock time of the last believed reading, s.
        watchdog_s: the no-poll timeout, s (None: off).
        tripped: the no-poll trip already fired since the last believed reading (it fires once).
        max_dwell_h: the dwell cap, h (for the message).
    """
    if dwell_deadline is not None and now > dwell_deadline:
        return f"dwell exceeded max_dwell_h={max_dwell_h}"
    if watchdog_s is not None and not tripped and now - last_poll > watchdog_s:
        return f"no poll for {now - last_poll:.1f} s (watchdog {watchdog_s} s)"
    return None


class WatchdogThread:
    """A daemon thread named ``safety-watchdog`` calling ``check()`` every ``period_s`` wall s."""

    def __init__(self, check: Callable[[], Any], period_s: float) -> None:
        self._check = check
        self.period_s = period_s
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="safety-watchdog", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._check()

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` wall s for it."""
        self._stop.set()
        self.thread.join(timeout=timeout_s)
