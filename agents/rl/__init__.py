"""Reinforcement learning on synthgap's envs: SB3 training, resumable checkpoints, verified policies.

MLflow is never imported by this package's ``__init__``; tracking lives in
:mod:`synthgap.experiments.tracking`, model loading in :mod:`.registry`.
"""

from .callbacks import BufferedKVWriter, MemoryWriter, PeriodicEvaluation, ResumableCheckpoints
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .config import ALGOS, ConfigError, TrainConfig, config_from_mapping, load_config
from .envs import EnvSpecError, make_env, make_vec_env, register_vec_env_builder
from .trainer import TrainResult, build_model, train

__all__ = [
    "BufferedKVWriter", "ResumableCheckpoints", "PeriodicEvaluation", "MemoryWriter", "CheckpointError",
    "read_checkpoint", "save_checkpoint", "ALGOS", "ConfigError", "TrainConfig", "config_from_mapping",
    "load_config", "EnvSpecError", "make_env", "make_vec_env", "register_vec_env_builder", "TrainResult",
    "build_model", "train",
]
