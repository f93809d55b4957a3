"""Reaction pathways from precursors to a target, with free energies and barriers.

A path is one or two reactions of the network: precursors -> target directly, or
precursors -> intermediate -> target. Energies are per mol of target at temperature T
(gases at the atmosphere's partial pressures); a barrier is the state's energy plus the
step's activation energy. An intermediate is flagged as a kinetic trap when forming it
releases most (two thirds) of the path's driving force and leaving it costs a higher barrier than
entering it: the A-Lab / ARROWS criterion on the catalogue's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalogue import ChemicalSystem, ReactionSpec, load_atmospheres

TRAP_SHARE = 2 / 3  # share of the path's driving force an intermediate must take to trap


@dataclass(frozen=True)
class PathStep:
    """One reaction along a path.

    Attributes:
        equation: the reaction as written in the catalogue.
        product: the phase this step makes (the intermediate or the target).
        dG: free energy of the step, kJ per mol of target.
        barrier: activation energy of the step, kJ/mol.
    """

    equation: str
    product: str
    dG: float
    barrier: float


@dataclass(frozen=True)
class Pathway:
    """Precursors -> (intermediate ->) target.

    Attributes:
        precursors: the starting phases.
        steps: one or two :class:`PathStep`.
        trap: the intermediate if it is a kinetic trap, else None.
    """

    precursors: tuple[str, ...]
    steps: tuple[PathStep, ...]
    trap: str | None

    @property
    def energies(self) -> list[float]:
        """kJ per mol of target of each state: precursors (0), then after each step."""
        out, g = [0.0], 0.0
        for s in self.steps:
            g += s.dG
            out.append(g)
        return out


def _makes(spec: ReactionSpec, phase: str) -> float:
    return spec.reaction.coefficients.get(phase, 0.0)


def _inputs(spec: ReactionSpec, system: ChemicalSystem) -> set[str]:
    return {n for n, c in spec.reaction.coefficients.items() if c < 0 and not system.phases[n].is_gas}


def pathways(system: ChemicalSystem, target: str, T: float, atmosphere: str = "air") -> list[Pathway]:
    """All one- and two-step paths to ``target`` in the network, at ``T`` (K)."""
    if target not in system.targets:
        raise ValueError(f"{target!r} is not a target of {system.name} (targets: {', '.join(system.targets)})")
    p = load_atmospheres()[atmosphere]
    pressures = {g: p.get(g, 1e-6) for g in system.gases}

    def dg(spec: ReactionSpec, extent: float) -> float:
        return float(spec.reaction.gibbs(T, pressures)) * extent / 1e3

    out: list[Pathway] = []
    for pre in system.targets[target].precursor_sets:
        pre_set = set(pre)
        for last in system.reactions:
            c_t = _makes(last, target)
            if c_t <= 0:
                continue
            ext2 = 1.0 / c_t
            need = _inputs(last, system)
            if need <= pre_set:
                out.append(Pathway(pre, (PathStep(last.reaction.equation, target, dg(last, ext2),
                                                  last.activation_energy / 1e3),), None))
                continue
            missing = need - pre_set
            if len(missing) != 1:
                continue
            (inter,) = missing
            for first in system.reactions:
                c_i = _makes(first, inter)
                if c_i <= 0 or not _inputs(first, system) <= pre_set:
                    continue
                ext1 = -last.reaction.coefficients[inter] * ext2 / c_i
                s1 = PathStep(first.reaction.equation, inter, dg(first, ext1), first.activation_energy / 1e3)
                s2 = PathStep(last.reaction.equation, target, dg(last, ext2), last.activation_energy / 1e3)
                total = s1.dG + s2.dG
                trap = inter if (
                    inter not in system.precursors  # a precursor's own decomposition is no trap
                    and total < 0
                    and s1.dG / total > TRAP_SHARE
                    and s2.barrier > s1.barrier
                ) else None
                out.append(Pathway(pre, (s1, s2), trap))
    return out
