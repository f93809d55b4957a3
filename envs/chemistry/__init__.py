"""The chemistry world: thermodynamics at temperature, solid-state kinetics, phenotype.

Typical use::

    from synthgap.envs.chemistry import load_system, Recipe, fire
    system = load_system("BaTiO3")
    sample = fire(system, Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=1473))
"""

from .catalogue import (
    CatalogueError,
    ChemicalSystem,
    Target,
    bundled_system_names,
    find_phase,
    load_atmospheres,
    load_system,
)
from .firing import FiredSamples, TemperatureTrace, fire, network_for, programme_trace
from .hull import HullView, hull_at
from .limits import RECIPE_BOUNDS, RECIPE_LIMITS
from .recipe import Recipe, RecipeBatch, RecipeError, random_recipes, validate_recipe
from .tables import MissingDataError
from .thermo import Phase, ThermoError, balance

__all__ = [
    "CatalogueError", "ChemicalSystem", "Target", "bundled_system_names", "find_phase",
    "load_atmospheres", "load_system", "FiredSamples", "TemperatureTrace", "fire",
    "network_for", "programme_trace", "HullView", "hull_at", "RECIPE_BOUNDS", "RECIPE_LIMITS", "Recipe",
    "RecipeBatch", "RecipeError", "random_recipes", "validate_recipe", "MissingDataError",
    "Phase", "ThermoError", "balance",
]
