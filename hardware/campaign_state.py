"""Campaign state of a hardware lab, and its resume from the journal.

- :class:`ScaledClock`: the lab clock, lab s since the lab was opened: monotonic wall
  seconds times ``time_scale`` (an emulated furnace running faster than real time). A
  :class:`~synthgap.hardware.lab.HardwareLab` takes any ``clock`` (a callable returning lab s);
  this is the default.
- :class:`CampaignState`: the campaign id and the experiment count, continued from an
  existing journal, the sample ids they make, and the queue of journaled records a resume
  replays instead of running the instruments again.
- :func:`record_to_dict` / :func:`record_from_dict`: a record as the journal holds it
  (``experiment_finished``), :func:`finished_records` reads those events back.

Units: times s (lab clock unless stated as wall-clock).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from synthgap.envs.chemistry import Recipe
from synthgap.envs.lab.protocol import LabInputError
from synthgap.envs.lab.records import Programme, SampleRecord, Segment, sample_status

from .journal import read_journal

__all__ = ["CampaignState", "ScaledClock", "finished_records", "record_from_dict", "record_to_dict"]

STARTED_EVENT = "experiment_started"  # journal event: an experiment was registered
FINISHED_EVENT = "experiment_finished"  # journal event: an experiment's whole record


class ScaledClock:
    """Lab seconds since creation: ``(monotonic() - at creation) * time_scale``.

    Args:
        time_scale: lab s per wall s; None: real time (1).
        monotonic: the wall clock, s (injectable for tests).
    """

    def __init__(self, time_scale: float | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.time_scale = time_scale or 1.0
        self._monotonic = monotonic
        self._opened = monotonic()

    def __call__(self) -> float:
        """The lab time, s."""
        return (self._monotonic() - self._opened) * self.time_scale


def _num(v: Any) -> float:
    return float(v) if v is not None else math.nan


def record_to_dict(rec: SampleRecord) -> dict[str, Any]:
    """The agent-visible fields of a record as JSON-able data (no truth)."""
    return {
        "sample_id": rec.sample_id, "tag": rec.tag, "recipe": rec.recipe.to_dict(), "status": rec.status,
        "weighed_g": dict(rec.weighed_g), "lot": dict(rec.lot), "mill_time_h": rec.mill_time_h,
        "furnace": rec.furnace, "firing_id": rec.firing_id,
        "programme": None if rec.programme is None else {
            "atmosphere": rec.programme.atmosphere,
            "segments": [[s.kind, s.start_K, s.end_K, s.duration_s] for s in rec.programme.segments]},
        "tc_summary": dict(rec.tc_summary), "humidity": rec.humidity, "waits_s": dict(rec.waits_s),
        "instruments": dict(rec.instruments), "xrd_phase_fractions": dict(rec.xrd_phase_fractions),
        "performance": rec.performance, "started_s": rec.started_s, "finished_s": rec.finished_s,
    }


def record_from_dict(d: dict[str, Any]) -> SampleRecord:
    """Inverse of :func:`record_to_dict`.

    Raises:
        ValueError: ``status`` is not a :data:`~synthgap.envs.lab.records.SampleStatus`.
    """
    prog = d.get("programme")
    programme = None if prog is None else Programme(
        tuple(Segment(k, float(a), float(b), float(t)) for k, a, b, t in prog["segments"]), prog["atmosphere"])
    return SampleRecord(
        d["sample_id"], d.get("tag", ""), Recipe.from_dict(d["recipe"]), sample_status(d["status"], "record.status"),
        weighed_g={k: float(v) for k, v in d.get("weighed_g", {}).items()}, lot=dict(d.get("lot", {})),
        mill_time_h=_num(d.get("mill_time_h")), furnace=int(d.get("furnace", -1)), firing_id=d.get("firing_id", ""),
        programme=programme, tc_summary={k: _num(v) for k, v in d.get("tc_summary", {}).items()},
        humidity=_num(d.get("humidity")), waits_s={k: float(v) for k, v in d.get("waits_s", {}).items()},
        instruments=dict(d.get("instruments", {})),
        xrd_phase_fractions={k: float(v) for k, v in d.get("xrd_phase_fractions", {}).items()},
        performance=_num(d.get("performance")), started_s=_num(d.get("started_s")),
        finished_s=_num(d.get("finished_s")))


def finished_records(journal_path: str | Path) -> list[dict[str, Any]]:
    """The ``experiment_finished`` events of a journal, in order (each has ``record``)."""
    return [e for e in read_journal(journal_path).events if e.get("event") == FINISHED_EVENT]


class CampaignState:
    """Campaign id, experiment count and resume queue of one lab.

    Args:
        campaign_id: 8 hex digits shared by every sample id of the campaign.
        started: experiments started so far (the next sample is number ``started + 1``).
    """

    def __init__(self, campaign_id: str, started: int = 0) -> None:
        self.campaign_id = campaign_id
        self.started = started
        self._replay: deque[dict[str, Any]] = deque()

    @classmethod
    def from_events(cls, events: Iterable[dict[str, Any]]) -> CampaignState:
        """Continue the campaign of a journal's events (its first ``campaign_id`` and its
        ``experiment_started`` count); a new campaign id if none was journaled."""
        events = list(events)
        campaign_id = next((e["campaign_id"] for e in events if "campaign_id" in e), uuid.uuid4().hex[:8])
        return cls(campaign_id, sum(1 for e in events if e.get("event") == STARTED_EVENT))

    @classmethod
    def from_journal(cls, path: str | Path) -> CampaignState:
        """:meth:`from_events` of the journal at ``path`` (a new campaign if it does not exist)."""
        return cls.from_events(read_journal(path).events if Path(path).exists() else [])

    def next_sample_id(self) -> str:
        """Count one more experiment and return its id, ``<campaign_id>-E<nnnn>``."""
        self.started += 1
        return f"{self.campaign_id}-E{self.started:04d}"

    # ------------------------------------------------------------------ resume
    def queue_replay(self, events: Iterable[dict[str, Any]]) -> None:
        """Queue journaled ``experiment_finished`` events to be replayed, in order."""
        self._replay.extend(events)

    @property
    def replaying(self) -> bool:
        """True while journaled records are still queued."""
        return bool(self._replay)

    def next_replayed(self, recipe: Recipe) -> SampleRecord:
        """The next queued record; it must be for ``recipe``.

        Raises:
            LabInputError: the journal recorded another recipe (the queue is dropped).
        """
        rec = record_from_dict(self._replay.popleft()["record"])
        if rec.recipe.to_dict() != recipe.to_dict():
            self._replay.clear()
            raise LabInputError(
                f"resume: the policy now proposes {recipe.to_dict()} but the journal recorded "
                f"{rec.recipe.to_dict()} for experiment {rec.sample_id}; resume needs the same deterministic policy")
        return rec
