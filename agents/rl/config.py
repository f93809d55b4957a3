"""The one object that describes a training run: :class:`TrainConfig`.

Values come from the dataclass defaults, then a YAML file (``--config``), then command-line
flags; :func:`validate` checks the result at the edge and names the bad field. The same
object is what gets logged as the run's parameters (:meth:`TrainConfig.as_params`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from synthgap.envs.userfiles import ConfigError, UserFileError, UserFileNotFound, load_user_file, short

from .algorithms import ALGOS

VECTORIZATIONS = ("dummy", "native")
MAX_DUMMY_ENVS = 64  # copies in one DummyVecEnv (a native vector env steps up to 4,096 in one call)
ON_POLICY = ("ppo", "a2c")
#: field -> (lowest, highest) allowed: the upper bounds keep memory and run time finite
#: (a rollout of n_steps x n_envs, a replay buffer of buffer_size transitions, layer widths).
INT_RANGES: dict[str, tuple[int, int]] = {
    "total_timesteps": (1, 10**9),
    "seed": (0, 2**32 - 1),
    "n_envs": (1, 4096),
    "n_steps": (1, 100_000),
    "batch_size": (1, 100_000),
    "n_epochs": (1, 1_000),
    "buffer_size": (1, 1_000_000),
    "learning_starts": (0, 10**9),
    "eval_freq": (0, 10**9),
    "eval_episodes": (1, 10_000),
    "final_eval_episodes": (1, 10_000),
    "checkpoint_freq": (0, 10**9),
}
MAX_ROLLOUT = 1_000_000  # n_steps x n_envs: transitions held by one on-policy rollout
MAX_LAYERS = 16  # hidden layers in net_arch
MAX_WIDTH = 4096  # units per hidden layer


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (cleanrl style: one docstring per field)."""

    env_id: str = "synthgap/FurnaceControl-v0"
    """Gymnasium id of a registered environment (``synthgap/...`` ids are registered on import)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make`` (JSON-serialisable), e.g. ``{"budget": 10}``."""
    algo: str = "ppo"
    """Algorithm: ``ppo``, ``a2c`` (any action space) or ``sac`` (Box actions only)."""
    total_timesteps: int = 20_000
    """Environment steps to train for, summed over the parallel envs."""
    seed: int = 0
    """Seed of the model, the training envs (seed, seed+1, ...) and the evaluation envs (seed + 10000)."""
    n_envs: int = 1
    """Envs stepped together: copies in one ``DummyVecEnv`` (1-64), or campaigns of the native vector env (1-4,096)."""
    vectorization: str = "dummy"
    """``dummy``: ``n_envs`` copies of the env in SB3's ``DummyVecEnv``; ``native``: the env's own
    vector env (``gymnasium.make_vec``'s vector entry point: Campaign-v0 steps ``n_envs`` campaigns
    in one batched call)."""
    learning_rate: float = 3e-4
    """Adam step size (constant)."""
    gamma: float = 0.99
    """Discount factor per step."""
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    """Hidden layer widths of the policy and value/Q networks."""
    n_steps: int = 256
    """PPO/A2C: steps per env per rollout (rollout size = n_steps x n_envs)."""
    batch_size: int = 64
    """PPO: minibatch size; SAC: replay sample size per gradient step."""
    n_epochs: int = 10
    """PPO: optimisation epochs per rollout."""
    ent_coef: float = 0.0
    """PPO/A2C: entropy bonus weight (SAC tunes its own entropy coefficient)."""
    buffer_size: int = 100_000
    """SAC: replay buffer capacity in transitions."""
    learning_starts: int = 100
    """SAC: transitions collected with random actions before the first gradient step."""
    eval_freq: int = 1_000
    """Evaluate the deterministic policy every this many timesteps (0: never during training)."""
    eval_episodes: int = 5
    """Episodes per evaluation (always on the same seeds, so evaluations compare)."""
    final_eval_episodes: int = 20
    """Episodes of the final evaluation, reported with 95 % bootstrap intervals (20+: a mean of
    5 proves nothing)."""
    checkpoint_freq: int = 1_000
    """Save a resumable checkpoint every this many timesteps (0: never)."""

    def as_params(self) -> dict[str, str]:
        """The run's MLflow parameters: every field, JSON for containers."""
        return {k: json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else str(v)
                for k, v in asdict(self).items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for YAML)."""
        return asdict(self)

    def updated(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied (None values are ignored)."""
        return validate(replace(self, **{k: v for k, v in changes.items() if v is not None}))


