"""SB3 callbacks that keep training resumable: evaluation and checkpoints on a timestep grid.

Both act at rollout boundaries, where the state is consistent: evaluation at the end of a
rollout (its values are dumped with that rollout's logs), checkpoints at the start of the
next one (after the update, so nothing computed is lost). Their schedule depends on
``num_timesteps`` only (never on call counts), so a resumed run evaluates and saves at the
same timesteps as an uninterrupted one.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter

from .checkpoint import save_checkpoint


class BufferedKVWriter(KVWriter):
    """An SB3 logger output that keeps dumped metrics in memory until :meth:`flush`.

    ``write`` does the bookkeeping (numbers only, per-key floors, buffering) and
    :meth:`flush` hands the buffer to the small abstract :meth:`_send`. Metrics are
    flushed at checkpoints, so the store never holds a step that a resumed run would
    compute again; with ``autoflush`` every dump is sent at once.
    """

    name = "buffered"

    def __init__(self, autoflush: bool = False, floors: dict[str, int] | None = None):
        self.autoflush = autoflush
        self.floors: dict[str, int] = dict(floors or {})
        """Per key, the last step already in the store: steps at or below it are dropped."""
        self._buffer: list[list[Any]] = []
        self.last_step = -1

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        import time

        stamp = int(time.time() * 1000)
        for key, value in sorted(key_values.items()):
            excluded = key_excluded.get(key) or ()
            if self.name in excluded or isinstance(value, bool | str):
                continue
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue  # figures, videos, images: not metrics
            if not math.isfinite(v) or step <= self.floors.get(key, -1):
                continue
            self._buffer.append([key, v, int(step), stamp])
        self.last_step = max(self.last_step, int(step))
        if self.autoflush:
            self.flush()

    def pending(self) -> list[list[Any]]:
        """Metrics ``[key, value, step, timestamp_ms]`` dumped but not yet sent."""
        return [list(m) for m in self._buffer]

    def send_pending(self, metrics: list[list[Any]]) -> None:
        """Send metrics saved in a checkpoint, skipping any step the store already has."""
        fresh = [m for m in metrics if m[2] > self.floors.get(m[0], -1)]
        if fresh:
            self._send(fresh)
            for key, _, step, _ in fresh:
                self.floors[key] = max(self.floors.get(key, -1), step)

    def flush(self) -> None:
        """Send the buffered metrics."""
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self._send(batch)
            for key, _, step, _ in batch:
                self.floors[key] = max(self.floors.get(key, -1), step)

    def close(self) -> None:
        """Nothing to release (flushing is explicit, so an interrupt never sends unsaved steps)."""

    @abstractmethod
    def _send(self, metrics: list[list[Any]]) -> None:
        """Store ``[key, value, step, timestamp_ms]`` rows."""


class MemoryWriter(BufferedKVWriter):
    """Keeps sent metrics in a list (tests, runs without a tracking store)."""

    name = "memory"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.sent: list[list[Any]] = []

    def _send(self, metrics: list[list[Any]]) -> None:
        self.sent.extend(metrics)


def _bucket(timesteps: int, freq: int) -> int:
    return timesteps // freq if freq > 0 else 0


class PeriodicCallback(BaseCallback):
    """Calls :meth:`_fire` when ``num_timesteps`` crosses a multiple of ``freq``."""

    def __init__(self, freq: int, verbose: int = 0):
        super().__init__(verbose)
        self.freq = int(freq)
        self._last = 0

    def _on_training_start(self) -> None:
        self._last = self.model.num_timesteps

    def _due(self) -> bool:
        now = self.model.num_timesteps
        if self.freq <= 0 or _bucket(now, self.freq) <= _bucket(self._last, self.freq):
            return False
        self._last = now
        return True

    def _on_step(self) -> bool:
        return True

    @abstractmethod
    def _fire(self) -> None:
        """Do the periodic work."""


class PeriodicEvaluation(PeriodicCallback):
    """Evaluate the deterministic policy at rollout ends; record ``eval/*`` in the logger.

    Not SB3's ``EvalCallback``: no best-model saving, no early stop; the episodes are the
    same at every evaluation (``eval_env`` reseeded with ``seed``), so evaluations compare.
    """

    def __init__(self, eval_env, freq: int, episodes: int, seed: int,
                 on_eval: Callable[[int, list[float]], None] | None = None):
        super().__init__(freq)
        self.eval_env, self.episodes, self.seed = eval_env, episodes, seed
        self.on_eval = on_eval
        self.history: list[tuple[int, float, float]] = []
        """(timesteps, mean reward, std reward) of each evaluation in this process."""

    def _on_rollout_end(self) -> None:
        if self._due():
            self._fire()

    def _fire(self) -> None:
        import numpy as np
        from stable_baselines3.common.evaluation import evaluate_policy

        self.eval_env.seed(self.seed)  # same episodes every time: evaluations compare
        rewards, lengths = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes,
                                           deterministic=True, return_episode_rewards=True, warn=False)
        mean, std = float(np.mean(rewards)), float(np.std(rewards))
        self.logger.record("eval/mean_reward", mean)
        self.logger.record("eval/std_reward", std)
        self.logger.record("eval/mean_ep_length", float(np.mean(lengths)))
        self.history.append((self.model.num_timesteps, mean, std))
        if self.on_eval is not None:
            self.on_eval(self.model.num_timesteps, list(map(float, rewards)))


class ResumableCheckpoints(PeriodicCallback):
    """Save a resumable checkpoint at rollout starts, then send the metrics it covers.

    Not SB3's ``CheckpointCallback``: each save is the folder's latest checkpoint (model,
    replay buffer and the metrics not yet in the store, see
    :func:`~.checkpoint.save_checkpoint`), which :func:`~.trainer.train` resumes from.
    """

    def __init__(self, folder: str | Path, freq: int, writer: BufferedKVWriter | None = None,
                 on_checkpoint: Callable[[int], None] | None = None):
        super().__init__(freq)
        self.folder, self.writer, self.on_checkpoint = Path(folder), writer, on_checkpoint
        self.saved: list[int] = []

    def _on_rollout_start(self) -> None:
        if self._due():
            self._fire()

    def _fire(self) -> None:
        pending = self.writer.pending() if self.writer is not None else []
        save_checkpoint(self.model, self.folder, pending)
        if self.writer is not None:
            self.writer.flush()
        self.saved.append(self.model.num_timesteps)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.model.num_timesteps)
