"""Reactions between phases: balancing, reaction Gibbs energy dG(T, p) and its crossovers.

Energies are J per mol of reaction as written, on the formation basis of :mod:`.phases`;
temperatures in K, partial pressures in atm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .phases import Phase, ThermoError, check_temperature


@dataclass(frozen=True)
class BalancedReaction:
    """A balanced reaction between phases, with its free energy at temperature.

    Attributes:
        coefficients: phase name -> stoichiometric coefficient (negative for reactants).
        phases: phase name -> Phase.
    """

    coefficients: Mapping[str, float]
    phases: Mapping[str, Phase]

    @property
    def equation(self) -> str:
        def side(sign: int) -> str:
            terms = []
            for name, c in self.coefficients.items():
                if c * sign > 0:
                    c = abs(c)
                    terms.append(name if abs(c - 1) < 1e-9 else f"{c:g} {name}")
            return " + ".join(terms)

        return f"{side(-1)} -> {side(1)}"

    def gibbs(self, T: float | np.ndarray, pressures: Mapping[str, float] | None = None) -> np.ndarray:
        """Reaction Gibbs energy dG(T, p), J per mol of reaction as written.

        Args:
            T: temperature(s), K.
            pressures: partial pressures (atm) of gaseous phases by name; 1 atm if absent.
        """
        pressures = dict(pressures or {})
        total = np.zeros_like(check_temperature(T))
        for name, c in self.coefficients.items():
            phase = self.phases[name]
            p = pressures.get(name, 1.0)
            total = total + c * phase.chemical_potential(T, p)
        return total

    def crossover_temperatures(
        self,
        pressures: Mapping[str, float] | None = None,
        T_min: float = 300.0,
        T_max: float = 3000.0,
    ) -> list[float]:
        """Temperatures (K) in [T_min, T_max] where dG(T, p) changes sign."""
        grid = np.arange(T_min, T_max + 1.0, 1.0)
        g = self.gibbs(grid, pressures)
        idx = np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)[0]
        out = []
        for i in idx:
            t0, t1, g0, g1 = grid[i], grid[i + 1], g[i], g[i + 1]
            out.append(float(t0 - g0 * (t1 - t0) / (g1 - g0)))
        return out


def balance(
    reactants: Mapping[str, Phase] | list[Phase], products: Mapping[str, Phase] | list[Phase]
) -> BalancedReaction:
    """Balance a reaction with pymatgen's ``Reaction``.

    Raises:
        ThermoError: the reaction cannot be balanced.
    """
    from pymatgen.analysis.reaction_calculator import Reaction, ReactionError
    from pymatgen.core import Composition

    r = list(reactants.values()) if isinstance(reactants, Mapping) else list(reactants)
    p = list(products.values()) if isinstance(products, Mapping) else list(products)
    try:
        rxn = Reaction([Composition(x.formula) for x in r], [Composition(x.formula) for x in p])
    except (ReactionError, ValueError) as exc:
        names = " + ".join(x.name for x in r) + " -> " + " + ".join(x.name for x in p)
        raise ThermoError(f"cannot balance {names}: {exc}") from None
    coeffs: dict[str, float] = {}
    phases: dict[str, Phase] = {}
    for x in r + p:
        c = float(rxn.get_coeff(Composition(x.formula)))
        if abs(c) < 1e-12:
            raise ThermoError(f"{x.name} takes no part in the balanced reaction {rxn}")
        coeffs[x.name] = c
        phases[x.name] = x
    for x in r:
        if coeffs[x.name] > 0:
            raise ThermoError(f"cannot balance with {x.name} as a reactant: {rxn}")
    return BalancedReaction(coeffs, phases)


def parse_equation(equation: str) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Split ``"2 BaCO3 + TiO2 -> Ba2TiO4 + 2 CO2"`` into (coefficient, formula) lists.

    Coefficients are optional; pymatgen re-balances anyway, so they are only checked.
    """
    for arrow in ("->", "=>", "="):
        if arrow in equation:
            left, right = equation.split(arrow, 1)
            break
    else:
        raise ThermoError(f"reaction {equation!r} has no arrow; write it like 'A + B -> C'")

    def terms(side: str) -> list[tuple[float, str]]:
        out = []
        for term in side.split("+"):
            parts = term.split()
            if not parts:
                raise ThermoError(f"empty term in reaction {equation!r}")
            if len(parts) == 2:
                try:
                    out.append((float(parts[0]), parts[1]))
                except ValueError:
                    raise ThermoError(f"bad coefficient {parts[0]!r} in {equation!r}") from None
            elif len(parts) == 1:
                out.append((1.0, parts[0]))
            else:
                raise ThermoError(f"cannot read term {term.strip()!r} in {equation!r}")
        return out

    return terms(left), terms(right)
