"""A chemical-system file from the tables and a documented prior (``synthgap system build``).

:func:`build_system` takes a target and its precursors and returns the file's content:
the phases and reactions of their chemical space (:mod:`.system_network`), each reaction's
Arrhenius parameters from the rules of ``data/build_prior.yaml`` (Tammann's rule on the CRC
melting points, the 1 atm crossover of a decomposition, assumed activation energies, the
bundled files' convention k = 1e-4 1/s at the onset), a grain-growth law and the target
with a weight-fraction "property". Every reaction carries a ``source`` naming the rule that
gave its numbers; no number is set by hand. :func:`write_built_system` writes it and loads
it back through the system loader, so a file that is written is one that loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from .catalogue import SYSTEMS_PACKAGE, write_system_file
from .reactions import BalancedReaction
from .system_network import GAS_ELEMENTS, BuildError, Network, cations, grow, user_formula, user_phase
from .tables import R_GAS, MissingDataError, Sourced, melting_point

__all__ = ["BuildError", "BuiltSystem", "build_prior", "build_system", "check_out", "performance_block",
           "write_built_system"]

PRIOR_FILE = "data/build_prior.yaml"


@lru_cache(maxsize=1)
def build_prior() -> dict:
    """The documented prior (``data/build_prior.yaml``) as parsed YAML."""
    return yaml.safe_load(resources.files(SYSTEMS_PACKAGE).joinpath(PRIOR_FILE).read_text())


def tammann_melting_point(formula: str) -> Sourced:
    """The CRC melting point (K) Tammann's rule uses for ``formula``, on the polymorph record
    the prior names (rutile for TiO2, cristobalite for SiO2).

    Raises:
        MissingDataError: no CRC melting point.
    """
    from pymatgen.core import Composition

    records = build_prior()["tammann"]["records"]
    reduced = Composition(formula).reduced_formula
    cas = next((r["cas"] for f, r in records.items() if Composition(f).reduced_formula == reduced), None)
    return melting_point(formula, cas)


@dataclass(frozen=True)
class ReactionPrior:
    """One reaction's Arrhenius parameters and the rule that gave them.

    Attributes:
        rule: "solid-state (Tammann)", "decomposition" or "gas-solid (Tammann)".
        onset: temperature at which k = the prior's rate, K.
        onset_uncertainty: K.
        activation_energy: kJ/mol.
        prefactor: 1/s.
        note: the rule with its numbers and sources, as written in the file.
        caveat: why the rule's numbers may be off for this reaction ("" if nothing is known).
        law: the rate law: "jander" (product-layer diffusion) for two solids reacting,
            "first-order" otherwise (kinetics.py).
    """

    rule: str
    onset: float
    onset_uncertainty: float
    activation_energy: float
    prefactor: float
    note: str
    caveat: str = ""
    law: str = "first-order"


def rate_at_onset(law: str) -> float:
    """k at the onset, 1/s: the prior's first-order rate (half converted in ln 2 / k), or for
    another law the rate that half-converts in that same time: its reduced time at alpha =
    1/2 is [1 - (1/2)^(1/3)]^2 = 0.0426 for Jander's law and (ln 2)^(1/2) = 0.833 for
    Avrami-Erofeev's (exponent 2), not ln 2."""
    k = build_prior()["rate_at_onset"]
    half = {"jander": (1.0 - 0.5 ** (1.0 / 3.0)) ** 2, "avrami-erofeev": math.sqrt(math.log(2.0))}
    return k * half[law] / math.log(2.0) if law in half else k


def _prefactor(ea_kj: float, onset: float, law: str) -> float:
    return float(f"{rate_at_onset(law) * math.exp(ea_kj * 1e3 / (R_GAS * onset)):.4g}")


def _tammann(solids: list[str], phases, decomposes_at: dict[str, float]) -> tuple[float, float, str] | None:
    """(onset K, uncertainty K, why) from the lowest CRC melting point among ``solids``; a
    value the prior lists as no melting point, or one above the solid's own 1 atm
    decomposition (``decomposes_at``, K), is flagged in ``why`` (the rule is kept)."""
    prior = build_prior()["tammann"]
    known = []
    for name in solids:
        try:
            known.append((tammann_melting_point(phases[name].formula), name))
        except MissingDataError:
            continue
    if not known:
        return None
    tm, name = min(known, key=lambda x: x[0].value)
    missing = [n for n in solids if n not in {k[1] for k in known}]
    why = (f"{prior['ratio']:g} x Tm({name}) {tm.value:.0f} K ({tm.source})"
           + (f"; no CRC melting point for {', '.join(missing)}" if missing else ""))
    from pymatgen.core import Composition

    reduced = Composition(phases[name].formula).reduced_formula
    caveat = next((" ".join(c.split()) for f, c in (prior.get("caveats") or {}).items()
                   if Composition(f).reduced_formula == reduced), None)
    if caveat is None and decomposes_at.get(name, math.inf) < tm.value:
        caveat = (f"caveat: {name} decomposes at {decomposes_at[name]:.0f} K with its gas at 1 atm, below this "
                  "CRC value, which is then no 1 atm melting point: the onset is uncertain")
    if caveat:
        why += f" ({caveat})"
    return prior["ratio"] * tm.value, prior["uncertainty"] * tm.value, why


