"""All MLflow writing of synthgap: training, evaluation, benchmark, deploy and demo runs.

The one module that creates experiments and runs and logs metrics, params, artifacts and
models; the agents and the hardware never import MLflow to write (the trainer takes SB3
logger outputs, the benchmark a :class:`~synthgap.agents.benchmark.BenchmarkTracker`, and
deploy's orchestration lives in :mod:`synthgap.experiments.deploy`).

Store: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the embedded
``sqlite:///synthgap-runs/mlflow.db`` with artifacts in ``synthgap-runs/artifacts``
(relative to the current directory), resolved by :mod:`synthgap.agents.mlflow_store` (the
registry reads the same store). For any ``sqlite:///PATH/x.db`` store the experiments keep
their artifacts in ``PATH/artifacts``, never in ``./mlruns``. MLflow is imported inside the
functions only (``import mlflow`` costs about 1 s). Metrics go in batches (``log_batch`` of
100 metrics: about 20x faster than 100 ``log_metric`` calls).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from synthgap.agents.mlflow_store import (  # noqa: F401  (re-exported: the store is opened through here)
    DEFAULT_ARTIFACT_ROOT,
    DEFAULT_TRACKING_URI,
    LOG_BATCH_METRICS,
    get_client,
    resolve_tracking_uri,
    store_uri,
)

TRAIN_EXPERIMENT = "synthgap-train"
EVAL_EXPERIMENT = "synthgap-evaluate"
BENCHMARK_EXPERIMENT = "synthgap-benchmark"
DEPLOY_EXPERIMENT = "synthgap-deploy"
DEMO_EXPERIMENT = "synthgap-demo"
CHECKPOINT_TAG = "synthgap.checkpoint_dir"
OUT_TAG = "synthgap.out_dir"
KIND_TAG = "synthgap.kind"
EXPERIMENT_TAG = "synthgap.experiment_id"  # a deploy run: the journal's experiment id
CAMPAIGN_TAG = "synthgap.campaign_id"
CURVE_METRICS = ("rollout/ep_rew_mean", "eval/mean_reward")


# ---------------------------------------------------------------------------------- store
@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit of synthgap's own source when it runs from a git checkout (an editable
    install), else None; "+dirty" when its tracked files have uncommitted changes. Read once
    per process (a benchmark creates a run per cell)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def run_tags(command: str, tags: dict[str, str] | None = None) -> dict[str, str]:
    """``tags`` plus the standard tags MLflow's UI shows for a run ("Source", "User", the git
    commit) and the synthgap version, for a run made by ``synthgap COMMAND``."""
    import getpass
    from importlib.metadata import PackageNotFoundError, version

    from mlflow.utils import mlflow_tags as mt

    out = {mt.MLFLOW_SOURCE_NAME: f"synthgap {command}", mt.MLFLOW_SOURCE_TYPE: "LOCAL"}
    try:
        out[mt.MLFLOW_USER] = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a bare container)
        pass
    commit = _git_commit()
    if commit:
        out[mt.MLFLOW_GIT_COMMIT] = commit
    try:
        out["synthgap.version"] = version("synthgap")
    except PackageNotFoundError:
        pass
    out.update(tags or {})
    return out


def create_run(client, experiment: str, run_name: str, command: str, tags: dict[str, str] | None = None):
    """A new run of ``experiment`` (an id) with :func:`run_tags`; MLflow's ``Run``."""
    return client.create_run(experiment, run_name=run_name, tags=run_tags(command, tags))


