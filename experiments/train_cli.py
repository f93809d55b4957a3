"""``synthgap train | promote | evaluate | ui``: train SB3 agents, tracked in MLflow.

Examples::

    synthgap train --env synthgap/FurnaceControl-v0 --algo sac --timesteps 20000
    synthgap train --resume RUN_ID                       # after Ctrl-C or a kill
    synthgap promote synthgap-FurnaceControl-v0-sac 3 --alias champion
    synthgap evaluate models:/synthgap-FurnaceControl-v0-sac@champion --episodes 20 --json
    synthgap ui --port 5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from synthgap.envs.userfiles import UserFileError, int_arg, parse_json, short

from .cli_common import interrupted, tracking_uri
from .evaluate_cli import evaluate_handler

DEFAULT_OUT = "synthgap-runs/train"
MAX_EPISODES = 100_000  # evaluation episodes
MAX_JSON_ARG_CHARS = 100_000  # characters of a JSON command-line value


class TrainCLIError(ValueError):
    """Bad command-line input for the training commands."""


def add_parsers(subparsers) -> None:
    """Add ``train``, ``promote``, ``evaluate`` and ``ui`` to an argparse sub-parser collection."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--tracking-uri", default=None, type=tracking_uri,
                       help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///synthgap-runs/mlflow.db)")

    p = subparsers.add_parser("train", parents=[store], help="train an RL agent (SB3), tracked in MLflow",
                              description="Train PPO/SAC/A2C on a registered env; log metrics, plots and the "
                                          "policy (registered as a model) to MLflow. Flags override --config.")
    p.add_argument("--env", dest="env_id", default=None, help="registered env id (default synthgap/FurnaceControl-v0)")
    p.add_argument("--algo", choices=("ppo", "sac", "a2c"), default=None, help="algorithm (sac: Box actions only)")
    p.add_argument("--timesteps", dest="total_timesteps", type=int_arg(), default=None,
                   help="total environment steps (1 to 10**9)")
    p.add_argument("--seed", type=int_arg(), default=None, help="0 to 2**32-1")
    p.add_argument("--n-envs", type=int_arg(), default=None,
                   help="envs stepped together: 1-64 in a DummyVecEnv, 1-4096 with --vectorization native")
    p.add_argument("--vectorization", choices=("dummy", "native"), default=None,
                   help="dummy: copies of the env in a DummyVecEnv (default); native: the env's own batched vector "
                        "env (Campaign-v0)")
    p.add_argument("--config", default=None, help="YAML file of TrainConfig fields")
    p.add_argument("--env-kwargs", default=None, help='JSON object of env arguments, e.g. \'{"budget": 10}\'')
    p.add_argument("--eval-freq", type=int_arg(), default=None, help="timesteps between evaluations (0: none)")
    p.add_argument("--checkpoint-freq", type=int_arg(), default=None, help="timesteps between checkpoints (0: none)")
    p.add_argument("--register-as", default=None, help="registered model name (default from env id and algo)")
    p.add_argument("--resume", default=None, metavar="RUN_ID", help="continue an interrupted run from its checkpoint")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"local folder for checkpoints and plots (default {DEFAULT_OUT})")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also write TensorBoard event files to DIR/RUN_ID (the metrics MLflow gets; needs the "
                        "tensorboard package: pip install 'synthgap[tensorboard]'); view with tensorboard --logdir DIR")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--verbose", action="store_true", help="print SB3's table of metrics at each dump")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=train_handler)

    p = subparsers.add_parser("promote", parents=[store], help="point an alias at a registered model version")
    p.add_argument("name", help="registered model name")
    p.add_argument("version", type=int_arg(1), help="model version number")
    p.add_argument("--alias", default="champion", help="alias to set (default champion)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=promote_handler)

    p = subparsers.add_parser("evaluate", parents=[store], help="evaluate a registered policy on its env",
                              description="Load a registered policy (hash-verified), run episodes on the env "
                                          "it was trained on, and log the evaluation as its own MLflow run.")
    p.add_argument("model_uri", help="models:/NAME@ALIAS or models:/NAME/VERSION")
    p.add_argument("--episodes", type=int_arg(1, MAX_EPISODES), default=20, help=f"1-{MAX_EPISODES:,}")
    p.add_argument("--seed", type=int_arg(0, 2**32 - 1), default=0, help="episodes use seeds seed, seed+1, ...")
    p.add_argument("--baseline", choices=("none", "random"), default="none",
                   help="also evaluate a random policy on the same seeds")
    p.add_argument("--out", default=None, help="folder for the evaluation plot (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--trust-digest", default=None, metavar="SHA256",
                   help="load the model if its files hash to this tree SHA-256, signed or not (a colleague's "
                        "model: the sha256 their evaluate or deploy journal reports)")
    p.set_defaults(func=evaluate_handler)

    p = subparsers.add_parser("ui", parents=[store], help="serve the MLflow UI on 127.0.0.1")
    p.add_argument("--port", type=int_arg(1, 65535), default=5000)
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    p.set_defaults(func=ui_handler)


_CONFIG_FLAGS = {"env_id": "--env", "algo": "--algo", "total_timesteps": "--timesteps", "seed": "--seed",
                 "n_envs": "--n-envs", "vectorization": "--vectorization", "config": "--config",
                 "env_kwargs": "--env-kwargs", "eval_freq": "--eval-freq",
                 "checkpoint_freq": "--checkpoint-freq", "register_as": "--register-as"}


def config_from_args(args):
    """The validated :class:`TrainConfig`: defaults, then ``--config``, then flags."""
    from synthgap.agents.rl.config import ConfigError, TrainConfig, load_config

    config = load_config(args.config) if args.config else TrainConfig()
    env_kwargs = None
    if args.env_kwargs is not None:
        if len(args.env_kwargs) > MAX_JSON_ARG_CHARS:
            raise ConfigError(f"--env-kwargs: longer than {MAX_JSON_ARG_CHARS:,} characters")
        try:
            env_kwargs = parse_json(args.env_kwargs, "--env-kwargs")
        except UserFileError as exc:
            raise ConfigError(f"{exc}: {short(args.env_kwargs)}") from None
        if not isinstance(env_kwargs, dict):
            raise ConfigError(f"--env-kwargs: must be a JSON object, got {short(args.env_kwargs)}")
    try:
        return config.updated(env_id=args.env_id, algo=args.algo, total_timesteps=args.total_timesteps,
                              seed=args.seed, n_envs=args.n_envs, vectorization=args.vectorization,
                              env_kwargs=env_kwargs, eval_freq=args.eval_freq,
                              checkpoint_freq=args.checkpoint_freq)
    except ConfigError as exc:  # name the flag when a flag set the bad field
        name = str(exc).split(":", 1)[0]
        if name in _CONFIG_FLAGS and getattr(args, name, None) is not None:
            raise ConfigError(f"{_CONFIG_FLAGS[name]}: {exc}") from None
        raise


def _check_env(config) -> None:
    from synthgap.agents.rl.envs import check_algo_fits, check_vectorization, make_env
    from synthgap.agents.rl.trainer import check_fits

    env = make_env(config.env_id, config.env_kwargs)  # an unknown id or bad kwargs are named first
    try:
        check_vectorization(config.env_id, config.vectorization)
        check_algo_fits(config.algo, env.action_space)
    finally:
        env.close()
    check_fits(config)


def train_handler(args) -> int:
    """``synthgap train``: train, then print the run's summary."""
    if args.json:  # stdout is one JSON object: the progress bar (rich, on stdout) goes to stderr
        with contextlib.redirect_stdout(sys.stderr):
            summary = train_run(args)
    else:
        summary = train_run(args)
    if args.json:
        json.dump(summary, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    else:
        print(final_line(summary))
    return 0


def final_line(summary: dict) -> str:
    """``train``'s summary in words: what was trained where, buildable performance first, reward second."""
    final = summary["final_eval"]

    def ci(key: str, fmt: str) -> str:
        low, high = final.get(f"{key}_low"), final.get(f"{key}_high")
        band = f" [{low:{fmt}}, {high:{fmt}}]" if low is not None and high is not None else ""
        return f"{final[key]:{fmt}}{band}"

    what = []
    if "mean_best_buildable" in final:
        what.append(f"best buildable performance {ci('mean_best_buildable', '.3f')} of each world's oracle")
    if math.isfinite(final.get("mean_performance_of_oracle", math.nan)):
        what.append(f"true performance at unloading {ci('mean_performance_of_oracle', '.3f')} of each world's oracle")
    what.append(f"mean reward {ci('mean_reward', '.4g')}")
    held_out = summary.get("final_eval_env_kwargs", {}).get("split") == "test"
    return (f"run {summary['run_id']}: {summary['algo']} on {summary['env_id']} ({summary['system']}), "
            f"{summary['num_timesteps']:,} steps in {summary['train_seconds']:.1f} s; final evaluation over "
            f"{final['episodes']:.0f} episodes{' in held-out worlds' if held_out else ''}, "
            f"mean [95 % bootstrap]: {'; '.join(what)}; "
            f"registered {summary['model_name']} version {summary['model_version']}")


def parse_train_args(argv: list[str]) -> argparse.Namespace:
    """``synthgap train ARGV`` parsed as the CLI does (for callers that train from code, e.g. the demo)."""
    parser = argparse.ArgumentParser(prog="synthgap")
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(["train", *argv])


def _check_tensorboard(folder: str) -> None:
    """``--tensorboard DIR``: a usable folder, and the package that writes event files."""
    import importlib.util

    if not folder.strip():
        raise TrainCLIError("--tensorboard needs a folder (e.g. --tensorboard synthgap-runs/tensorboard)")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise TrainCLIError(f"--tensorboard {short(folder)}: is a file, not a folder")
    if importlib.util.find_spec("tensorboard") is None:
        raise TrainCLIError("--tensorboard needs the tensorboard package: pip install 'synthgap[tensorboard]' "
                            "(or leave the flag out: every metric is in MLflow)")


def train_run(args) -> dict:
    """Train (or resume) a run; log everything to MLflow; register the final policy; return its summary."""
    from stable_baselines3.common.logger import HumanOutputFormat

    from synthgap.agents.rl.checkpoint import read_checkpoint
    from synthgap.agents.rl.config import dump_config, load_config
    from synthgap.agents.rl.trainer import train

    from . import tracking

    if args.resume:
        given = [flag for dest, flag in _CONFIG_FLAGS.items() if getattr(args, dest) is not None]
        if given:
            raise TrainCLIError(f"--resume continues the run with its stored configuration; drop {given[0]}")
    else:
        config = config_from_args(args)  # all input checked before the store is touched
        _check_env(config)
    if args.tensorboard is not None:
        _check_tensorboard(args.tensorboard)
    from mlflow.exceptions import MlflowException  # about 1 s: only once the input is known good

    client = tracking.get_client(args.tracking_uri)
    if args.resume:
        try:
            run = client.get_run(args.resume)
        except MlflowException:
            store = tracking.store_uri(args.tracking_uri)
            raise TrainCLIError(f"--resume: no run {short(args.resume)} in {store}") from None
        run_id = run.info.run_id
        if tracking.OUT_TAG not in run.data.tags or tracking.CHECKPOINT_TAG not in run.data.tags:
            raise TrainCLIError(f"--resume: run {run_id} was not started by synthgap train")
        if run.info.status == "FINISHED":
            raise TrainCLIError(f"--resume: run {run_id} already finished; start a new run")
        run_dir = Path(run.data.tags[tracking.OUT_TAG])
        config = load_config(run_dir / "config.yaml")
        read_checkpoint(run.data.tags[tracking.CHECKPOINT_TAG])  # fail now, clearly, if there is nothing to resume
        floors = tracking.metric_floors(client, run_id)
        client.update_run(run_id, status="RUNNING")
        name = run.data.tags.get("synthgap.register_as") or tracking.default_model_name(config.env_id, config.algo)
    else:
        name = args.register_as or tracking.default_model_name(config.env_id, config.algo)
        run_id = tracking.adopted_run(client)
        if run_id is None:
            exp = tracking.experiment_id(client, tracking.TRAIN_EXPERIMENT, args.tracking_uri)
            run = tracking.create_run(client, exp, f"{config.env_id.split('/')[-1]}-{config.algo}-s{config.seed}",
                                      "train")
            run_id = run.info.run_id
        client.set_tag(run_id, tracking.KIND_TAG, "train")
        client.set_tag(run_id, "synthgap.register_as", name)
        run_dir = Path(args.out).resolve() / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        client.set_tag(run_id, tracking.OUT_TAG, str(run_dir))
        client.set_tag(run_id, tracking.CHECKPOINT_TAG, str(run_dir / "checkpoints"))
        given = client.get_run(run_id).data.params  # an adopted run holds the MLproject's parameters
        tracking.log_params(client, run_id, {k: v for k, v in config.as_params().items() if k not in given})
        client.log_artifact(run_id, str(dump_config(config, run_dir / "config.yaml")))
        tracking.log_json(client, run_id, tracking.env_spec(config.env_id, config.env_kwargs), "env_spec.json")
        floors = {}
    writer = tracking.MLflowOutputFormat(client, run_id, floors=floors)
    outputs = [writer] + ([HumanOutputFormat(sys.stdout)] if args.verbose else [])
    if args.tensorboard is not None:
        from stable_baselines3.common.logger import TensorBoardOutputFormat

        board = Path(args.tensorboard).resolve() / run_id
        outputs.append(TensorBoardOutputFormat(str(board)))
        client.set_tag(run_id, "synthgap.tensorboard", str(board))
    store = tracking.store_uri(args.tracking_uri)
    print(f"synthgap: run {run_id} ({config.algo} on {config.env_id}, {config.total_timesteps} steps; store {store}"
          + (f"; TensorBoard {board}" if args.tensorboard is not None else "") + ")", file=sys.stderr)
    try:
        result = train(config, run_dir, output_formats=outputs, checkpoint_dir=run_dir / "checkpoints",
                       resume=bool(args.resume), progress_bar=not args.no_progress)
    except BaseException as exc:
        if interrupted(exc):  # the resume line first: marking the run may itself fail
            print(f"synthgap: interrupted; resume with: synthgap train --resume {run_id}", file=sys.stderr)
        mark_ended(lambda: tracking.get_client(args.tracking_uri), client, run_id,
                   "KILLED" if interrupted(exc) else "FAILED")
        raise
    return finish_run(client, run_id, run_dir, config, result, name)


def mark_ended(new_client, client, run_id: str, status: str, attempts: int = 3) -> bool:
    """Set the run's end status; return whether the store took it.

    A Ctrl-C can land in the middle of a store write and leave that client's database
    session unusable, so a failed write is retried on a fresh client (``new_client()``).
    When every attempt fails the run stays RUNNING (``--resume`` still takes it) and the
    reason is printed, never raised: the interruption is the error the user must see."""
    import time

    last = None
    for attempt in range(attempts):
        try:
            (client if attempt == 0 else new_client()).set_terminated(run_id, status)
            return True
        except Exception as exc:  # noqa: BLE001 - any store failure; reported below
            last = exc
            time.sleep(0.2 * (attempt + 1))
    print(f"synthgap: could not mark run {run_id} {status} ({type(last).__name__}); it stays RUNNING",
          file=sys.stderr)
    return False


def finish_run(client, run_id: str, run_dir: Path, config, result, name: str) -> dict:
    """Log the learning curve, evaluation plots and summary, then the policy as a registered model."""
    from mlflow.entities import Metric

    from synthgap.agents.rl.envs import env_systems, evaluation_kwargs
    from synthgap.agents.rl.evaluation import plot_episodes, plot_learning_curve, run_episodes, summarize
    from synthgap.agents.rl.trainer import EVAL_SEED_OFFSET

    from . import tracking

    curve = plot_learning_curve(tracking.metric_curves(client, run_id), run_dir / "learning_curve.png",
                                f"{config.algo} on {config.env_id}")
    client.log_artifact(run_id, str(curve), "plots")
    model = result.model
    episodes = run_episodes(lambda o: model.predict(o, deterministic=True)[0], config.env_id,
                            evaluation_kwargs(config.env_kwargs), config.final_eval_episodes,
                            config.seed + EVAL_SEED_OFFSET)
    final = summarize(config.env_id, episodes)
    client.log_artifact(run_id, str(plot_episodes(config.env_id, episodes, run_dir / "evaluation.png")), "plots")
    import time

    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"final_eval/{k}", v, stamp, result.num_timesteps)
                                      for k, v in final.items()])
    summary = {"run_id": run_id, "env_id": config.env_id, "system": env_systems(config.env_id, config.env_kwargs),
               "algo": config.algo, "num_timesteps": result.num_timesteps,
               "train_seconds": result.seconds, "resumed_from": result.resumed_from, "final_eval": final,
               "final_eval_env_kwargs": evaluation_kwargs(config.env_kwargs),
               "model_name": name}
    tracking.log_json(client, run_id, summary, "summary.json")
    _, version = tracking.log_policy_model(client, run_id, result.model_path, config, name)
    summary["model_version"] = version
    summary["model_uri"] = f"models:/{name}/{version}"
    return summary