def _decomposition_onset(rxn: BalancedReaction) -> float | None:
    """Lowest temperature where dG (every gas at 1 atm) turns negative, K, or None."""
    import numpy as np

    for t in rxn.crossover_temperatures():
        if float(rxn.gibbs(np.array([t + 1.0]))[0]) < 0:
            return t
    return None


def _decomposing(rxn: BalancedReaction) -> str | None:
    """The solid a reaction decomposes (one solid in, no gas in), or None."""
    solid_in = [n for n, c in rxn.coefficients.items() if c < 0 and not rxn.phases[n].is_gas]
    gas_in = [n for n, c in rxn.coefficients.items() if c < 0 and rxn.phases[n].is_gas]
    return solid_in[0] if len(solid_in) == 1 and not gas_in else None


def reaction_prior(rxn: BalancedReaction, decomposes_at: dict[str, float] | None = None
                   ) -> tuple[str, tuple[float, float, str] | None, dict]:
    """(rule, (onset, uncertainty, why) or None if no melting point decides it, Ea prior);
    ``decomposes_at``: solid -> its 1 atm decomposition onset, K (flags CRC values above it)."""
    prior = build_prior()
    decomposes_at = decomposes_at or {}
    solid_in = [n for n, c in rxn.coefficients.items() if c < 0 and not rxn.phases[n].is_gas]
    gas_in = [n for n, c in rxn.coefficients.items() if c < 0 and rxn.phases[n].is_gas]
    ea_prior = prior["activation_energy"]
    if len(solid_in) >= 2:
        return "solid-state (Tammann)", _tammann(solid_in, rxn.phases, decomposes_at), ea_prior["solid_state"]
    if gas_in:
        return "gas-solid (Tammann)", _tammann(solid_in, rxn.phases, decomposes_at), ea_prior["gas_solid"]
    onset = _decomposition_onset(rxn)
    ea = prior["activation_energy"]["decomposition"]
    if onset is None:  # downhill at the furnace's partial pressures only, or everywhere
        return "decomposition (Tammann: no 1 atm crossover)", _tammann(solid_in, rxn.phases, decomposes_at), ea
    gases = ", ".join(n for n, c in rxn.coefficients.items() if rxn.phases[n].is_gas)
    why = f"dG(T) of the tables crosses zero at {onset:.0f} K with {gases} at 1 atm"
    return "decomposition", (onset, prior["decomposition"]["uncertainty"], why), ea


def kinetic_priors(net: Network) -> list[ReactionPrior]:
    """Each reaction's Arrhenius parameters by the prior's rules (reactions in order)."""
    import numpy as np

    from .catalogue import load_atmospheres

    prior = build_prior()
    decomposes_at: dict[str, float] = {}
    for r in net.reactions:
        solid, onset = _decomposing(r), _decomposition_onset(r)
        if solid is not None and onset is not None:
            decomposes_at[solid] = min(onset, decomposes_at.get(solid, math.inf))
    rules = [reaction_prior(r, decomposes_at) for r in net.reactions]
    decided = [x[1][0] for x in rules if x[1] is not None and x[0].startswith("solid-state")]
    fallback = max(decided) if decided else None
    air = load_atmospheres()["air"]
    out = []
    for rxn, (rule, onset, ea), atms in zip(net.reactions, rules, net.downhill, strict=True):
        if onset is None:
            if fallback is None:
                names = ", ".join(n for n, c in rxn.coefficients.items() if c < 0)
                raise BuildError(f"{rxn.equation}: no CRC melting point for {names} and no other solid-state "
                                 "reaction to take an onset from; give this reaction's parameters by hand")
            onset = (fallback, prior["tammann"]["no_melting_point_uncertainty"],
                     "no reactant has a CRC melting point: the highest Tammann onset of the other "
                     "solid-state reactions (assumption)")
        t_on, sigma, why = onset
        pressures = {n: air.get(p.formula, 1e-6) for n, p in rxn.phases.items() if p.is_gas}
        dg_air = float(rxn.gibbs(np.array([t_on]), pressures)[0]) / 1e3
        law = "jander" if rule.startswith("solid-state") else "first-order"
        a = _prefactor(ea["value"], t_on, law)
        note = (f"prior ({rule}, envs/chemistry/data/build_prior.yaml): onset {t_on:.0f} +- {sigma:.0f} K = {why}; "
                f"Ea {ea['value']:g} +- {ea['uncertainty']:g} kJ/mol ({ea['source']}); {law} law, A so that "
                f"k = {rate_at_onset(law):.3g} 1/s at the onset (half converted in about 2 h). "
                f"dG at the onset in air {dg_air:+.1f} kJ/mol; "
                + (f"runs forward somewhere in the dwell range in: {', '.join(atms)}" if atms else
                   "runs only backward in the dwell range (the network met it from the other side)"))
        caveat = why[why.index("caveat: ") + 8:].rstrip(")") if "caveat: " in why else ""
        out.append(ReactionPrior(rule, round(t_on, 1), round(sigma, 1), ea["value"], a, note, caveat, law))
    return out