_FIELDS = {f.name: f for f in fields(TrainConfig)}


def _check_type(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: must be an integer, got {short(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: must be a number, got {short(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{name}: must be a finite number, got {short(value)}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name}: must be a string, got {short(value)}")
    elif kind == "list[int]":
        if not isinstance(value, list | tuple) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{name}: must be a list of positive integers, got {short(value)}")
        value = list(value)
    elif kind == "dict[str, Any]":
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{name}: must be a mapping with string keys, got {short(value)}")
        try:
            json.dumps(dict(value))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: must be JSON-serialisable ({short(str(exc), 80)})") from None
        value = dict(value)
    return value


def validate(config: TrainConfig) -> TrainConfig:
    """Check every field's type and range; return the config with numbers normalised.

    Raises:
        ConfigError: naming the first bad field and its value.
    """
    values = {name: _check_type(name, getattr(config, name)) for name in _FIELDS}
    c = TrainConfig(**values)
    if c.algo not in ALGOS:
        raise ConfigError(f"algo: must be one of {', '.join(ALGOS)}, got {short(c.algo)}")
    for name, (lo, hi) in INT_RANGES.items():
        value = getattr(c, name)
        if value < lo:
            raise ConfigError(f"{name}: must be >= {lo}, got {short(value)}")
        if value > hi:
            raise ConfigError(f"{name}: must be <= {hi:,}, got {short(value)}")
    if c.vectorization not in VECTORIZATIONS:
        raise ConfigError(f"vectorization: must be one of {', '.join(VECTORIZATIONS)}, got {short(c.vectorization)}")
    if c.vectorization == "dummy" and c.n_envs > MAX_DUMMY_ENVS:
        raise ConfigError(f"n_envs: must be <= {MAX_DUMMY_ENVS} in a DummyVecEnv, got {c.n_envs} "
                          "(vectorization: native steps up to 4,096 in one call)")
    if c.n_steps * c.n_envs > MAX_ROLLOUT:
        raise ConfigError(f"n_steps: n_steps x n_envs must be <= {MAX_ROLLOUT:,} transitions, got "
                          f"{c.n_steps} x {c.n_envs}")
    if not 0.0 < c.learning_rate < 1.0:
        raise ConfigError(f"learning_rate: must be in (0, 1), got {c.learning_rate!r}")
    if not 0.0 <= c.gamma <= 1.0:
        raise ConfigError(f"gamma: must be in [0, 1], got {c.gamma!r}")
    if not c.ent_coef >= 0.0:
        raise ConfigError(f"ent_coef: must be >= 0, got {c.ent_coef!r}")
    if not c.net_arch:
        raise ConfigError("net_arch: must list at least one layer width")
    if len(c.net_arch) > MAX_LAYERS or max(c.net_arch) > MAX_WIDTH:
        raise ConfigError(f"net_arch: at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units, "
                          f"got {short(c.net_arch)}")
    if not c.env_id:
        raise ConfigError("env_id: must not be empty")
    return c


def config_from_mapping(data: Any, where: str = "config") -> TrainConfig:
    """Build a validated config from parsed YAML/JSON, refusing unknown fields."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of TrainConfig fields, got {type(data).__name__}")
    unknown = sorted(short(k) for k in set(data) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]} (known: {', '.join(_FIELDS)})")
    kwargs = {}
    for name, f in _FIELDS.items():
        if name in data:
            kwargs[name] = data[name]
        elif f.default is MISSING:
            kwargs[name] = f.default_factory()  # type: ignore[misc]
    try:
        return validate(TrainConfig(**kwargs))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML (or ``.json``) file of :class:`TrainConfig` fields, through the safe
    user-file loader (1 MiB, nesting and alias-expansion limits, one-line errors).

    Raises:
        FileNotFoundError: no such file.
        ConfigError: malformed YAML, an empty file (it would silently train the defaults),
            an unknown field or a bad value (named).
    """
    path = Path(path)
    try:
        data = load_user_file(path)
    except UserFileNotFound:
        raise FileNotFoundError(f"config file not found: {short(str(path), 200)}") from None
    except UserFileError as exc:
        raise ConfigError(f"config file {exc}") from None
    if data is None:
        raise ConfigError(f"config file {short(str(path), 200)}: is empty; write TrainConfig fields "
                          "(e.g. algo: ppo) or drop --config to train the defaults")
    return config_from_mapping(data, str(path))


def dump_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as YAML (readable back with :func:`load_config`)."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path