def experiment_id(client, name: str, uri: str | None = None) -> str:
    """Id of experiment ``name``, created with the store's artifact root if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    _, root = resolve_tracking_uri(uri)
    kwargs = {}
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
        kwargs["artifact_location"] = Path(root).resolve().as_uri()
    return client.create_experiment(name, **kwargs)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------- training
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
    import gymnasium
    import numpy as np
    import stable_baselines3
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    import mlflow
    from synthgap.agents.rl import registry
    from synthgap.agents.rl.envs import make_env
    from synthgap.agents.rl.signing import sha256_file

    env = make_env(config.env_id, config.env_kwargs)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    env.close()
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *obs_shape), "observation")]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *act_shape), "action")]))
    tags = {registry.ENV_ID_TAG: config.env_id, registry.ENV_KWARGS_TAG: json.dumps(config.env_kwargs, sort_keys=True),
            registry.ALGO_TAG: config.algo, registry.RUN_TAG: run_id}
    # what the served model imports; synthgap's own code travels with it (code_paths)
    reqs = [f"stable-baselines3=={stable_baselines3.__version__}", f"torch=={torch.__version__.split('+')[0]}",
            f"gymnasium=={gymnasium.__version__}", f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
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
            serving = pyfunc.write_serving_package(Path(tmp) / "code")
            info = mlflow.pyfunc.log_model(  # models from code: no pickled wrapper
                name="policy", python_model=str(pyfunc.CODE_FILE), code_paths=[str(serving)],
                artifacts={registry.POLICY_ARTIFACT: str(policy_zip), pyfunc.SIGNATURE_ARTIFACT: str(signed)},
                signature=signature, pip_requirements=reqs, metadata=dict(tags))
    mv = mlflow.register_model(info.model_uri, name, tags=tags)
    registry.sign_model_version(client, name, str(mv.version), policy_sha256)
    return name, str(mv.version)


# ---------------------------------------------------------------------------------- benchmark
def log_benchmark(config, result, out: Path) -> dict[str, str]:
    """Log a benchmark: config, summary and figures (parent run), every cell's curves (children).

    A :class:`synthgap.agents.benchmark.BenchmarkTracker`: returns ``{"mlflow_run_id": parent
    run id}`` for the result's files. The store is the default one (``MLFLOW_TRACKING_URI``).
    """
    from mlflow.entities import Metric, Param, RunTag

    from synthgap.agents.metrics import campaign_metrics

    client = get_client()
    exp_id = experiment_id(client, BENCHMARK_EXPERIMENT)
    now = int(time.time() * 1000)

    def log(run_id, metrics=(), params=(), tags=()):
        metrics = list(metrics)
        for i in range(0, max(len(metrics), 1), LOG_BATCH_METRICS):
            client.log_batch(run_id, metrics=metrics[i:i + LOG_BATCH_METRICS],
                             params=list(params) if i == 0 else [],
                             tags=list(tags) if i == 0 else [])

    parent = create_run(client, exp_id, f"benchmark-{out.name}", "benchmark", {KIND_TAG: "benchmark"})
    pid = parent.info.run_id
    params = [Param(k, str(v)[:500]) for k, v in asdict(config).items()]
    metrics = [Metric(f"{r['system_key']}.{r['planner']}.{k}", float(v), now, 0)
               for r in result.summary for k, v in r.items() if _finite(v)]
    log(pid, metrics, params)
    for path in result.files.values():
        if Path(path).is_file():
            client.log_artifact(pid, path, "figures" if path.endswith(".png") else None)
    for row in result.rows:
        rec = next(r for r in result.cells.values()
                   if r["cell"]["system_key"] == row["system_key"]
                   and r["cell"]["planner"] == row["planner"] and r["cell"]["seed"] == row["seed"])
        child = create_run(client, exp_id, rec["cell"]["key"], "benchmark", {"mlflow.parentRunId": pid})
        ex = rec["experiments"]
        m = campaign_metrics([e["performance"] for e in ex], [e["buildable"] for e in ex],
                             [e["lab_hours"] for e in ex], row["oracle"])
        ms = [Metric(k, float(v), now, 0) for k, v in row.items() if _finite(v)]
        for step, (b, g, h) in enumerate(zip(m["best_so_far"], m["regret"], m["cum_hours"], strict=True), start=1):
            ms += [Metric("best_so_far", b, now, step), Metric("regret", g, now, step),
                   Metric("cum_lab_hours", h, now, step)]
        cp = [Param(k, str(rec["cell"][k])) for k in ("system", "planner", "seed", "budget", "batch_size")]
        log(child.info.run_id, ms, cp, [RunTag("pick_target", row["pick_target"])])
        client.set_terminated(child.info.run_id)
    client.set_terminated(pid)
    return {"mlflow_run_id": pid}


# ---------------------------------------------------------------------------------- deploy
class ExperimentTracker:
    """One MLflow run per finished deploy experiment, keyed by the journal's experiment id."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEPLOY_EXPERIMENT) -> None:
        self.client = get_client(tracking_uri)
        self.experiment_id = experiment_id(self.client, experiment, tracking_uri)

    def find(self, experiment_id: str):
        """The run already logged for ``experiment_id``, or None."""
        runs = self.client.search_runs([self.experiment_id],
                                       filter_string=f"tags.`{EXPERIMENT_TAG}` = '{experiment_id}'", max_results=5)
        return runs[0] if runs else None

    def log(self, rec, reward: float, *, step: int, episode: int, campaign_id: str, policy: Any,
            journal: Path) -> bool:
        """Log the :class:`~synthgap.envs.lab.records.SampleRecord` ``rec`` unless its experiment
        id is already logged; True if logged now."""
        from mlflow.entities import Metric, Param, RunTag

        run = self.find(rec.sample_id)
        if run is not None and run.info.status == "FINISHED":
            return False
        if run is None:
            run = create_run(self.client, self.experiment_id, rec.sample_id, "deploy", {
                EXPERIMENT_TAG: rec.sample_id, CAMPAIGN_TAG: campaign_id, KIND_TAG: "deploy",
                "synthgap.journal": str(journal), "synthgap.policy": f"{policy.name}/{policy.version}",
                "synthgap.policy_sha256": policy.sha256})
        run_id = run.info.run_id
        r = rec.recipe
        values = {"reward": reward, "performance": rec.performance, "episode": episode,
                  "target_fraction": rec.xrd_phase_fractions.get(r.target, math.nan),
                  "lab_hours": (rec.finished_s - rec.started_s) / 3600.0}
        values.update({f"xrd.{p}": v for p, v in rec.xrd_phase_fractions.items()})
        values.update({f"tc.{k}": v for k, v in rec.tc_summary.items()})
        ts = 0
        metrics = [Metric(k, float(v), ts, step) for k, v in values.items() if math.isfinite(float(v))]
        params = [Param(k, str(v)) for k, v in r.to_dict().items()]
        params.append(Param("status", rec.status))
        self.client.log_batch(run_id, metrics=metrics, params=params,
                              tags=[RunTag("synthgap.status", rec.status)])
        self.client.set_terminated(run_id)
        return True


