"""Precursor lots, their purity and moisture, the lab's humidity over the day, lot impurities.

Each precursor comes in lots of ``samples_per_lot`` dispenses with a purity (mass fraction
of the named phase, uniform in ``[purity_min, 1]``) and a hygroscopicity (``hygroscopicity``
times a factor uniform in [0.5, 1.5]); the water uptake of a dispensed powder is
``hygroscopicity * humidity`` (mass fraction), with the lab's relative humidity a daily
sinusoid (peak at 15:00 lab time) plus white noise. What reaches the chemistry
(``initial=`` of :func:`synthgap.envs.chemistry.fire`, mol per mol of target intended):
``dispensed * (1 - water) * purity / M`` of the precursor, and
``dispensed * (1 - water) * (1 - purity) / M_imp`` of its impurity phase: the other solid
of the system with the same cations (BaCO3 -> BaO, MnO2 -> Mn2O3, Li2CO3 -> Li2O);
precursors without one carry an inert impurity that XRD does not see. Water leaves on
heating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem
from synthgap.envs.chemistry.stoichiometry import amount_per_target

from .params import DAY, LabParams

__all__ = ["Lot", "PrecursorStock", "impurity_phases"]


@dataclass
class Lot:
    """One lot of a precursor: id, purity (mass fraction), hygroscopicity (water mass
    fraction at 100 % humidity) and the dispenses taken from it so far."""

    lot_id: str
    purity: float
    hygroscopicity: float
    uses: int = 0


def impurity_phases(system: ChemicalSystem, net) -> dict[str, str | None]:
    """Precursor -> the other solid with the same cations (its lot impurity), if any."""
    out: dict[str, str | None] = {}
    cat = {n: frozenset(e for e, _ in zip(net.elements, row, strict=True)
                        if e not in ("O", "C", "H") and row[net.elements.index(e)] > 0)
           for n, row in zip(net.solids, net.solid_elements, strict=True)}
    candidates = [*system.precursors,
                  *[s for s in net.solids if s not in system.precursors
                    and s not in system.targets]]
    for p in system.precursors:
        out[p] = next((q for q in candidates if q != p and cat[q] == cat[p]), None)
    return out


class PrecursorStock:
    """The lab's precursor lots and air: which lot a dispense comes from, how humid it is,
    and what a dispensed powder adds to a sample's initial amounts.

    Args:
        system: the chemical system (its precursors get one lot each to start).
        net: the system's reaction network (its solids index the initial amounts).
        config: the twin's parameters (lot size, purity, hygroscopicity, humidity).
        rng: the twin's one random generator.
    """

    def __init__(self, system: ChemicalSystem, net, config: LabParams, rng: np.random.Generator) -> None:
        self.system, self.config, self.rng = system, config, rng
        self.solid_index = {n: i for i, n in enumerate(net.solids)}
        self.impurity = impurity_phases(system, net)
        self.lots = {p: self._new_lot(p, 0) for p in system.precursors}

    def _new_lot(self, precursor: str, n: int) -> Lot:
        c = self.config
        purity = float(self.rng.uniform(c.purity_min, 1.0))
        hyg = c.hygroscopicity * float(self.rng.uniform(0.5, 1.5))
        return Lot(f"{precursor}-L{n:03d}", purity, hyg)

    def take(self, precursor: str) -> Lot:
        """The lot the next dispense of ``precursor`` comes from (a new lot when the
        current one is used up); counts the dispense."""
        lot = self.lots[precursor]
        if lot.uses >= self.config.samples_per_lot:
            lot = self.lots[precursor] = self._new_lot(precursor, int(lot.lot_id[-3:]) + 1)
        lot.uses += 1
        return lot

    def humidity(self, now_s: float) -> float:
        """Relative humidity (fraction, clipped to [0.02, 0.98]) at lab time ``now_s`` s."""
        c = self.config
        day = 2.0 * math.pi * (now_s / DAY - 0.375)  # peak at 15:00
        h = c.humidity_mean + c.humidity_amplitude * math.sin(day)
        return min(max(h + c.humidity_sd * float(self.rng.standard_normal()), 0.02), 0.98)

    def add_dose(self, initial: np.ndarray, target: str, precursor: str, dry_g: float,
                 purity: float) -> None:
        """Add ``dry_g`` g of dry ``precursor`` powder of ``purity`` to ``initial`` (mol per
        mol of ``target`` intended, indexed by the network's solids), impurity included."""
        batch_g = self.config.batch_mass_g
        initial[self.solid_index[precursor]] += amount_per_target(
            self.system, target, precursor, dry_g * purity, batch_g)
        imp = self.impurity[precursor]
        if imp is not None:
            initial[self.solid_index[imp]] += amount_per_target(
                self.system, target, imp, dry_g * (1.0 - purity), batch_g)
