"""MLflow tracking of training runs: store, SB3 logger output, artifacts, the policy as a model.

Store: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the embedded
``sqlite:///synthgap-runs/mlflow.db`` with artifacts in ``synthgap-runs/artifacts``
(relative to the current directory). For any ``sqlite:///PATH/x.db`` store the
experiments keep their artifacts in ``PATH/artifacts``, never in ``./mlruns``.
MLflow is imported inside the functions only (``import mlflow`` costs about 1 s).
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from synthgap.agents.mlflow_store import (  # noqa: F401  (re-exported for the CLI)
    DEFAULT_ARTIFACT_ROOT,
    DEFAULT_TRACKING_URI,
    experiment_id,
    get_client,
    resolve_tracking_uri,
)
from synthgap.agents.rl.callbacks import BufferedKVWriter

TRAIN_EXPERIMENT = "synthgap-train"
EVAL_EXPERIMENT = "synthgap-evaluate"
CHECKPOINT_TAG = "synthgap.checkpoint_dir"
OUT_TAG = "synthgap.out_dir"
KIND_TAG = "synthgap.kind"
_BATCH = 900  # log_batch takes at most 1000 metrics per call
CURVE_METRICS = ("rollout/ep_rew_mean", "eval/mean_reward")


class MLflowOutputFormat(BufferedKVWriter):
    """SB3 logger output writing metrics to one MLflow run with ``log_batch``."""

    name = "mlflow"

    def __init__(self, client, run_id: str, **kwargs):
        super().__init__(**kwargs)
        self.client, self.run_id = client, run_id

    def _send(self, metrics: list[list[Any]]) -> None:
        from mlflow.entities import Metric

        rows = [Metric(k, float(v), int(ts), int(step)) for k, v, step, ts in metrics]
        for i in range(0, len(rows), _BATCH):
            self.client.log_batch(self.run_id, metrics=rows[i:i + _BATCH])


def metric_floors(client, run_id: str) -> dict[str, int]:
    """Per metric key, the last step the run already holds."""
    run = client.get_run(run_id)
    return {key: max(m.step for m in client.get_metric_history(run_id, key)) for key in run.data.metrics}


def metric_curves(client, run_id: str, keys=CURVE_METRICS) -> dict[str, list[tuple[int, float]]]:
    """``{key: [(step, value), ...]}`` of a run's metric histories."""
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in keys}


def log_params(client, run_id: str, params: dict[str, str]) -> None:
    """Log parameters in one batch."""
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])


def log_json(client, run_id: str, data: Any, name: str) -> None:
    """Log ``data`` as a JSON artifact ``name``."""
    client.log_text(run_id, json.dumps(data, indent=1, default=str, sort_keys=True), name)


def env_spec(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A JSON-able description of the env: id, kwargs, spaces and the spec's fields."""
    from synthgap.agents.rl.envs import make_env

    env = make_env(env_id, env_kwargs)
    try:
        spec = env.spec
        return {"id": env_id, "kwargs": env_kwargs, "entry_point": str(spec.entry_point) if spec else None,
                "max_episode_steps": spec.max_episode_steps if spec else None,
                "observation_space": str(env.observation_space), "action_space": str(env.action_space),
                "observation_shape": list(env.observation_space.shape or ()),
                "action_shape": list(env.action_space.shape or ())}
    finally:
        env.close()


def default_model_name(env_id: str, algo: str) -> str:
    """``synthgap/Campaign-v0`` + ``ppo`` -> ``synthgap-Campaign-v0-ppo``."""
    return f"{env_id.replace('/', '-')}-{algo}"


def log_policy_model(client, run_id: str, policy_zip: str | Path, config, name: str) -> tuple[str, str]:
    """Log the SB3 zip as a pyfunc model of the run, register it as ``name`` and sign it.

    Returns ``(name, version)``. The zip is signed before logging (the signature goes into
    the pyfunc model's config), the version after registering: its tags hold the env id and
    kwargs, the algorithm, the folder's tree SHA-256 and the signature made with the user's
    key (created on first use); :func:`synthgap.agents.rl.registry.load_policy` checks them.
    """
    import numpy as np
    import stable_baselines3
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    import mlflow
    from synthgap.agents.rl import registry
    from synthgap.agents.rl.checkpoint import sha256_file
    from synthgap.agents.rl.envs import make_env

    env = make_env(config.env_id, config.env_kwargs)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    env.close()
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *obs_shape), "observation")]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *act_shape), "action")]))
    tags = {registry.ENV_ID_TAG: config.env_id, registry.ENV_KWARGS_TAG: json.dumps(config.env_kwargs, sort_keys=True),
            registry.ALGO_TAG: config.algo, registry.RUN_TAG: run_id}
    reqs = [f"stable-baselines3=={stable_baselines3.__version__}", f"torch=={torch.__version__.split('+')[0]}",
            f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    with mlflow.start_run(run_id=run_id, log_system_metrics=False), warnings.catch_warnings():
        # MLflow nags about input examples and its own type hints; the signature above is explicit
        warnings.filterwarnings("ignore", message=".*An input example was not provided", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
        import mlflow.pyfunc

        from synthgap.agents.rl import pyfunc

        policy_sha256 = sha256_file(policy_zip)
        with tempfile.TemporaryDirectory(prefix="synthgap-sign-") as tmp:
            signed = pyfunc.write_signature_file(tmp, config.algo, policy_sha256,
                                                 registry.sign_policy_zip(policy_sha256, config.algo))
            info = mlflow.pyfunc.log_model(  # models from code: no pickled wrapper
                name="policy", python_model=str(pyfunc.CODE_FILE),
                artifacts={registry.POLICY_ARTIFACT: str(policy_zip), pyfunc.SIGNATURE_ARTIFACT: str(signed)},
                signature=signature, pip_requirements=reqs, metadata=dict(tags))
    mv = mlflow.register_model(info.model_uri, name, tags=tags)
    registry.sign_model_version(client, name, str(mv.version), policy_sha256)
    return name, str(mv.version)


def ui_command(port: int = 5000, uri: str | None = None, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow server`` command line serving the store on ``host:port``."""
    uri, root = resolve_tracking_uri(uri)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
           "--port", str(port), "--workers", "1"]
    if root is not None:
        cmd += ["--default-artifact-root", Path(root).resolve().as_uri()]
    return cmd
