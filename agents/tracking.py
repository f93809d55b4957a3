"""MLflow logging of a benchmark: one parent run, one child run per cell.

MLflow is imported here only, inside the function (``import mlflow`` costs about 1 s).
The store is resolved by :mod:`synthgap.agents.mlflow_store` (one place for all runs).
Metrics go in batches (``log_batch``: about 20x faster than one call per value).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict
from pathlib import Path

EXPERIMENT_NAME = "synthgap-benchmark"
_BATCH = 900  # MLflow's log_batch takes at most 1000 metrics per call


def log_benchmark(config, result, out: Path) -> str:
    """Log config, summary and figures (parent) and every cell's curves (children).

    Returns the parent run id.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.entities import Metric, Param, RunTag

    from .metrics import campaign_metrics
    from .mlflow_store import experiment_id, get_client

    client = get_client()
    exp_id = experiment_id(client, EXPERIMENT_NAME)
    now = int(time.time() * 1000)

    def finite(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    def log(run_id, metrics=(), params=(), tags=()):
        metrics = list(metrics)
        for i in range(0, max(len(metrics), 1), _BATCH):
            client.log_batch(run_id, metrics=metrics[i:i + _BATCH],
                             params=list(params) if i == 0 else [],
                             tags=list(tags) if i == 0 else [])

    parent = client.create_run(exp_id, run_name=f"benchmark-{out.name}",
                               tags={"synthgap.kind": "benchmark"})
    pid = parent.info.run_id
    params = [Param(k, str(v)[:500]) for k, v in asdict(config).items()]
    metrics = [Metric(f"{r['system_key']}.{r['planner']}.{k}", float(v), now, 0)
               for r in result.summary for k, v in r.items() if finite(v)]
    log(pid, metrics, params)
    for path in result.files.values():
        if Path(path).is_file():
            client.log_artifact(pid, path, "figures" if path.endswith(".png") else None)
    for row in result.rows:
        rec = next(r for r in result.cells.values()
                   if r["cell"]["system_key"] == row["system_key"]
                   and r["cell"]["planner"] == row["planner"] and r["cell"]["seed"] == row["seed"])
        child = client.create_run(exp_id, run_name=rec["cell"]["key"],
                                  tags={"mlflow.parentRunId": pid})
        ex = rec["experiments"]
        m = campaign_metrics([e["performance"] for e in ex], [e["buildable"] for e in ex],
                             [e["lab_hours"] for e in ex], row["oracle"])
        ms = [Metric(k, float(v), now, 0) for k, v in row.items() if finite(v)]
        for step, (b, g, h) in enumerate(zip(m["best_so_far"], m["regret"], m["cum_hours"],
                                             strict=True), start=1):
            ms += [Metric("best_so_far", b, now, step), Metric("regret", g, now, step),
                   Metric("cum_lab_hours", h, now, step)]
        cp = [Param(k, str(rec["cell"][k])) for k in ("system", "planner", "seed", "budget",
                                                       "batch_size")]
        log(child.info.run_id, ms, cp, [RunTag("pick_target", row["pick_target"])])
        client.set_terminated(child.info.run_id)
    client.set_terminated(pid)
    return pid
