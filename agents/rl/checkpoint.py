"""Resumable checkpoints: model, replay buffer, logger state and unflushed metrics.

A checkpoint folder holds ``model-<step>.zip``, ``replay-<step>.pkl`` (off-policy only)
and ``state.json``, written last by an atomic rename: a checkpoint exists only once its
``state.json`` names it, so a kill at any moment leaves the previous one intact.
``state.json`` records ``num_timesteps``, the SHA-256 of each file (checked before
loading), the logger values recorded but not yet dumped, and the metrics dumped but not
yet sent to the tracking store (so they are not lost if the process dies right after).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .signing import sha256_file

STATE_FILE = "state.json"


class CheckpointError(ValueError):
    """No usable checkpoint (missing, incomplete or corrupted)."""


@dataclass
class CheckpointState:
    """What ``state.json`` holds."""

    num_timesteps: int
    model_file: str
    model_sha256: str
    replay_file: str | None = None
    replay_sha256: str | None = None
    logger_values: dict[str, float] = field(default_factory=dict)
    """Values recorded in the SB3 logger since its last dump (e.g. ``train/*`` after an update)."""
    logger_counts: dict[str, int] = field(default_factory=dict)
    pending_metrics: list[list[Any]] = field(default_factory=list)
    """Metrics ``[key, value, step, timestamp_ms]`` dumped but maybe not yet in the store."""


def _numeric(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in values.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def save_checkpoint(model, folder: str | Path, pending_metrics: list[list[Any]]) -> CheckpointState:
    """Save ``model`` (and its replay buffer if it has one) as the folder's latest checkpoint."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    model_file = f"model-{step}.zip"
    model.save(folder / model_file)
    replay_file = replay_sha = None
    if getattr(model, "replay_buffer", None) is not None:
        replay_file = f"replay-{step}.pkl"
        model.save_replay_buffer(folder / replay_file)
        replay_sha = sha256_file(folder / replay_file)
    logger = model.logger
    state = CheckpointState(
        num_timesteps=step, model_file=model_file, model_sha256=sha256_file(folder / model_file),
        replay_file=replay_file, replay_sha256=replay_sha,
        logger_values=_numeric(dict(logger.name_to_value)),
        logger_counts={k: int(v) for k, v in logger.name_to_count.items()},
        pending_metrics=[list(m) for m in pending_metrics])
    tmp = folder / (STATE_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state.__dict__, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / STATE_FILE)
    keep = {model_file, replay_file, STATE_FILE}
    for old in folder.iterdir():
        if old.name not in keep and old.suffix in (".zip", ".pkl"):
            old.unlink(missing_ok=True)
    return state


def read_checkpoint(folder: str | Path) -> CheckpointState:
    """Read and verify the latest checkpoint of ``folder``.

    Raises:
        CheckpointError: no checkpoint, or a file whose hash does not match ``state.json``.
    """
    folder = Path(folder)
    path = folder / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {folder} (the run stopped before its first checkpoint)")
    state = CheckpointState(**json.loads(path.read_text()))
    for name, digest in ((state.model_file, state.model_sha256), (state.replay_file, state.replay_sha256)):
        if name is None:
            continue
        file = folder / name
        if not file.is_file() or sha256_file(file) != digest:
            raise CheckpointError(f"checkpoint file {file} is missing or does not match its recorded SHA-256")
    return state


def restore_logger(logger, state: CheckpointState) -> None:
    """Put back the logger values recorded before the checkpoint and not yet dumped."""
    for k, v in state.logger_values.items():
        logger.name_to_value[k] = v
        logger.name_to_count[k] = state.logger_counts.get(k, 1)
