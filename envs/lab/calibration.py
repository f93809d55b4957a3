"""Furnace calibration from the lab's own records (no simulator truth).

Method: the twin runs periodic reference firings (see :mod:`synthgap.envs.lab.furnace`):
a slow ramp through the melting points of Al, Ag and Au, the way a thermocouple is
checked against fixed points. Each melt is detected in the crucible (a sample-side
event), so at that moment the sample temperature is the known melting point T_m while
the logged thermocouple reads ``T_m + offset - drift + noise``. Hence each reading gives
``r = reading - T_m``, an unbiased measurement of the offset at that time, scattered by
the OU drift and thermocouple noise.

Estimates per furnace (run = one reference firing, J runs, n_j readings each):

* ``offset_K``: mean of the run means, K; ``offset_se_K`` its standard error from the
  scatter of the run means (which includes the offset's slow wander);
* ``offset_latest_K``: mean of the last run, K (the offset to correct the next firing);
* ``drift_scale_K``: pooled within-run standard deviation of ``r``, K: the short-term
  scatter of the sample temperature against the thermocouple (OU drift plus
  thermocouple noise; readings of one run are many drift correlation times apart);
* ``walk_K_per_sqrt_day``: method-of-moments estimate of the offset random walk from
  successive run means: ``E[(m_j+1 - m_j)^2] = w^2 dt + s^2 (1/n_j + 1/n_j+1)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .protocol import LabInputError
from .records import RECORD_FILES

__all__ = ["FurnaceCalibration", "fit_calibration", "calibrate_records"]

DAY = 86400.0  # s


@dataclass(frozen=True)
class FurnaceCalibration:
    """Fitted calibration of one furnace (K unless stated)."""

    furnace: int
    n_runs: int
    n_readings: int
    offset_K: float
    offset_se_K: float
    offset_latest_K: float
    drift_scale_K: float
    walk_K_per_sqrt_day: float

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def fit_calibration(references) -> dict[int, FurnaceCalibration]:
    """Fit every furnace's offset and drift scale from a references table.

    Args:
        references: a pandas DataFrame with columns firing_id, furnace, melting_point_K,
            reading_K, time_s (the ``references`` table of a record folder).

    Returns:
        furnace index -> :class:`FurnaceCalibration`.
    """
    need = {"firing_id", "furnace", "melting_point_K", "reading_K", "time_s"}
    if references is None or len(references) == 0:
        raise LabInputError("no reference readings in the records: nothing to calibrate "
                            "(run the lab with reference_every > 0)")
    missing = need - set(references.columns)
    if missing:
        raise LabInputError(f"references table lacks columns {sorted(missing)}")
    df = references.assign(r=references["reading_K"] - references["melting_point_K"])
    out: dict[int, FurnaceCalibration] = {}
    for f, g in df.groupby("furnace", sort=True):
        runs = g.groupby("firing_id", sort=False).agg(
            m=("r", "mean"), v=("r", "var"), n=("r", "size"), t=("time_s", "mean")
        ).sort_values("t")
        m, n, t = runs["m"].to_numpy(), runs["n"].to_numpy(), runs["t"].to_numpy()
        v = runs["v"].to_numpy()
        ok = n > 1
        within = (float(np.sqrt(np.sum(v[ok] * (n[ok] - 1)) / np.sum(n[ok] - 1)))
                  if ok.any() else math.nan)
        J = len(m)
        if J > 1:
            se = float(np.std(m, ddof=1) / math.sqrt(J))
            dm2 = np.diff(m) ** 2
            noise = (within**2 if math.isfinite(within) else 0.0) * (1 / n[:-1] + 1 / n[1:])
            dt_days = np.diff(t) / DAY
            walk2 = float(np.sum(dm2 - noise) / max(np.sum(dt_days), 1e-12))
            walk = math.sqrt(max(walk2, 0.0))
        else:
            se = within / math.sqrt(n[0]) if math.isfinite(within) else math.nan
            walk = math.nan
        out[int(f)] = FurnaceCalibration(int(f), J, int(n.sum()), float(np.mean(m)), se,
                                         float(m[-1]), within, walk)
    return out


def calibrate_records(records_dir: str | Path) -> dict[int, FurnaceCalibration]:
    """Read a record folder written by the twin and fit every furnace."""
    import pandas as pd

    d = Path(records_dir)
    p = d / f"{RECORD_FILES['references']}.csv"
    if d.is_file():
        raise LabInputError(f"{str(d)!r} is a file: give the records folder that 'synthgap lab run --out DIR' "
                            f"writes (it holds {p.name})")
    if not d.is_dir():
        raise LabInputError(f"records folder {str(d)!r} does not exist")
    if not p.exists():
        raise LabInputError(f"{str(d)!r} has no {p.name}: not a lab record folder")
    df = pd.read_csv(p) if p.stat().st_size > 1 else pd.DataFrame()
    return fit_calibration(df)


def calibration_json(cal: dict[int, FurnaceCalibration]) -> str:
    """One JSON object: {"furnaces": {"0": {...}, ...}}."""
    return json.dumps({"furnaces": {str(k): c.to_dict() for k, c in cal.items()}},
                      sort_keys=True)
