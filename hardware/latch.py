"""The latched emergency stop: as the journal records it, how it is sent, the text that clears it.

A stop *latches* (journal event :data:`LATCH_EVENT`, with its reason). While latched every
heating or motion command is refused with "emergency stop latched: <reason>": a setpoint
above the safe temperature, a ramp rate, a dwell, a robot move, milling, pressing, dosing,
taring, an XRD request. What still passes: reads and polls, a setpoint at or below the safe
temperature (it only cools; the stop itself sends one), ``end_dwell``, ``connect`` (it only
narrows what the controller accepts and caps the ramp rate), and further emergency stops.
Only an operator's reset (:data:`RESET_EVENT`: operator, reason, the stop it clears)
clears it; a poll does not. A shield built on a journal whose last stop was never reset
starts latched (:func:`latched_reason`), so a resumed campaign does too.

:func:`send_stop` sends the stop's commands: each is journaled, then sent, and a failure of
either (a full disk, a dead port) is logged and never keeps the next from going out.

Units: temperatures K.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from synthgap.envs.userfiles import short

from .journal import Journal
from .shield_values import brief_error

__all__ = ["LATCH_EVENT", "MAX_OPERATOR_TEXT", "RESET_EVENT", "check_operator_text", "latched_reason", "send_stop"]

log = logging.getLogger(__name__)

LATCH_EVENT = "emergency_stop_latched"  # journal event: a stop latched (reason)
RESET_EVENT = "emergency_stop_reset"  # journal event: an operator cleared the latch
MAX_OPERATOR_TEXT = 200  # characters of an operator name or reset reason


def check_operator_text(name: str, value: Any) -> str:
    """A non-empty printable line of at most ``MAX_OPERATOR_TEXT`` characters, else ValueError."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_OPERATOR_TEXT \
            or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty printable line of at most {MAX_OPERATOR_TEXT} "
                         f"characters, got {short(value)}")
    return value.strip()


def latched_reason(journal: Journal) -> tuple[str, int] | None:
    """``(reason, seq)`` of the last emergency stop in ``journal`` that no later reset
    cleared, else None."""
    stop = journal.last_event(LATCH_EVENT)
    reset = journal.last_event(RESET_EVENT)
    if stop is None or (reset is not None and reset.get("seq", 0) > stop.get("seq", 0)):
        return None
    return str(stop.get("reason", "unknown")), int(stop.get("seq", 0))


def send_stop(actions: list[tuple[str, Callable[[], Any]]], reason: str, *, record: Callable[..., None],
              safe_K: float, dry_run_log: list[tuple[str, dict[str, Any]]] | None) -> bool:
    """Journal and send each ``(command, action)`` of an emergency stop; True if all went out.

    Args:
        actions: the stop's commands, the safe setpoint (``"setpoint"``) first.
        reason: why the stop was sent.
        record: journals an event, ``record(event, **data)``.
        safe_K: the setpoint's value, K (journaled with it).
        dry_run_log: in dry run, where the commands are recorded instead of sent; else None.
    """
    ok = True
    for command, action in actions:
        # not through the shield's send: a journal that fails (disk full) must not keep the
        # stop from going out; the failure is logged and the stop sent all the same
        try:
            record("command", command=command, dry_run=dry_run_log is not None, reason=f"emergency stop: {reason}",
                   value=safe_K if command == "setpoint" else None)
        except Exception as exc:
            ok = False
            log.critical("emergency stop: journaling %s failed: %r; sending it anyway", command, exc)
        if dry_run_log is not None:
            dry_run_log.append((command, {"reason": f"emergency stop: {reason}"}))
            continue
        try:
            action()
        except Exception as exc:  # keep going: stop everything we can
            ok = False
            log.critical("emergency stop: %s failed: %r", command, exc)
            try:
                record("command_failed", command=command, error=brief_error(exc))
            except Exception:  # noqa: BLE001 - already logged at CRITICAL
                pass
    return ok
