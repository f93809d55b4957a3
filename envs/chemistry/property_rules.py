"""Mixing rules: how a sample's property follows from its phases, pores and grains.

A target's ``performance:`` block names one rule (``rule:``); each rule combines the
weight fractions w_i of the solid phases (taken as their share of the solid volume, an
assumption: the phases' densities differ by up to about 30 %), the porosity
p = 1 - relative density (:mod:`.sintering`) and the grain size g (um). Every number in a
block is ``{value, source[, uncertainty]}`` (a source that starts with ``assumption`` must
give its uncertainty); per-phase tables list phases of the file, with a ``default`` for
the rest.

=================  ===================================  =====================================
rule               property                             law
=================  ===================================  =====================================
lichtenecker       permittivity                         ln eps = sum_i v_i ln eps_i (pores: 1)
losses_add         Q x f (microwave dielectric)         1/Qf = sum_i v_i/Qf_i + a_p p + a_gb/g
mass_balance       specific capacity                    C = sum_active w_i C_i eta(g)
pore_scattering    in-line transmittance                T = T_th exp(-d (gamma_p p + sum_i v_i gamma_i))
weight_fraction    the target's weight fraction         w_target
=================  ===================================  =====================================

Each rule's class docstring gives its source. A rule turns its per-phase table into a
vector over the system's solids once (:meth:`PropertyRule.phase_vector`), so a batch costs
one matrix-vector product and a few (B,) operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .sintering import sourced_number

COMMON_KEYS = ("property", "unit", "theoretical", "rule", "source")


@dataclass(frozen=True)
class PropertyRule:
    """A mixing rule. ``table``: phase -> value for the phases the file lists;
    ``default``: the value of any other non-target phase."""

    table: dict[str, float] = field(default_factory=dict)
    default: float = 0.0
    name: ClassVar[str] = ""
    needs_porosity: ClassVar[bool] = False
    keys: ClassVar[tuple[str, ...]] = ()
    table_key: ClassVar[str] = "phases"

    def phase_vector(self, solids: tuple[str, ...], target: str) -> np.ndarray:
        """(P,) the per-phase quantity the rule sums, 0 for the target (handled by :meth:`combine`)."""
        return np.array([0.0 if s == target else self.transform(self.table.get(s, self.default)) for s in solids])

    def transform(self, value: float) -> float:
        return value

    def combine(self, theoretical: float, mixed: np.ndarray, target_fraction: np.ndarray, grain: np.ndarray,
                porosity: np.ndarray) -> np.ndarray:
        """(B,) the property from ``mixed`` = w @ phase_vector (B,), the target's weight
        fraction (B,), the grain size (B,) um and the porosity (B,)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Lichtenecker(PropertyRule):
    """Relative permittivity by Lichtenecker's logarithmic mixing rule,
    ln eps = sum_i v_i ln eps_i, over the target, the other phases and the pores (eps = 1)
    (K. Lichtenecker, Phys. Z. 27, 115 (1926)). The target's own permittivity follows
    its grain size (Arlt, Hennings & de With, J. Appl. Phys. 58, 1619 (1985)): a peak
    (``theoretical``) at ``optimal_grain``, falling as a log-normal of ``width`` onto a
    coarse-grain plateau (``coarse_plateau`` x theoretical, above the peak) or a
    fine-grain limit (``fine_limit`` x theoretical, below it).
    """

    optimal_grain: float = 1.0
    width: float = 1.0
    coarse_plateau: float = 0.3
    fine_limit: float = 0.2
    name: ClassVar[str] = "lichtenecker"
    needs_porosity: ClassVar[bool] = True
    keys: ClassVar[tuple[str, ...]] = ("optimal_grain", "width", "coarse_plateau", "fine_limit")

    def transform(self, value: float) -> float:
        return math.log(value)

    def target_value(self, theoretical: float, grain: np.ndarray) -> np.ndarray:
        """(B,) the dense, phase-pure target's permittivity at grain size ``grain`` (B,) um."""
        g = np.maximum(grain, 1e-6)
        floor = np.where(g >= self.optimal_grain, self.coarse_plateau, self.fine_limit)
        bump = np.exp(-np.log(g / self.optimal_grain) ** 2 / (2 * self.width ** 2))
        return theoretical * (floor + (1.0 - floor) * bump)

    def combine(self, theoretical, mixed, target_fraction, grain, porosity):
        log_eps = target_fraction * np.log(self.target_value(theoretical, grain)) + mixed
        return np.exp((1.0 - porosity) * log_eps)