def promote_handler(args) -> int:
    """Set ``--alias`` on model ``name`` version ``version``."""
    from mlflow.exceptions import MlflowException

    from synthgap.agents.rl.registry import HASH_TAG

    from . import tracking

    client = tracking.get_client(args.tracking_uri)
    store = tracking.store_uri(args.tracking_uri)
    try:
        mv = client.get_model_version(args.name, str(args.version))
    except MlflowException:
        raise TrainCLIError(f"no model {short(args.name)} version {args.version} in the registry of {store} "
                            "(another store: --tracking-uri or MLFLOW_TRACKING_URI)") from None
    if not (mv.tags or {}).get(HASH_TAG):
        raise TrainCLIError(f"model {args.name} version {args.version} has no {HASH_TAG} tag; refusing to promote it")
    client.set_registered_model_alias(args.name, args.alias, str(args.version))
    uri = f"models:/{args.name}@{args.alias}"
    if getattr(args, "json", False):
        print(json.dumps({"model_uri": uri, "name": args.name, "alias": args.alias, "version": args.version,
                          "tracking_uri": store}))
    else:
        print(f"{uri} -> version {args.version} (store {store})")
    return 0


def ui_handler(args) -> int:
    """Serve the MLflow UI for the store on 127.0.0.1 (``--dry-run`` prints the command).

    The server replaces this process (``exec``), so Ctrl-C or a signal reaches it directly
    and no orphaned server is left behind.
    """
    import os
    import shlex

    from . import tracking

    if not 0 < args.port < 65536:
        raise TrainCLIError(f"--port must be in 1..65535, got {args.port}")
    cmd = tracking.ui_command(args.port, args.tracking_uri)
    print(f"MLflow UI: http://127.0.0.1:{args.port}", flush=True)
    print(f"store {tracking.store_uri(args.tracking_uri)}; telemetry off "
          f"(MLFLOW_DISABLE_TELEMETRY={os.environ.get('MLFLOW_DISABLE_TELEMETRY')}: the server tells the UI "
          "to send nothing). MLflow's home page shows its 'collects usage data' notice whatever the setting; "
          "close it once (the browser remembers).", flush=True)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover (exec does not return)