# ---------------------------------------------------------------------------------- demo
def log_report_run(client, experiment: str, run_name: str, *, params: dict[str, Any], metrics: dict[str, float],
                   tags: dict[str, str], folder: Path, tracking_uri: str | None = None, command: str = "demo") -> str:
    """One finished run holding ``params``, ``metrics`` (step 0), ``tags`` and the ``.png`` and
    ``.md`` files of ``folder`` under ``report/``; returns its id (the demo's report run, or
    that of ``synthgap COMMAND``)."""
    from mlflow.entities import Metric, Param, RunTag

    run = create_run(client, experiment_id(client, experiment, tracking_uri), run_name, command)
    rid = run.info.run_id
    stamp = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                     params=[Param(k, str(v)) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    for f in sorted(os.listdir(folder)):
        if f.endswith((".png", ".md")):
            client.log_artifact(rid, str(Path(folder) / f), "report")
    client.set_terminated(rid, "FINISHED")
    return rid


def adopted_run(client) -> str | None:
    """The run ``mlflow run`` started for us (``MLFLOW_RUN_ID``), if any and not yet used by synthgap."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return None
    run = client.get_run(run_id)
    return None if KIND_TAG in run.data.tags else run_id


# ---------------------------------------------------------------------------------- UI
def ui_command(port: int = 5000, uri: str | None = None, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow server`` command line serving the store on ``host:port``."""
    uri, root = resolve_tracking_uri(uri)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
           "--port", str(port), "--workers", "1"]
    if root is not None:
        cmd += ["--default-artifact-root", Path(root).resolve().as_uri()]
    return cmd


def __getattr__(name: str) -> Any:
    """``MLflowOutputFormat`` (SB3's logger into MLflow) loads SB3 and torch: only training
    pays for that, not deploy or the benchmark, which log through this module too."""
    if name == "MLflowOutputFormat":
        from .tracking_sb3 import MLflowOutputFormat

        return MLflowOutputFormat
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
