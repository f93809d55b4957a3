"""The SB3 logger output of :mod:`synthgap.experiments.tracking`: training metrics into one
MLflow run (kept apart because it imports stable-baselines3 and torch)."""

from __future__ import annotations

from typing import Any

from synthgap.agents.mlflow_store import LOG_BATCH_METRICS
from synthgap.agents.rl.callbacks import BufferedKVWriter

__all__ = ["MLflowOutputFormat"]


class MLflowOutputFormat(BufferedKVWriter):
    """SB3 logger output writing metrics to one MLflow run with ``log_batch``."""

    name = "mlflow"

    def __init__(self, client, run_id: str, **kwargs):
        super().__init__(**kwargs)
        self.client, self.run_id = client, run_id

    def _send(self, metrics: list[list[Any]]) -> None:
        from mlflow.entities import Metric

        rows = [Metric(k, float(v), int(ts), int(step)) for k, v, step, ts in metrics]
        for i in range(0, len(rows), LOG_BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=rows[i:i + LOG_BATCH_METRICS])
