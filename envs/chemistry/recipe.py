"""Synthesis recipes: what a chemist (or an agent) asks the lab to do.

A recipe's fields and units are defined here; their allowed ranges are owned by
:mod:`.limits` (:data:`~.limits.RECIPE_LIMITS`), which :func:`validate_recipe`, the
random sampler and every action space read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..userfiles import UserFileError, load_user_file, short
from .catalogue import ChemicalSystem, load_atmospheres
from .limits import RECIPE_BOUNDS, RECIPE_LIMITS  # noqa: F401 (RECIPE_BOUNDS: also read from here)
from .system_model import per_structure

CONTINUOUS_FIELDS = tuple(RECIPE_LIMITS)
ROOM_TEMPERATURE = 298.15  # K


class RecipeError(ValueError):
    """A recipe that cannot be run; the message names the field and the allowed values."""


@dataclass(frozen=True)
class Recipe:
    """One synthesis recipe.

    Each field's docstring ends with its unit, the unit it has in recipe files, JSON records
    and the lab's tables (``cmd.<field>`` columns); the names stay unit-free because files
    use them. The ranges are :data:`~.limits.RECIPE_LIMITS` (same units).
    """

    target: str
    """Phase to make: a target of the system."""
    precursors: tuple[str, ...]
    """The precursor set: one of the target's allowed sets (phase names)."""
    excess: float = 0.0
    """Extra amount of the first precursor over stoichiometry (0.1 = 10 % excess), fraction."""
    milling_time: float = 2.0
    """Ball-milling time before firing, h."""
    ramp_rate: float = 5.0
    """Heating rate from room temperature to the dwell, K/min."""
    dwell_temperature: float = 1273.0
    """Furnace setpoint during the dwell, K."""
    dwell_time: float = 4.0
    """Time at the dwell temperature, h."""
    cooling_rate: float = 5.0
    """Cooling rate back to room temperature, K/min."""
    atmosphere: str = "air"
    """Furnace atmosphere: a name in ``atmospheres.yaml`` (air, O2, N2, CO2)."""

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain dict (precursors as a list), for files and logs."""
        d = {name: getattr(self, name) for name in _RECIPE_FIELDS}
        d["precursors"] = list(self.precursors)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "recipe") -> Recipe:
        """Build a recipe from a mapping (a parsed recipe file), naming any bad field."""
        if not isinstance(data, Mapping):
            raise RecipeError(f"{where}: must be a mapping of recipe fields, got {short(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(short(k) for k in set(data) - known)
        if unknown:
            raise RecipeError(f"{where}: unknown field(s) {', '.join(unknown[:5])}; known: {sorted(known)}")
        for key in ("target", "precursors"):
            if key not in data:
                raise RecipeError(f"{where}: field {key!r} is required")
        kwargs = dict(data)
        for key in ("target", "atmosphere"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise RecipeError(f"{where}: {key} must be a phase or atmosphere name (text), got {short(kwargs[key])}")
        pre = kwargs["precursors"]
        if isinstance(pre, str):
            pre = [p.strip() for p in pre.split(",")]
        if not isinstance(pre, list | tuple) or not pre or not all(isinstance(p, str) for p in pre):
            raise RecipeError(f"{where}: precursors must be a list of phase names, got {short(pre)}")
        kwargs["precursors"] = tuple(pre)
        for key in CONTINUOUS_FIELDS:
            if key in kwargs:
                value = kwargs[key]
                try:
                    if isinstance(value, bool) or not isinstance(value, int | float | str):
                        raise TypeError
                    kwargs[key] = float(value)
                except (TypeError, ValueError, OverflowError):
                    raise RecipeError(f"{where}: {key} must be a number, got {short(value)}") from None
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> Recipe:
        """Read a recipe from a YAML or JSON file (through the safe user-file loader: 1 MiB,
        nesting and alias-expansion limits; every problem in one line naming the file)."""
        p = Path(path)
        if not p.exists():
            raise RecipeError(f"recipe file {short(str(p), 200)} does not exist")
        try:
            data = load_user_file(p)
        except UserFileError as exc:
            raise RecipeError(f"recipe file {exc}") from None
        return cls.from_dict(data, where=str(p))


_RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


def validate_recipe(system: ChemicalSystem, recipe: Recipe) -> Recipe:
    """Check a recipe against a system and the allowed ranges; return it unchanged.

    Raises:
        RecipeError: naming the field, the bad value and what is allowed.
    """
    if not isinstance(recipe.target, str) or recipe.target not in system.targets:
        raise RecipeError(
            f"target {short(recipe.target)} is not a target of {system.name} "
            f"(targets: {', '.join(system.targets)})"
        )
    sets = system.targets[recipe.target].precursor_sets
    if tuple(recipe.precursors) not in sets:
        for p in recipe.precursors:
            if not isinstance(p, str) or p not in system.phases:
                raise RecipeError(f"unknown precursor {short(p)} in {system.name} (precursors: "
                                  f"{', '.join(system.precursors)})")
        allowed = "; ".join(", ".join(s) for s in sets)
        raise RecipeError(f"precursors {short(list(recipe.precursors))} cannot make {recipe.target}; "
                          f"allowed sets: {allowed}")
    for key, bound in RECIPE_LIMITS.items():
        v = getattr(recipe, key)
        if not bound.contains(v):
            raise RecipeError(f"{key} must be within {bound.describe()}, got {short(v)}")
    atmospheres = load_atmospheres()
    if recipe.atmosphere not in atmospheres:
        raise RecipeError(f"atmosphere {short(recipe.atmosphere)} unknown; choose from {', '.join(atmospheres)}")
    return recipe


_INDEX_FIELDS = ("target", "precursor_set", "atmosphere")


@per_structure(maxsize=32)
def _indices(system: ChemicalSystem) -> tuple[dict[tuple[str, tuple[str, ...]], tuple[int, int]], dict[str, int]]:
    """(target, precursors) -> (target index, precursor-set index), and atmosphere -> index."""
    routes = {(t, tuple(pre)): (i, j) for i, (t, spec) in enumerate(system.targets.items())
              for j, pre in enumerate(spec.precursor_sets)}
    return routes, {a: i for i, a in enumerate(load_atmospheres())}


@dataclass(frozen=True)
class RecipeBatch:
    """Many recipes of one system as arrays (struct of arrays), for batched firing.

    Attributes:
        target: (B,) int, index into ``system.targets``.
        precursor_set: (B,) int, index into that target's precursor sets.
        excess, milling_time, ramp_rate, dwell_temperature, dwell_time, cooling_rate:
            (B,) float, units as in :class:`Recipe`.
        atmosphere: (B,) int, index into the atmospheres table.
    """

    target: np.ndarray
    precursor_set: np.ndarray
    excess: np.ndarray
    milling_time: np.ndarray
    ramp_rate: np.ndarray
    dwell_temperature: np.ndarray
    dwell_time: np.ndarray
    cooling_rate: np.ndarray
    atmosphere: np.ndarray

    def __len__(self) -> int:
        return int(self.target.shape[0])

    @classmethod
    def from_recipes(cls, system: ChemicalSystem, recipes: Sequence[Recipe], validate: bool = True) -> RecipeBatch:
        """Recipes as arrays; each is checked with :func:`validate_recipe` unless the caller
        has already done so (``validate=False``)."""
        routes, atms = _indices(system)
        rows = []
        for r in recipes:
            if validate:
                validate_recipe(system, r)
            rows.append((*routes[r.target, tuple(r.precursors)], atms[r.atmosphere],
                         *[getattr(r, key) for key in CONTINUOUS_FIELDS]))
        if not rows:
            return cls(**{f.name: np.zeros(0, dtype=np.int64 if f.name in _INDEX_FIELDS else float)
                          for f in fields(cls)})
        cols = list(zip(*rows, strict=True))
        ints = {k: np.array(v, dtype=np.int64) for k, v in zip(_INDEX_FIELDS, cols[:3], strict=True)}
        return cls(**ints, **{k: np.array(v, dtype=float) for k, v in zip(CONTINUOUS_FIELDS, cols[3:], strict=True)})

    def recipe(self, system: ChemicalSystem, i: int) -> Recipe:
        """The i-th recipe as a :class:`Recipe`."""
        target = list(system.targets)[int(self.target[i])]
        pre = system.targets[target].precursor_sets[int(self.precursor_set[i])]
        atm = list(load_atmospheres())[int(self.atmosphere[i])]
        vals = {k: float(getattr(self, k)[i]) for k in CONTINUOUS_FIELDS}
        return Recipe(target=target, precursors=pre, atmosphere=atm, **vals)

    def take(self, idx: np.ndarray | slice) -> RecipeBatch:
        return RecipeBatch(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def random_recipes(
    system: ChemicalSystem, n: int, rng: np.random.Generator, target: str | None = None
) -> RecipeBatch:
    """``n`` random valid recipes (uniform in every range; log-uniform in times and rates)."""
    targets = list(system.targets)
    t_idx = (np.full(n, targets.index(target)) if target is not None
             else rng.integers(0, len(targets), n))
    n_sets = np.array([len(system.targets[t].precursor_sets) for t in targets])
    pre = np.floor(rng.random(n) * n_sets[t_idx]).astype(np.int64)
    cols: dict[str, np.ndarray] = {}
    for key, b in RECIPE_LIMITS.items():
        if b.scale == "linear":
            cols[key] = rng.uniform(b.low, b.high, n)
        else:
            cols[key] = np.exp(rng.uniform(np.log(b.low), np.log(b.high), n))
    atm = rng.integers(0, len(load_atmospheres()), n)
    return RecipeBatch(target=t_idx.astype(np.int64), precursor_set=pre, atmosphere=atm, **cols)