@dataclass(frozen=True)
class LossesAdd(PropertyRule):
    """Microwave Q x f (GHz) where losses add: 1/Qf = sum_i v_i / Qf_i over the solid phases
    (the target at ``theoretical``), plus extrinsic losses of the pores (``porosity_loss``
    x p, in the form Penn et al. found for alumina: loss rising linearly with porosity,
    J. Am. Ceram. Soc. 80, 1885 (1997)) and of the grain boundaries (``boundary_loss`` / g,
    boundary area per volume goes as 1/g). Pores themselves are lossless.
    """

    porosity_loss: float = 0.0
    boundary_loss: float = 0.0
    name: ClassVar[str] = "losses_add"
    needs_porosity: ClassVar[bool] = True
    keys: ClassVar[tuple[str, ...]] = ("porosity_loss", "boundary_loss")

    def transform(self, value: float) -> float:
        return 1.0 / value

    def combine(self, theoretical, mixed, target_fraction, grain, porosity):
        loss = ((1.0 - porosity) * (target_fraction / theoretical + mixed) + self.porosity_loss * porosity
                + self.boundary_loss / np.maximum(grain, 1e-6))
        return 1.0 / np.maximum(loss, 1e-300)


@dataclass(frozen=True)
class MassBalance(PropertyRule):
    """Specific capacity (per gram of the whole sample) by mass balance: only the target
    (at ``theoretical``) and the phases listed under ``active`` store charge, so the
    capacity falls in proportion to the inactive phases' weight. Grains whose half-width
    exceeds the solid-state diffusion length L (``diffusion_length``, um) are only partly
    used: utilisation eta = tanh(phi) / phi with phi = g / (2 L), the effectiveness factor
    of diffusion into a slab fed from both faces (Thiele, Ind. Eng. Chem. 31, 916 (1939)),
    applied to Li insertion.
    """

    diffusion_length: float = 1.0
    name: ClassVar[str] = "mass_balance"
    keys: ClassVar[tuple[str, ...]] = ("diffusion_length",)
    table_key: ClassVar[str] = "active"

    def utilisation(self, grain: np.ndarray) -> np.ndarray:
        phi = np.maximum(grain, 1e-9) / (2.0 * self.diffusion_length)
        return np.tanh(phi) / phi

    def combine(self, theoretical, mixed, target_fraction, grain, porosity):
        return (theoretical * target_fraction + mixed) * self.utilisation(grain)


@dataclass(frozen=True)
class PoreScattering(PropertyRule):
    """In-line transmittance of a cubic ceramic (no birefringence, so grains do not scatter)
    limited by scattering (Apetz & van Bruggen, J. Am. Ceram. Soc. 86, 480 (2003)):
    T = theoretical exp(-d gamma), gamma = gamma_p p + (1 - p) sum_i w_i gamma_i. The pores'
    coefficient per unit porosity is Rayleigh scattering of pores of radius r in a matrix
    of index n at wavelength lambda: gamma_p = 2 k^4 r^3 ((m^2 - 1)/(m^2 + 2))^2 with
    k = 2 pi n / lambda, m = 1/n. Second phases scatter with their listed coefficient
    (1/mm per unit volume fraction). ``theoretical`` includes the surfaces' reflection loss.
    """

    thickness: float = 1.0
    pore_radius: float = 0.02
    refractive_index: float = 1.7
    wavelength: float = 0.6
    name: ClassVar[str] = "pore_scattering"
    needs_porosity: ClassVar[bool] = True
    keys: ClassVar[tuple[str, ...]] = ("thickness", "pore_radius", "refractive_index", "wavelength")

    @property
    def pore_coefficient(self) -> float:
        """gamma_p, 1/mm per unit porosity."""
        k = 2 * math.pi * self.refractive_index / self.wavelength  # 1/um
        m2 = 1.0 / self.refractive_index ** 2
        return 2 * k ** 4 * self.pore_radius ** 3 * ((m2 - 1) / (m2 + 2)) ** 2 * 1e3

    def combine(self, theoretical, mixed, target_fraction, grain, porosity):
        gamma = self.pore_coefficient * porosity + (1.0 - porosity) * mixed
        return theoretical * np.exp(-self.thickness * gamma)


