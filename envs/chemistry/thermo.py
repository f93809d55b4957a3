"""Thermodynamics at temperature, one import away: phases' dfG(T) and reactions' dG(T, p).

The conventions (formation basis, J/mol per formula unit, one precedence of sources for a
solid's dfG(T), gases at partial pressure in atm) are stated once, in :mod:`.phases`;
balancing, reaction Gibbs energies and crossover temperatures (K) are :mod:`.reactions`.
This module re-exports both, so ``from synthgap.envs.chemistry.thermo import ...`` keeps
working for every name it ever offered.
"""

from __future__ import annotations

from .phases import (
    DIATOMIC_GASES,
    ELEMENT_CAS,
    ElementReference,
    Phase,
    ThermoError,
    check_temperature,
    element_reference,
    gas_table,
    heat_capacity_298,
    neumann_kopp_from_elements,
    phase_from_tables,
    tabled_solid,
)
from .reactions import BalancedReaction, balance, parse_equation

__all__ = [
    "DIATOMIC_GASES", "ELEMENT_CAS", "ElementReference", "Phase", "ThermoError", "check_temperature",
    "element_reference", "gas_table", "heat_capacity_298", "neumann_kopp_from_elements", "phase_from_tables",
    "tabled_solid", "BalancedReaction", "balance", "parse_equation",
]
