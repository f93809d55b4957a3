"""Where runs are kept: the one place that resolves and opens the MLflow store.

``--tracking-uri`` flag, else ``MLFLOW_TRACKING_URI``, else the embedded
``sqlite:///synthgap-runs/mlflow.db`` with artifacts in ``synthgap-runs/artifacts``
(relative to the current directory). For any ``sqlite:///PATH/x.db`` store the
experiments keep their artifacts in ``PATH/artifacts``, never in ``./mlruns``.

The registry (:mod:`synthgap.agents.rl.registry`) reads policies from this store; every
write (experiments, runs, metrics, models) is :mod:`synthgap.experiments.tracking`'s.
MLflow is imported inside the functions only (``import mlflow`` costs about 1 s).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///synthgap-runs/mlflow.db"
DEFAULT_ARTIFACT_ROOT = "synthgap-runs/artifacts"
LOG_BATCH_METRICS = 900  # metrics per log_batch call (MLflow takes at most 1000)


def store_uri(uri: str | None = None) -> str:
    """The store a command uses: flag, else ``MLFLOW_TRACKING_URI``, else the embedded default
    (nothing is created: for messages)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def resolve_tracking_uri(uri: str | None = None) -> tuple[str, str | None]:
    """``(tracking URI, artifact root or None)`` of :func:`store_uri`; a SQLite store's folder
    is created (the store is about to be opened)."""
    uri = store_uri(uri)
    root = None
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        root = str(db.parent / "artifacts")
    return uri, root


def get_client(uri: str | None = None):
    """An ``MlflowClient`` on the resolved store (also set as the fluent API's store)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    import mlflow

    uri, _ = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)