@dataclass(frozen=True)
class WeightFraction(PropertyRule):
    """The property is the target's weight fraction (0 to 1): for systems with no property
    model (validation systems, generated files)."""

    name: ClassVar[str] = "weight_fraction"
    table_key: ClassVar[str] = ""

    def combine(self, theoretical, mixed, target_fraction, grain, porosity):
        return np.asarray(target_fraction, dtype=float).copy()


RULES: dict[str, type[PropertyRule]] = {r.name: r for r in (Lichtenecker, LossesAdd, MassBalance, PoreScattering,
                                                              WeightFraction)}


def read_rule(reader: Any, spec: dict, where: str, target: str, phases: Any, sintering: bool) -> PropertyRule:
    """The rule of a target's ``performance`` block ``spec``, checked (``reader``: the file's
    :class:`~.system_reader.SystemReader`; ``sintering``: whether the file has a sintering block)."""
    known_rules = ", ".join(RULES)
    if "rule" not in spec:
        reader.fail(f"{where}.rule", f"is required: how the property follows from the sample; rules: {known_rules}")
    name = spec["rule"]
    if not isinstance(name, str) or name not in RULES:
        reader.fail(f"{where}.rule", f"unknown rule {str(name)[:40]!r}; rules: {known_rules}")
    cls = RULES[name]
    defaulted = cls.table_key and name != "mass_balance"  # mass balance: a phase not listed is inactive
    allowed = COMMON_KEYS + cls.keys + ((cls.table_key,) if cls.table_key else ()) + (("default",) if defaulted else ())
    unknown = sorted(str(k) for k in set(spec) - set(allowed))
    if unknown:
        reader.fail(f"{where}.{unknown[0]}", f"not a key of rule {name}; its keys: {', '.join(allowed)}")
    if cls.needs_porosity and not sintering:
        reader.fail(f"{where}.rule", f"rule {name} uses the porosity: the file needs a sintering block")
    if name != "weight_fraction":
        reader.require(spec, "source", where, str)
    kwargs = {k: sourced_number(reader, spec, k, where, positive=True) for k in cls.keys}
    if cls.table_key:
        table = {}
        raw = reader.require(spec, cls.table_key, where, dict) if defaulted else (spec.get(cls.table_key) or {})
        if not isinstance(raw, dict):
            reader.fail(f"{where}.{cls.table_key}", "must be a mapping of phase -> {value, source}")
        for phase, entry in raw.items():
            if phase not in phases or phase == target:
                reader.fail(f"{where}.{cls.table_key}.{phase}", "must name a phase of the file other than the target")
            table[phase] = sourced_number(reader, {phase: entry}, phase, f"{where}.{cls.table_key}",
                                          positive=name != "mass_balance")
        kwargs["table"] = table
        kwargs["default"] = sourced_number(reader, spec, "default", where, positive=True) if defaulted else 0.0
    rule = cls(**kwargs)
    if isinstance(rule, Lichtenecker) and not (rule.coarse_plateau <= 1 and rule.fine_limit <= 1):
        reader.fail(where, "coarse_plateau and fine_limit are fractions of theoretical, at most 1")
    return rule
