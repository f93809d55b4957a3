"""Plain records of the lab: programmes, furnace logs, characterisations, samples.

Everything an agent may see about a sample is in :class:`SampleRecord`; what only the
simulator knows (the true sample temperature, the true phase fractions and property,
the true furnace offset) is a :class:`SampleTruth` the simulated lab keeps beside its
records (``Lab.truth``), never on the record. :func:`write_records` writes both as tidy tables
(one row per sample; CSV, and Parquet when pyarrow is installed) in separate files, so a
record folder handed to an agent can simply omit the ``truth*`` files.

Units: temperatures K, times s (lab clock; no wall-clock time anywhere), masses g,
humidity as a relative fraction (0-1), mill time h.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from synthgap.envs.chemistry import Recipe
from synthgap.envs.chemistry.discretisation import is_dwell
from synthgap.envs.chemistry.recipe import CONTINUOUS_FIELDS, ROOM_TEMPERATURE
from synthgap.envs.userfiles import short

__all__ = [
    "Segment", "Programme", "FurnaceLog", "FurnaceReadings", "Characterisation", "SampleTruth", "SampleRecord",
    "ReferenceReading", "write_records", "read_table", "RECORD_FILES", "CHAIN_STATIONS", "SampleStatus",
    "SAMPLE_STATUSES",
    "FiringStatus", "FIRING_STATUSES", "sample_status",
]

#: Where a sample stands: ``queued`` (submitted), ``running`` (in the chain), ``done``
#: (measured), ``failed`` (a furnace breakdown ended its firing: no measurement) or
#: ``dry_run`` (a hardware dry run: nothing sent, nothing measured).
SampleStatus = Literal["queued", "running", "done", "failed", "dry_run"]
SAMPLE_STATUSES: tuple[SampleStatus, ...] = get_args(SampleStatus)
#: How a firing ended: ``ok``, or ``failed`` (the furnace broke down during it).
FiringStatus = Literal["ok", "failed"]
FIRING_STATUSES: tuple[FiringStatus, ...] = get_args(FiringStatus)


def sample_status(value: Any, where: str = "status") -> SampleStatus:
    """``value`` as a :data:`SampleStatus`, for records built from data (journals, files).

    Raises:
        ValueError: not one of :data:`SAMPLE_STATUSES` (the message quotes it and lists them).
    """
    if isinstance(value, str) and value in SAMPLE_STATUSES:
        return value  # type: ignore[return-value]  # narrowed by the membership test
    raise ValueError(f"{where}: unknown sample status {short(value)}; expected one of {', '.join(SAMPLE_STATUSES)}")

#: the stations of the chain, in its order: every sample row has a wait and an instrument column for each.
CHAIN_STATIONS = ("robot", "balance", "mill", "press", "furnace", "xrd", "property")

#: table name -> file stem written by :func:`write_records`.
RECORD_FILES = {
    "samples": "samples",        # agent-visible, one row per sample
    "truth": "truth",            # simulator truth, one row per sample
    "firings": "firings",        # agent-visible furnace log, one row per firing
    "firings_truth": "firings_truth",
    "references": "references",  # melting-point reference readings, one row per reading
    "traces": "traces",          # logged setpoint + thermocouple, one row per step
    "usage": "usage",            # instrument use (Gantt), one row per use
}


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a furnace programme: the setpoint moves linearly.

    Attributes:
        kind: "ramp", "dwell" or "cool" (free text for the log; a segment is a dwell when
            its setpoint is flat, :func:`~synthgap.envs.chemistry.discretisation.is_dwell`).
        start_K: setpoint at the start, K.
        end_K: setpoint at the end, K.
        duration_s: s (> 0).
    """

    kind: str
    start_K: float
    end_K: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class Programme:
    """A furnace programme: setpoint segments run in order, plus the atmosphere."""

    segments: tuple[Segment, ...]
    atmosphere: str = "air"

    @classmethod
    def from_recipe(cls, recipe: Recipe, ambient_K: float = ROOM_TEMPERATURE) -> Programme:
        """Ramp from ambient at ``ramp_rate``, dwell, cool to ambient at ``cooling_rate``."""
        Td = recipe.dwell_temperature
        span = max(Td - ambient_K, 1e-6)
        return cls((
            Segment("ramp", ambient_K, Td, span * 60.0 / recipe.ramp_rate),
            Segment("dwell", Td, Td, recipe.dwell_time * 3600.0),
            Segment("cool", Td, ambient_K, span * 60.0 / recipe.cooling_rate),
        ), recipe.atmosphere)

    @property
    def max_setpoint_K(self) -> float:
        return max(max(s.start_K, s.end_K) for s in self.segments)

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    def dwell_mask(self, time_s: np.ndarray) -> np.ndarray:
        """(S,) bool: which steps of a trace fall in a dwell segment; ``time_s`` (S,) s are
        the steps' end times from the programme start, increasing."""
        mask = np.zeros(time_s.size, dtype=bool)
        bounds, t0 = [0.0], 0.0
        for s in self.segments:
            t0 += s.duration_s
            bounds.append(t0)
        edges = np.searchsorted(time_s, bounds, side="right").tolist()  # steps ending in (start, end]
        for k, s in enumerate(self.segments):
            if is_dwell(s.start_K, s.end_K):
                mask[edges[k]:edges[k + 1]] = True
        return mask

    def to_json(self) -> str:
        """Compact JSON of the segments (kind, start K, end K, duration s)."""
        return json.dumps([[s.kind, round(s.start_K, 3), round(s.end_K, 3), round(s.duration_s, 3)]
                           for s in self.segments], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class ReferenceReading:
    """A melting-point standard seen by the furnace thermocouple during a reference run.

    Attributes:
        firing_id, furnace: which run, which furnace.
        standard: the standard's name (e.g. "Ag").
        melting_point_K: its known melting point, K.
        reading_K: the logged thermocouple temperature when the melt was detected, K.
        time_s: lab time of the detection, s.
    """

    firing_id: str
    furnace: int
    standard: str
    melting_point_K: float
    reading_K: float
    time_s: float


@dataclass(slots=True)
class FurnaceLog:
    """What a furnace logged for one firing (a load of one or more crucibles).

    Attributes:
        firing_id, furnace: identifiers.
        sample_ids: the crucibles in the load.
        programme: the setpoint programme as commanded.
        status: :data:`FiringStatus`, "ok" or "failed" (breakdown during the firing).
        started_s, finished_s: lab time, s (finished = failure time when failed).
        time_s: (S,) s since the start of the programme, end of each logged step.
        setpoint_K: (S,) K, the working setpoint of each step.
        thermocouple_K: (S,) K, the logged thermocouple reading at the end of each step.
        references: melting-point readings (reference runs only).
        kind: "sample" or "reference".
    """

    firing_id: str
    furnace: int
    sample_ids: tuple[str, ...]
    programme: Programme
    status: FiringStatus
    started_s: float
    finished_s: float
    time_s: np.ndarray
    setpoint_K: np.ndarray
    thermocouple_K: np.ndarray
    references: tuple[ReferenceReading, ...] = ()
    kind: str = "sample"

    def summary(self) -> dict[str, float]:
        """Thermocouple summary: max, mean and std over the dwell segment(s), K."""
        tc = self.thermocouple_K
        if tc.size == 0:
            return {"tc_max_K": math.nan, "tc_dwell_mean_K": math.nan, "tc_dwell_std_K": math.nan}
        dwell = self.programme.dwell_mask(self.time_s)
        d = tc[dwell] if dwell.any() else tc
        mean = float(d.sum()) / d.size
        dev = d - mean
        return {"tc_max_K": float(tc.max()), "tc_dwell_mean_K": mean,
                "tc_dwell_std_K": math.sqrt(float(dev @ dev) / d.size)}


@dataclass(frozen=True, slots=True)
class FurnaceReadings:
    """What the furnace logged over one interval of a session.

    Attributes:
        time_s: (S,) s since the session's first setpoint, end of each logged step.
        setpoint_K: (S,) K, the working setpoint of each step.
        thermocouple_K: (S,) K, the thermocouple reading at the end of each step.
        mass_loss: fraction of the load's initial mass lost so far (thermogravimetric
            balance); NaN where the furnace has none.
        status: "ok", or "failed" (the furnace broke down: the session is over).
    """

    time_s: np.ndarray
    setpoint_K: np.ndarray
    thermocouple_K: np.ndarray
    mass_loss: float = math.nan
    status: Literal["ok", "failed"] = "ok"


@dataclass(slots=True)
class Characterisation:
    """Measured results of one sample.

    Attributes:
        phase_fractions: phase -> measured weight fraction (XRD; phases below the
            detection limit read 0; renormalised to sum 1 over detected phases).
        performance: the target's measured property (target's unit), with noise.
        xrd_id, property_id: instrument ids.
    """

    phase_fractions: dict[str, float]
    performance: float
    xrd_id: str = ""
    property_id: str = ""


@dataclass(slots=True)
class SampleTruth:
    """What only the simulator knows about a sample (never shown to agents).

    Attributes:
        dispensed_g: precursor -> mass actually dispensed, g (the balance read ``weighed``).
        moisture: precursor -> water mass fraction of the dispensed powder.
        purity: precursor -> mass fraction of the named phase in the dry lot.
        initial_mol: phase -> mol per mol of target intended, as passed to ``fire``.
        offset_K: the furnace's true calibration offset during the firing, K.
        trace_time_s, trace_K: the true sample temperature history (end of each step).
        dwell_mean_K: mean true sample temperature over the dwell, K.
        phase_fractions: phase -> true weight fraction after firing.
        target_fraction: true weight fraction of the target.
        grain_size_um: true grain size, um.
        performance: true (noise-free) property.
    """

    dispensed_g: dict[str, float] = field(default_factory=dict)
    moisture: dict[str, float] = field(default_factory=dict)
    purity: dict[str, float] = field(default_factory=dict)
    initial_mol: dict[str, float] = field(default_factory=dict)
    offset_K: float = math.nan
    trace_time_s: np.ndarray | None = None
    trace_K: np.ndarray | None = None
    dwell_mean_K: float = math.nan
    phase_fractions: dict[str, float] = field(default_factory=dict)
    target_fraction: float = math.nan
    grain_size_um: float = math.nan
    performance: float = math.nan

    def to_row(self, sample_id: str) -> dict[str, Any]:
        row: dict[str, Any] = {"sample_id": sample_id}
        for name, d in (("dispensed_g", self.dispensed_g), ("moisture", self.moisture),
                        ("purity", self.purity), ("initial_mol", self.initial_mol),
                        ("phase", self.phase_fractions)):
            for k, v in d.items():
                row[f"{name}.{k}"] = v
        row.update(offset_K=self.offset_K, dwell_mean_K=self.dwell_mean_K,
                   target_fraction=self.target_fraction, grain_size_um=self.grain_size_um,
                   performance=self.performance)
        return row


@dataclass(slots=True)
class SampleRecord:
    """Everything the lab recorded about one sample: what an agent may see.

    The simulator's truth about it is not here: a simulated lab keeps it beside its records
    (``Lab.truth[sample_id]``, a :class:`SampleTruth`).

    Attributes:
        sample_id, tag: identifiers (tag: free text, e.g. the submitting agent).
        recipe: the recipe as commanded.
        status: :data:`SampleStatus`: "queued", "running", "done", "failed" (furnace
            breakdown) or "dry_run" (hardware dry run).
        weighed_g: precursor -> balance reading, g.
        lot: precursor -> lot id.
        mill_time_h: milling time as logged, h.
        furnace: furnace index (-1 before firing); firing_id.
        programme: setpoint segments as commanded.
        tc_summary: logged thermocouple summary (see :meth:`FurnaceLog.summary`), K.
        humidity: lab relative humidity at dispensing (0-1).
        waits_s: station -> queue wait, s.
        instruments: station -> instrument id.
        xrd_phase_fractions: measured weight fractions (detection limit applied, noisy).
        performance: measured property (target's unit).
        started_s, finished_s: lab time, s.
    """

    sample_id: str
    tag: str
    recipe: Recipe
    status: SampleStatus = "queued"
    weighed_g: dict[str, float] = field(default_factory=dict)
    lot: dict[str, str] = field(default_factory=dict)
    mill_time_h: float = math.nan
    furnace: int = -1
    firing_id: str = ""
    programme: Programme | None = None
    tc_summary: dict[str, float] = field(default_factory=dict)
    humidity: float = math.nan
    waits_s: dict[str, float] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)
    xrd_phase_fractions: dict[str, float] = field(default_factory=dict)
    performance: float = math.nan
    started_s: float = math.nan
    finished_s: float = math.nan

    def to_row(self) -> dict[str, Any]:
        """A flat dict of the agent-visible fields (no truth), for the tidy table."""
        r = self.recipe
        row: dict[str, Any] = {
            "sample_id": self.sample_id, "tag": self.tag, "status": self.status,
            "target": r.target, "precursors": "+".join(r.precursors), "atmosphere": r.atmosphere,
        }
        for k in CONTINUOUS_FIELDS:
            row[f"cmd.{k}"] = getattr(r, k)
        for k, v in self.weighed_g.items():
            row[f"weighed_g.{k}"] = v
        for k in (*r.precursors, *(k for k in self.lot if k not in r.precursors)):
            row[f"lot.{k}"] = self.lot.get(k, "")  # "": a lab that tracks no lots
        row.update(mill_time_h=self.mill_time_h, humidity=self.humidity, furnace=self.furnace,
                   firing_id=self.firing_id,
                   programme=self.programme.to_json() if self.programme is not None else "")
        row.update(self.tc_summary)
        for k in (*CHAIN_STATIONS, *(k for k in self.waits_s if k not in CHAIN_STATIONS)):
            row[f"wait_s.{k}"] = self.waits_s.get(k, math.nan)  # NaN: not queued, or no queue
        for k in (*CHAIN_STATIONS, *(k for k in self.instruments if k not in CHAIN_STATIONS)):
            row[f"instrument.{k}"] = self.instruments.get(k, "")
        for k, v in self.xrd_phase_fractions.items():
            row[f"xrd.{k}"] = v
        row.update(performance=self.performance, started_s=self.started_s,
                   finished_s=self.finished_s)
        return row


