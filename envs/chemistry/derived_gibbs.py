"""A phase whose Gibbs energy is measured relative to other phases: dG_r(T) = a + b T.

Galvanic-cell and calorimetric studies report a compound's Gibbs energy of formation from
its component oxides (or from other compounds) as a line in T, e.g. Azad, Sreedharan &
Jacob (J. Mater. Sci. 26, 3374 (1991)): BaO + CuO -> BaCuO2, dG = -63.4 - 0.0525 T kJ/mol.
The compound's own dfG(T) is then the parts' dfG(T) plus that line,

    dfG(T) = sum_i c_i dfG_i(T) + (a + b T),

tabulated on the grid every 100 K from 300 K, where the parts' own routes (assessed tables,
Cp(T) fits) give their dfG. A part may be a gas at 1 atm (a carbonate from its oxide and
CO2). Units: a kJ/mol, b kJ/(mol K), dfG J/mol per formula unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .phases import Phase, tabled_solid
from .tables import GibbsTable

__all__ = ["DERIVED_GRID", "phase_from_parts"]

DERIVED_GRID = tuple(float(t) for t in np.arange(300.0, 2500.0 + 1.0, 100.0))  # K


def phase_from_parts(name: str, formula: str, parts: Sequence[tuple[Phase, float]], a_kj: float,
                     b_kj_per_k: float, source: str, uncertainty_kj: float | None = None,
                     hypothetical: bool = False) -> Phase:
    """The solid ``name`` with dfG(T) = sum c_i dfG_i(T) + a + b T (see the module docstring).

    Args:
        parts: (phase, coefficient) pairs whose formulas add up to ``formula``.
        a_kj, b_kj_per_k: the reaction's dG = a + b T, kJ/mol and kJ/(mol K).
        source: where the line comes from (paper, table, or a stated assumption).
        uncertainty_kj: one standard uncertainty of dG, kJ/mol (None: the source gives none).
    """
    grid = np.asarray(DERIVED_GRID)
    values = sum(c * part.formation_gibbs(grid) for part, c in parts) + (a_kj + b_kj_per_k * grid) * 1e3
    terms = " + ".join(f"{c:g} {p.name}" for p, c in parts)
    line = f"dG({terms} -> {name}) = {a_kj:g} {b_kj_per_k * 1e3:+g}e-3 T kJ/mol"
    if uncertainty_kj is not None:
        line += f" +- {uncertainty_kj:g}"
    table = GibbsTable(DERIVED_GRID, tuple(float(v) for v in values), f"{line} ({source})")
    phase = tabled_solid(name, formula, table, hypothetical)
    sigma = None if uncertainty_kj is None else uncertainty_kj * 1e3
    return replace(phase, enthalpy=replace(phase.enthalpy, estimate=True, uncertainty=sigma,
                                           method=f"from parts: {line}"))