def performance_block(target: str) -> dict:
    """The target's ``performance:`` entry: its weight fraction (no property model from the tables)."""
    return {"property": "target weight fraction", "unit": "", "theoretical": 1.0, "rule": "weight_fraction",
            "source": f"weight fraction of {target} in the fired sample: no property model "
                      "from the tables (synthgap system build)"}


def _grain_growth(target: str, net: Network, priors: list[ReactionPrior]) -> dict:
    g = build_prior()["grain_growth"]
    try:
        tm = tammann_melting_point(net.phases[target].formula)
        t_g = build_prior()["tammann"]["ratio"] * tm.value
        why = f"{target}'s Tammann temperature {t_g:.0f} K ({tm.source})"
    except MissingDataError:
        solid = [p.onset for p in priors if p.rule.startswith("solid-state")] or [p.onset for p in priors]
        t_g = max(solid)
        why = f"the highest onset of the file's reactions, {t_g:.0f} K (no CRC melting point for {target})"
    ea = g["activation_energy"]
    a = float(f"{g['growth'] / g['time'] * math.exp(ea * 1e3 / (R_GAS * t_g)):.4g}")
    return {"activation_energy": ea, "prefactor": a,
            "source": f"prior (build_prior.yaml grain_growth): Ea {ea:g} kJ/mol (assumption); A so that d^2 grows "
                      f"{g['growth']:g} um^2 in {g['time'] / 3600:g} h at {why}; +- a factor 10 in A"}


@dataclass
class BuiltSystem:
    """What :func:`build_system` made.

    Attributes:
        data: the system file's content (the loader's fields, in file order).
        network: the phases and reactions.
        priors: each reaction's prior (same order as ``network.reactions``).
        header: comment lines for the top of the file (what was left out, and why).
    """

    data: dict
    network: Network
    priors: list[ReactionPrior]
    header: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """A machine-readable summary: phases (with the source of their G(T)), reactions, skipped."""
        phases = {n: {"formula": p.formula, "gas": p.is_gas, "sources": p.sources()}
                  for n, p in self.network.phases.items()}
        reactions = [{"equation": r.equation, "rule": pr.rule, "law": pr.law, "onset_K": pr.onset,
                      "onset_uncertainty_K": pr.onset_uncertainty, "activation_energy_kJ_per_mol":
                      pr.activation_energy, "prefactor_per_s": pr.prefactor, "source": pr.note}
                     for r, pr in zip(self.network.reactions, self.priors, strict=True)]
        caveats = [f"{r.equation}: {pr.caveat}" for r, pr in zip(self.network.reactions, self.priors, strict=True)
                   if pr.caveat]
        return {"system": self.data["system"], "precursors": self.data["precursors"], "phases": phases,
                "reactions": reactions, "skipped": dict(self.network.skipped), "caveats": caveats,
                "grain_growth": self.data["grain_growth"]}


def _phase_entry(phase, spec: dict) -> dict:
    entry = dict(spec)
    if phase.is_gas:
        return {"gas": True}
    if phase.formula != phase.name:
        entry["formula"] = phase.formula
    if phase.gibbs_table is not None:
        entry["note"] = f"dfG(T): {phase.gibbs_table.source}"
    elif phase.enthalpy is not None:
        entry["note"] = f"dfH: {phase.enthalpy.source}; S0 and Cp from its CAS number"
    return entry