def _frame(rows: Sequence[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(list(rows))


def write_records(
    out_dir: str | Path,
    records: Iterable[SampleRecord],
    firings: Iterable[FurnaceLog] = (),
    usage: Iterable[tuple[str, str, str, float, float]] = (),
    firing_truth: Iterable[dict[str, Any]] = (),
    parquet: bool = True,
    truth: Mapping[str, SampleTruth] | None = None,
) -> dict[str, Path]:
    """Write the lab's records as tidy tables; return table name -> CSV path.

    ``truth`` (sample id -> :class:`SampleTruth`, a simulated lab's) fills the ``truth``
    table; samples without one get no row.

    Files (``.csv`` and, if pyarrow is importable and ``parquet``, ``.parquet``):
    ``samples`` (agent-visible rows), ``truth``, ``firings``, ``firings_truth``,
    ``references``, ``traces`` (long format: firing_id, step, time_s, setpoint_K,
    thermocouple_K) and ``usage`` (station, unit, job, start_s, end_s). Contents depend
    only on the records, so one seed gives byte-identical files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = list(records)
    firings = list(firings)
    tables: dict[str, list[dict[str, Any]]] = {
        "samples": [r.to_row() for r in records],
        "truth": [truth[r.sample_id].to_row(r.sample_id) for r in records if truth and r.sample_id in truth],
        "firings": [], "references": [], "traces": [],
        "firings_truth": list(firing_truth),
        "usage": [dict(station=s, unit=u, job=j, start_s=a, end_s=b) for s, u, j, a, b in usage],
    }
    for f in firings:
        tables["firings"].append(dict(
            firing_id=f.firing_id, furnace=f.furnace, kind=f.kind, status=f.status,
            samples="+".join(f.sample_ids), programme=f.programme.to_json(),
            atmosphere=f.programme.atmosphere, started_s=f.started_s, finished_s=f.finished_s,
            **f.summary()))
        for ref in f.references:
            tables["references"].append(dict(
                firing_id=ref.firing_id, furnace=ref.furnace, standard=ref.standard,
                melting_point_K=ref.melting_point_K, reading_K=ref.reading_K, time_s=ref.time_s))
        for k in range(f.time_s.size):
            tables["traces"].append(dict(
                firing_id=f.firing_id, furnace=f.furnace, step=k, time_s=float(f.time_s[k]),
                setpoint_K=float(f.setpoint_K[k]), thermocouple_K=float(f.thermocouple_K[k])))
    try:
        import pyarrow  # noqa: F401

        have_parquet = parquet
    except ImportError:  # pragma: no cover - pyarrow is a pandas extra here
        have_parquet = False
    paths: dict[str, Path] = {}
    for name, rows in tables.items():
        df = _frame(rows)
        p = out / f"{RECORD_FILES[name]}.csv"
        df.to_csv(p, index=False, lineterminator="\n")
        paths[name] = p
        if have_parquet and len(df.columns):
            df.to_parquet(out / f"{RECORD_FILES[name]}.parquet", index=False)
    return paths


def read_table(records_dir: str | Path, name: str = "samples"):
    """Read one table written by :func:`write_records` as a pandas DataFrame."""
    import pandas as pd

    p = Path(records_dir) / f"{RECORD_FILES[name]}.csv"
    if not p.exists():
        raise FileNotFoundError(f"no {name} table at {p}")
    if p.stat().st_size <= 1:
        return pd.DataFrame()
    df = pd.read_csv(p)
    for col in ("tag", "firing_id", "programme", "samples"):  # "" reads back as NaN
        if col in df.columns:
            df[col] = df[col].astype(object).fillna("").astype(str)
    return df
