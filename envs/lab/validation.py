"""What a lab refuses before doing anything: one validation for the twin and the hardware.

The lab's front-end (:class:`~synthgap.envs.lab.frontend.Lab`) calls these functions for
every backend, so the same bad request gets the same error, word for word, whichever lab it
is sent to. The bounds come from :mod:`synthgap.envs.chemistry.limits`;
a lab adds its own caps (:class:`LabCaps`: its furnace maximum, its safety limits),
which may be stricter, never looser.

Every check raises :class:`~synthgap.envs.lab.protocol.LabInputError` (a ``ValueError``)
quoting the bad value, or :class:`~synthgap.envs.chemistry.RecipeError` (also a
``ValueError``) for a recipe outside the system or the recipe limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, Recipe, load_atmospheres, validate_recipe
from synthgap.envs.chemistry.discretisation import is_dwell
from synthgap.envs.chemistry.limits import (
    FURNACE_MAX_TEMPERATURE_K,
    PROGRAMME_MAX_SEGMENTS,
    PROGRAMME_RATE,
    PROGRAMME_SETPOINT,
    RATE_TOLERANCE,
    RECIPE_LIMITS,
)
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE
from synthgap.envs.chemistry.stoichiometry import precursor_masses

from .protocol import LabInputError
from .records import Programme

__all__ = ["LabCaps", "check_atmosphere", "check_dose", "check_furnace", "check_load", "check_milling",
           "check_programme", "check_recipe", "check_setpoint"]


@dataclass(frozen=True)
class LabCaps:
    """One lab's own limits on top of the recipe and programme limits.

    Attributes:
        max_temperature_K: highest setpoint, K (its furnace maximum or safety limit).
        max_ramp_rate_K_per_min: fastest setpoint rate, K/min (heating and cooling).
        max_dwell_h: longest dwell, h.
        max_mass_g: heaviest single dose, g.
    """

    max_temperature_K: float = FURNACE_MAX_TEMPERATURE_K
    max_ramp_rate_K_per_min: float = PROGRAMME_RATE.high
    max_dwell_h: float = RECIPE_LIMITS["dwell_time"].high
    max_mass_g: float = math.inf


def _above(name: str, value: float, cap: float, unit: str) -> LabInputError:
    return LabInputError(f"{name} {value:g} {unit} is above this lab's limit {cap:g} {unit}")


def check_recipe(system: ChemicalSystem, recipe: Recipe, caps: LabCaps, batch_mass_g: float) -> Recipe:
    """Check a recipe against the system, the recipe limits and the lab's caps; return it.

    Args:
        batch_mass_g: g of target each recipe is weighed for (for the dose cap).

    Raises:
        LabInputError: not a recipe, or above one of the lab's caps.
        RecipeError: outside the system or the recipe limits.
    """
    if not isinstance(recipe, Recipe):
        raise LabInputError(f"expected a Recipe, got {type(recipe).__name__}")
    validate_recipe(system, recipe)
    checks = (("dwell_temperature", recipe.dwell_temperature, caps.max_temperature_K, "K"),
              ("ramp_rate", recipe.ramp_rate, caps.max_ramp_rate_K_per_min, "K/min"),
              ("cooling_rate", recipe.cooling_rate, caps.max_ramp_rate_K_per_min, "K/min"),
              ("dwell_time", recipe.dwell_time, caps.max_dwell_h, "h"))
    for name, value, cap, unit in checks:
        if value > cap:
            raise _above(name, value, cap, unit)
    if math.isfinite(caps.max_mass_g):
        for p, m in precursor_masses(system, recipe.target, recipe.precursors, batch_mass_g, recipe.excess):
            if m > caps.max_mass_g:
                raise LabInputError(f"{p}: {m:g} g is above this lab's max_mass_g {caps.max_mass_g:g} g")
    return recipe


def check_load(recipes: Sequence[Recipe], tags: Sequence[str],
               check_recipe: Callable[[Recipe], object], ambient_K: float = ROOM_TEMPERATURE) -> Programme:
    """A furnace load, checked whole before any of it is queued: at least one recipe, one
    tag each, every recipe valid (``check_recipe``, the lab's own recipe check), and one
    firing programme (from ``ambient_K``, K) and atmosphere for all. Returns that programme."""
    if not recipes or len(tags) != len(recipes):
        raise LabInputError(f"a load needs >= 1 recipe and one tag each, got {len(recipes)} and {len(tags)}")
    programme = Programme.from_recipe(recipes[0], ambient_K)
    for r in recipes:
        check_recipe(r)
        if Programme.from_recipe(r, ambient_K) != programme or r.atmosphere != recipes[0].atmosphere:
            raise LabInputError("recipes of one load must share the firing programme and atmosphere; "
                                f"{r.target} differs from {recipes[0].target}")
    return programme


def check_load_ids(sample_ids: Sequence[str]) -> list[str]:
    """The sample ids of one furnace load: at least one, none twice (one crucible is in one place)."""
    ids = list(sample_ids)
    if not ids:
        raise LabInputError("fire needs at least one sample id")
    if len(set(ids)) != len(ids):
        raise LabInputError(f"duplicate sample ids in the load: {ids}")
    return ids


def check_furnace(furnace: int | None, n_furnaces: int) -> int | None:
    """The furnace a load is pinned to: None (the first free one) or an index in 0..n-1."""
    if furnace is not None and not (isinstance(furnace, int | np.integer) and not isinstance(furnace, bool)
                                    and 0 <= furnace < n_furnaces):
        raise LabInputError(f"furnace must be None or in 0..{n_furnaces - 1}, got {furnace!r}")
    return furnace


def check_until(until: float | None, now: float) -> float | None:
    """``until`` of ``run``: None, or a finite lab time at or after ``now``, s."""
    if until is not None and not (isinstance(until, int | float) and math.isfinite(until) and until >= now):
        raise LabInputError(f"until must be a lab time >= now ({now} s), got {until!r}")
    return until


def not_fired(sample_id: str) -> LabInputError:
    """The refusal to characterise a sample that has no successful firing."""
    return LabInputError(f"sample {sample_id!r} has not been fired successfully")


def check_programme(programme: Programme, caps: LabCaps) -> Programme:
    """Check a furnace programme: 1 to ``PROGRAMME_MAX_SEGMENTS`` segments, each with finite
    setpoints in the programme and lab limits, a duration > 0 s, a rate within the limits
    (a dwell no longer than the lab's longest), and a known atmosphere; return it.

    Raises:
        LabInputError: naming the segment and the bad value.
    """
    if not isinstance(programme, Programme) or not programme.segments:
        raise LabInputError("programme must be a Programme with at least one segment")
    if len(programme.segments) > PROGRAMME_MAX_SEGMENTS:
        raise LabInputError(f"a programme has at most {PROGRAMME_MAX_SEGMENTS} segments, "
                            f"got {len(programme.segments)}")
    top = min(PROGRAMME_SETPOINT.high, caps.max_temperature_K)
    max_rate = min(PROGRAMME_RATE.high, caps.max_ramp_rate_K_per_min)
    for s in programme.segments:
        vals = (s.start_K, s.end_K, s.duration_s)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
            raise LabInputError(f"programme segment {s} has a non-finite value")
        if s.duration_s <= 0:
            raise LabInputError(f"segment duration must be > 0 s, got {s.duration_s!r}")
        if min(s.start_K, s.end_K) < PROGRAMME_SETPOINT.low:
            raise LabInputError(f"setpoints must be >= {PROGRAMME_SETPOINT.low:g} K, got {s}")
        if max(s.start_K, s.end_K) > top:
            raise _above("programme setpoint", max(s.start_K, s.end_K), top, "K")
        if is_dwell(s.start_K, s.end_K):
            if s.duration_s / 3600.0 > caps.max_dwell_h:
                raise _above("dwell", s.duration_s / 3600.0, caps.max_dwell_h, "h")
        else:
            rate = abs(s.end_K - s.start_K) * 60.0 / s.duration_s
            if rate > max_rate * (1.0 + RATE_TOLERANCE):
                raise _above("segment rate", rate, max_rate, "K/min")
    check_atmosphere(programme.atmosphere)
    return programme


def check_atmosphere(atmosphere: str) -> str:
    """One of the catalogue's furnace atmospheres; return it."""
    atmospheres = load_atmospheres()
    if not isinstance(atmosphere, str) or atmosphere not in atmospheres:
        raise LabInputError(f"atmosphere {atmosphere!r} unknown; choose from {', '.join(sorted(atmospheres))}")
    return atmosphere


def check_setpoint(setpoint_K: float, caps: LabCaps) -> float:
    """A furnace setpoint a session may ask for: finite, within the programme limits and the
    lab's caps, K; return it as a float."""
    if not (isinstance(setpoint_K, int | float) and not isinstance(setpoint_K, bool) and math.isfinite(setpoint_K)):
        raise LabInputError(f"setpoint_K must be a finite temperature in K, got {setpoint_K!r}")
    top = min(PROGRAMME_SETPOINT.high, caps.max_temperature_K)
    if setpoint_K > top:
        raise _above("programme setpoint", setpoint_K, top, "K")
    if setpoint_K < PROGRAMME_SETPOINT.low:
        raise LabInputError(f"setpoints must be >= {PROGRAMME_SETPOINT.low:g} K, got {setpoint_K!r}")
    return float(setpoint_K)


def check_milling(hours: float) -> float:
    """Milling hours within the recipe limits; return them as a float."""
    bound = RECIPE_LIMITS["milling_time"]
    if not bound.contains(hours):
        raise LabInputError(f"milling hours must be within {bound.describe()}, got {hours!r}")
    return float(hours)


def check_dose(system: ChemicalSystem, precursor: str, mass_g: float) -> float:
    """A dose of one of the system's precursors, finite and > 0 g; return the mass as a float."""
    if precursor not in system.precursors:
        raise LabInputError(f"unknown precursor {precursor!r} in {system.name} "
                            f"(precursors: {', '.join(system.precursors)})")
    if isinstance(mass_g, bool) or not isinstance(mass_g, int | float) or not math.isfinite(mass_g) or mass_g <= 0:
        raise LabInputError(f"mass_g must be a finite mass > 0 g, got {mass_g!r}")
    return float(mass_g)