def build_system(target: str, precursors: Sequence[str]) -> BuiltSystem:
    """Build the system file's content for ``target`` from ``precursors`` (see module doc).

    Raises:
        BuildError: an unknown formula, precursors that lack an element of the target, no
            G(T) data for the target or a precursor (the message says what to do).
    """
    from .system_network import _load, candidates

    precursors = [p.strip() for p in precursors if p.strip()]
    if not precursors:
        raise BuildError("--precursors: give at least one precursor, e.g. --precursors SrCO3,TiO2")
    if len(set(precursors)) != len(precursors) or target in precursors:
        raise BuildError(f"--precursors {','.join(precursors)}: each precursor once, and not the target")
    for i, name in enumerate([target, *precursors]):
        user_formula(name, "target" if i == 0 else "precursor")
    user = {p: user_phase(p, "precursor") for p in precursors}
    have = set().union(*(cations(ph) for ph, _ in user.values()))
    tgt, tgt_spec = user_phase(target, "target")
    missing = sorted(set(cations(tgt)) - have)
    if missing:
        raise BuildError(f"precursors {', '.join(precursors)} contain no {', '.join(missing)}, an element of "
                         f"{target}: add a precursor that does (e.g. its oxide or carbonate)")
    space = {"O"} | {e for ph in [tgt, *(p for p, _ in user.values())] for e in ph.element_amounts}
    gases = {"O2": _load("O2", {"gas": True})}
    for el, gas in (("C", "CO2"), ("H", "H2O")):
        if el in space:
            gases[gas] = _load(gas, {"gas": True})
    pool, skipped = candidates(space, {**{n: p for n, (p, _) in user.items()}, target: tgt})
    net = grow({n: p for n, (p, _) in user.items()}, tgt, gases, pool, build_prior()["network"]["temperature_step"])
    net.skipped = {**skipped, **net.skipped}
    priors = kinetic_priors(net)
    specs = {n: s for n, (_, s) in user.items()} | {target: tgt_spec}
    makes_target = [r.equation for r in net.reactions if r.coefficients.get(target, 0) > 0]
    description = (
        f"{target} from {' + '.join(precursors)}, built by synthgap system build from the tables: "
        f"{sum(not p.is_gas for p in net.phases.values())} solids with G(T) data in the "
        f"{'-'.join(sorted(e for e in space if e not in GAS_ELEMENTS))}-"
        f"{'-'.join(e for e in GAS_ELEMENTS if e in space)} space and {len(net.reactions)} reactions; "
        "the kinetic parameters come from the documented prior of envs/chemistry/data/build_prior.yaml "
        "(Tammann's rule on CRC melting points, decomposition crossovers, assumed activation energies), "
        "not from measurements of this system"
        + ("" if makes_target else f". No reaction of the network makes {target}"))
    data = {
        "system": target,
        "description": description,
        "phases": {n: _phase_entry(p, specs.get(n, {})) for n, p in net.phases.items()},
        "precursors": list(precursors),
        "reactions": [{"equation": r.equation, **({"law": pr.law} if pr.law != "first-order" else {}),
                       "activation_energy": pr.activation_energy, "prefactor": pr.prefactor, "source": pr.note}
                      for r, pr in zip(net.reactions, priors, strict=True)],
        "grain_growth": _grain_growth(target, net, priors),
        "targets": {target: {"precursor_sets": [list(precursors)], "performance": performance_block(target)}},
    }
    header = [f"Built by: synthgap system build {target} --precursors {','.join(precursors)}",
              "Phases of the space left out (no kept reaction makes them, or not a phase to react):"]
    header += [f"  {n}: {why}" for n, why in sorted(net.skipped.items())] or ["  (none)"]
    return BuiltSystem(data, net, priors, header)


def check_out(out: str | Path, force: bool = False) -> Path:
    """``out`` as a path a built file may be written to.

    Raises:
        BuildError: ``out`` exists and ``force`` is False, or its folder does not exist.
    """
    path = Path(out)
    if path.is_dir():
        raise BuildError(f"--out {out}: is a folder; give the system file to write")
    if path.exists() and not force:
        raise BuildError(f"--out {out}: the file exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise BuildError(f"--out {out}: folder {path.parent} does not exist")
    return path


def write_built_system(built: BuiltSystem, out: str | Path, force: bool = False) -> Path:
    """Write ``built`` to ``out`` and load it back through the system loader.

    Raises:
        BuildError: ``out`` exists and ``force`` is False, or its folder does not exist.
    """
    from ..userfiles import load_user_file
    from .system_reader import SystemReader

    path = check_out(out, force)
    write_system_file(built.data, path, built.header)
    SystemReader(str(path), load_user_file(path)).read()  # not load_system: it caches by path
    return path
