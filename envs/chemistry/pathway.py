"""Reaction pathways from precursors to a target, with free energies and barriers.

A path is one, two or three reactions of the network: precursors -> target directly;
precursors -> intermediate -> target; or the layered route, where the target's first grains
react on with a precursor into an intermediate that the last step turns back into the target
(BaCO3 + TiO2 -> BaTiO3, BaCO3 + BaTiO3 -> Ba2TiO4 + CO2, Ba2TiO4 + TiO2 -> 2 BaTiO3: the
classical mechanism: Templeton & Pask 1959, Beauger et al. 1983). Energies are per mol of
target at temperature T (gases at the atmosphere's partial pressures); a barrier is the
state's energy plus the step's activation energy. An intermediate is flagged as a kinetic
trap when forming it leaves the sample with most (two thirds) of the path's driving force
spent and leaving it costs a higher barrier than entering it: the A-Lab / ARROWS criterion
on the catalogue's own numbers.
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
        steps: one, two or three :class:`PathStep` (three: the layered route).
        trap: the intermediate if it is a kinetic trap, else None.
        extents: mol of each step's reaction as written, per mol of target made (steps,).
    """

    precursors: tuple[str, ...]
    steps: tuple[PathStep, ...]
    trap: str | None
    extents: tuple[float, ...] = ()

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
    """All one- and two-step paths and layered routes to ``target`` in the network, at ``T`` (K)."""
    if target not in system.targets:
        raise ValueError(f"{target!r} is not a target of {system.name} (targets: {', '.join(system.targets)})")
    p = load_atmospheres()[atmosphere]
    pressures = {g: p.get(g, 1e-6) for g in system.gases}

    def dg(spec: ReactionSpec, extent: float) -> float:
        return float(spec.reaction.gibbs(T, pressures)) * extent / 1e3

    def step(spec: ReactionSpec, product: str, extent: float) -> PathStep:
        return PathStep(spec.reaction.equation, product, dg(spec, extent), spec.activation_energy / 1e3)

    out: list[Pathway] = []
    for pre in system.targets[target].precursor_sets:
        pre_set = set(pre)
        for last in system.reactions:
            c_t = _makes(last, target)
            if c_t <= 0:
                continue
            ext_last = 1.0 / c_t
            need = _inputs(last, system)
            if need <= pre_set:
                out.append(Pathway(pre, (step(last, target, ext_last),), None, (ext_last,)))
                continue
            missing = need - pre_set
            if len(missing) != 1:
                continue
            (inter,) = missing
            for first in system.reactions:
                c_i = _makes(first, inter)
                if c_i <= 0:
                    continue
                ext_inter = -last.reaction.coefficients[inter] * ext_last / c_i
                first_needs = _inputs(first, system)
                if first_needs <= pre_set:
                    steps = (step(first, inter, ext_inter), step(last, target, ext_last))
                    out.append(Pathway(pre, steps, _trap(inter, steps, system), (ext_inter, ext_last)))
                elif first_needs - pre_set == {target}:  # the layered route: the target's first grains react on
                    out += [_layered(pre, direct, (first, ext_inter), (last, ext_last), inter, target, step, system)
                            for direct in system.reactions if _makes(direct, target) > 0
                            and _inputs(direct, system) <= pre_set]
    return out


def _layered(pre, direct: ReactionSpec, layer: tuple[ReactionSpec, float], last: tuple[ReactionSpec, float],
             inter: str, target: str, step, system: ChemicalSystem) -> Pathway:
    """Precursors -> target (just what the layer step consumes) -> intermediate -> target."""
    (layer_spec, ext_layer), (last_spec, ext_last) = layer, last
    ext_direct = -layer_spec.reaction.coefficients[target] * ext_layer / _makes(direct, target)
    steps = (step(direct, target, ext_direct), step(layer_spec, inter, ext_layer), step(last_spec, target, ext_last))
    return Pathway(pre, steps, _trap(inter, steps, system), (ext_direct, ext_layer, ext_last))


def _trap(inter: str, steps: tuple[PathStep, ...], system: ChemicalSystem) -> str | None:
    """``inter`` if the state holding it has spent more than ``TRAP_SHARE`` of the path's
    driving force and leaving it costs a higher barrier than the step that made it."""
    total = sum(s.dG for s in steps)
    spent = sum(s.dG for s in steps[:-1])
    trapped = (inter not in system.precursors  # a precursor's own decomposition is no trap
               and total < 0 and spent / total > TRAP_SHARE and steps[-1].barrier > steps[-2].barrier)
    return inter if trapped else None
