"""Train an SB3 agent from a :class:`TrainConfig`, resumably.

:func:`train` knows nothing of MLflow: tracking plugs in as SB3 logger outputs
(``output_formats``, typically a :class:`BufferedKVWriter` subclass) and hooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .algorithms import algo_class
from .callbacks import BufferedKVWriter, PeriodicEvaluation, ResumableCheckpoints
from .checkpoint import read_checkpoint, restore_logger
from .config import ON_POLICY, ConfigError, TrainConfig
from .envs import check_algo_fits, is_multi_agent, make_vec_env

EVAL_SEED_OFFSET = 10_000


def check_fits(config: TrainConfig) -> None:
    """Cross-field checks that need the algorithm's semantics.

    Raises:
        ConfigError: naming the field.
    """
    if is_multi_agent(config.env_id) and config.n_envs != 1:  # refused here, before a run is opened
        raise ConfigError(f"n_envs: {config.env_id} gives one slot per agent: set n_agents in --env-kwargs, "
                          f"not --n-envs {config.n_envs}")
    if config.algo == "ppo":
        slots, what = config.n_envs, "n_envs"
        if is_multi_agent(config.env_id):  # one VecEnv slot per agent
            from synthgap.envs.shared_lab_v0 import DEFAULT_AGENTS

            slots, what = int(config.env_kwargs.get("n_agents", DEFAULT_AGENTS)), "n_agents"
        rollout = config.n_steps * slots
        if config.batch_size > rollout or rollout % config.batch_size:
            raise ConfigError(f"batch_size: must divide the PPO rollout size n_steps x {what} = {rollout}, "
                              f"got {config.batch_size}")
        if rollout < 2:
            raise ConfigError("n_steps: PPO needs n_steps x n_envs >= 2")


def build_model(config: TrainConfig, env):
    """A fresh SB3 model for ``config`` on ``env`` (CPU)."""
    cls = algo_class(config.algo)
    common = dict(learning_rate=config.learning_rate, gamma=config.gamma, seed=config.seed, device="cpu",
                  policy_kwargs={"net_arch": list(config.net_arch)}, verbose=0)
    if config.algo == "ppo":
        return cls("MlpPolicy", env, n_steps=config.n_steps, batch_size=config.batch_size,
                   n_epochs=config.n_epochs, ent_coef=config.ent_coef, **common)
    if config.algo == "a2c":
        return cls("MlpPolicy", env, n_steps=config.n_steps, ent_coef=config.ent_coef, **common)
    return cls("MlpPolicy", env, buffer_size=config.buffer_size, learning_starts=config.learning_starts,
               batch_size=config.batch_size, **common)


@dataclass
class TrainResult:
    """What a finished (or resumed and finished) training produced."""

    model: object
    """The trained SB3 model."""
    model_path: Path
    """Final policy saved as an SB3 zip."""
    num_timesteps: int
    seconds: float
    """Wall time of this process's training (not counting an interrupted earlier part)."""
    resumed_from: int | None = None
    """Timesteps of the checkpoint this run resumed from, if any."""
    evaluations: list[tuple[int, float, float]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)


def train(config: TrainConfig, out_dir: str | Path, *, output_formats: Sequence = (),
          checkpoint_dir: str | Path | None = None, resume: bool = False, progress_bar: bool = False,
          on_checkpoint: Callable[[int], None] | None = None,
          on_eval: Callable[[int, list[float]], None] | None = None) -> TrainResult:
    """Train (or resume training) and save the final policy in ``out_dir/policy.zip``.

    Args:
        config: validated run description.
        out_dir: folder for the logger's CSV, the final model and (by default) checkpoints.
        output_formats: extra SB3 ``KVWriter`` outputs (e.g. MLflow). A
            :class:`BufferedKVWriter` among them is flushed at each checkpoint.
        checkpoint_dir: where checkpoints go (default ``out_dir/checkpoints``).
        resume: continue from the latest checkpoint in ``checkpoint_dir``.
        progress_bar: show SB3's progress bar (tqdm + rich).
        on_checkpoint, on_eval: hooks called after each checkpoint / evaluation.

    Raises:
        ConfigError, EnvSpecError: bad configuration; CheckpointError: nothing to resume.
    """
    import torch
    from stable_baselines3.common.logger import CSVOutputFormat, Logger

    torch.set_num_threads(1)  # measured faster than 2 threads on these small networks
    check_fits(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else out_dir / "checkpoints"
    env = make_vec_env(config.env_id, config.n_envs, config.seed, config.env_kwargs, config.vectorization)
    check_algo_fits(config.algo, env.action_space)
    eval_env = make_vec_env(config.env_id, 1, config.seed + EVAL_SEED_OFFSET, config.env_kwargs)
    writers = [f for f in output_formats if isinstance(f, BufferedKVWriter)]
    logger = Logger(str(out_dir), [CSVOutputFormat(str(out_dir / "progress.csv")), *output_formats])
    try:
        return _train(config, env, eval_env, logger, writers, out_dir, ckpt_dir, resume, progress_bar,
                      on_checkpoint, on_eval)
    finally:
        logger.close()
        env.close()
        eval_env.close()


def _train(config, env, eval_env, logger, writers, out_dir, ckpt_dir, resume, progress_bar,
           on_checkpoint, on_eval) -> TrainResult:
    from stable_baselines3.common.callbacks import CallbackList

    resumed_from = None
    if resume:
        state = read_checkpoint(ckpt_dir)  # verifies the files' hashes before anything is unpickled
        model = algo_class(config.algo).load(ckpt_dir / state.model_file, env=env, device="cpu")
        if state.replay_file is not None:
            model.load_replay_buffer(ckpt_dir / state.replay_file)
        model.set_logger(logger)
        restore_logger(logger, state)
        for w in writers:
            w.send_pending(state.pending_metrics)
        resumed_from = state.num_timesteps
    else:
        model = build_model(config, env)
        model.set_logger(logger)
    from synthgap.agents.shared_policy import AgentMetricsCallback

    callbacks = [AgentMetricsCallback()]
    evaluator = None
    if config.eval_freq > 0:
        evaluator = PeriodicEvaluation(eval_env, config.eval_freq, config.eval_episodes,
                                       config.seed + EVAL_SEED_OFFSET, on_eval)
        callbacks.append(evaluator)
    saver = None
    if config.checkpoint_freq > 0:
        saver = ResumableCheckpoints(ckpt_dir, config.checkpoint_freq, writers[0] if writers else None, on_checkpoint)
        callbacks.append(saver)
    else:
        for w in writers:
            w.autoflush = True
    remaining = config.total_timesteps - model.num_timesteps
    t0 = time.perf_counter()
    if remaining > 0:
        log_interval = 1 if config.algo in ON_POLICY else 4
        model.learn(remaining, callback=CallbackList(callbacks), log_interval=log_interval,
                    reset_num_timesteps=not resume, progress_bar=progress_bar)
    seconds = time.perf_counter() - t0
    for w in writers:
        if model.num_timesteps > w.last_step and logger.name_to_value:
            logger.dump(model.num_timesteps)  # values recorded after the last dump (never a repeated step)
            break
    for w in writers:
        w.flush()
    path = out_dir / "policy.zip"
    model.save(path)
    return TrainResult(model=model, model_path=path, num_timesteps=int(model.num_timesteps), seconds=seconds,
                       resumed_from=resumed_from, evaluations=evaluator.history if evaluator else [],
                       checkpoints=saver.saved if saver else [])
