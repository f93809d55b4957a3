"""The model of a chemical system: the frozen records a system file becomes.

A :class:`ChemicalSystem` holds its phases (:class:`~.phases.Phase`), precursors, reaction
network (:class:`ReactionSpec`, Arrhenius parameters), grain-growth and evaporation laws
and its targets (:class:`Target`, each with the :class:`PerformanceModel` of the property
it is made for). Units are in each attribute's docstring: J/mol, 1/s, um, um^2/s.
Reading and checking a file is :mod:`.system_reader`'s job; finding one, :mod:`.catalogue`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache, wraps
from typing import Any, TypeVar

from .phases import Phase
from .property_rules import PropertyRule, WeightFraction
from .reactions import BalancedReaction
from .sintering import SinteringModel

R = TypeVar("R")


@dataclass(frozen=True)
class PerformanceModel:
    """How a target's measured property follows from the sample (its phenotype).

    Attributes:
        property: what is measured (e.g. "relative permittivity").
        unit: its unit.
        theoretical: the ideal value for a dense, phase-pure sample at the best grain size
            (the "0 K view": what a predictor scores the formula with).
        rule: the mixing rule (:mod:`.property_rules`) that turns phase fractions, porosity
            and grain size into the property; its parameters and sources are the file's.
        source: where the rule's form comes from, as the file gives it.
    """

    property: str
    unit: str
    theoretical: float
    rule: PropertyRule = field(default_factory=WeightFraction)
    source: str = ""


@dataclass(frozen=True)
class Target:
    """A phase a campaign tries to make.

    Attributes:
        phase: the target phase name.
        precursor_sets: the allowed precursor combinations (tuples of phase names).
        performance: how the measured property follows from the sample.
        unobtainium: flagged in the catalogue as 0 K-stable but unbuildable.
    """

    phase: str
    precursor_sets: tuple[tuple[str, ...], ...]
    performance: PerformanceModel
    unobtainium: bool = False


@dataclass(frozen=True)
class ReactionSpec:
    """A solid-state reaction of the network, with Arrhenius parameters.

    Attributes:
        reaction: the balanced reaction.
        activation_energy: Ea, J/mol.
        prefactor: A, 1/s (rate constant of the reaction at full driving force and
            reference particle size).
        law: the rate law (:data:`RATE_LAWS`): ``"first-order"`` in the limiting reactant,
            ``"jander"``, diffusion through the product layer (then k is the rate of
            Jander's reduced time [1 - (1 - alpha)^(1/3)]^2, 1/s), or ``"avrami-erofeev"``,
            nucleation and growth in one solid (exponent 2: k is the rate of the reduced
            time [-ln(1 - alpha)]^(1/2), 1/s).
        flux: for a Jander law, the solid reactant whose melt carries the reaction above
            its melting point (Li2CO3), or None. Molten, it wets the other grains and no
            product layer limits the rate: the reaction runs first order there, at the rate
            that half-converts in the Jander law's time (an assumption: the melt removes the
            diffusion tail, not more).
        flux_melting_K: that reactant's melting point, K (CRC Handbook, :func:`.tables.melting_point`);
            inf without a flux.
    """

    reaction: BalancedReaction
    activation_energy: float
    prefactor: float
    law: str = "first-order"
    flux: str | None = None
    flux_melting_K: float = math.inf


#: the rate laws a reaction can follow (:mod:`.kinetics` says what each means)
RATE_LAWS = ("first-order", "jander", "avrami-erofeev")  # the kernels' law codes are the indices


@dataclass(frozen=True, eq=False)  # identity hash: systems are cached per file
class ChemicalSystem:
    """One chemical system of the catalogue.

    Attributes:
        name: the system's name (also its file stem).
        description: a paragraph for humans.
        phases: name -> Phase, in file order.
        precursors: phases that can be weighed into a recipe.
        reactions: the reaction network.
        targets: name -> Target.
        grain_growth: (activation energy J/mol, prefactor um^2/s).
        volatiles: phase name -> (activation energy J/mol, prefactor 1/s) of evaporation.
        source: the file it was read from.
        sintering: the master sintering curve (relative density from the thermal history);
            None: density not modelled (only rules that ignore porosity are allowed).
    """

    name: str
    description: str
    phases: Mapping[str, Phase]
    precursors: tuple[str, ...]
    reactions: tuple[ReactionSpec, ...]
    targets: Mapping[str, Target]
    grain_growth: tuple[float, float]
    volatiles: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""
    sintering: SinteringModel | None = None

    def with_rates(self, reactions: tuple[ReactionSpec, ...], grain_growth: tuple[float, float],
                   volatiles: Mapping[str, tuple[float, float]]) -> ChemicalSystem:
        """This system with other Arrhenius parameters (a drawn world): the same phases and
        reaction equations, so its phase lists are this one's (not recomputed).

        Raises:
            ValueError: ``reactions`` are not this system's equations in its order, or
                ``volatiles`` names other phases.
        """
        if len(reactions) != len(self.reactions) or any(
                (a.reaction is not b.reaction and a.reaction.coefficients != b.reaction.coefficients)
                or a.law != b.law or a.flux != b.flux for a, b in zip(reactions, self.reactions, strict=False)):
            raise ValueError(f"{self.name}: with_rates takes the system's own reactions and rate "
                             "laws (other rates only)")
        if tuple(volatiles) != tuple(self.volatiles):
            raise ValueError(f"{self.name}: with_rates takes the system's own volatiles {list(self.volatiles)}, "
                             f"got {list(volatiles)}")
        new = replace(self, reactions=tuple(reactions), grain_growth=grain_growth, volatiles=dict(volatiles))
        for name in ("elements", "solids", "gases", "structure"):
            new.__dict__[name] = getattr(self, name)  # cached_property's own slot
        return new

    @cached_property
    def structure(self) -> ChemicalSystem:
        """The system whose phases, reaction equations and targets this one has: itself, or a
        drawn world's nominal system (:meth:`with_rates`). What follows from those alone is
        cached per structure (:func:`per_structure`), so a thousand worlds share one entry."""
        return self

    @cached_property
    def elements(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.phases.values():
            for el in p.element_amounts:
                seen.setdefault(el, None)
        return tuple(seen)

    @cached_property
    def solids(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.phases.items() if not p.is_gas)

    @cached_property
    def gases(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.phases.items() if p.is_gas)


def per_structure(maxsize: int) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Cache ``fn(system, *args)`` (an LRU of ``maxsize``) on ``system.structure``: for what
    depends on a system's phases, reaction equations and targets, not on its rates, so every
    drawn world hits its nominal system's entry instead of evicting it."""
    def decorate(fn: Callable[..., R]) -> Callable[..., R]:
        cached = lru_cache(maxsize=maxsize)(fn)

        @wraps(fn)
        def lookup(system: ChemicalSystem, *args: Any) -> R:
            return cached(system.structure, *args)
        lookup.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return lookup
    return decorate
