"""The phases and reactions of a chemical space, from the tables alone (for ``synthgap system build``).

The space of a target and its precursors is their elements and oxygen. Its candidate
solids are the compounds some assessed G(T) table (NIST-JANAF, FREED) has with only those
elements, charge-balanced with common oxidation states (pymatgen ``oxi_state_guesses``:
this leaves out the gas radicals and suboxides the tables list, YO, SiO) and stoichiometric
(no Fe947O1000, the tables' wustite Fe0.947O). The network
grows from the precursors: each reachable solid may decompose or change its oxygen
content into a solid of the same cations (``A -> Y + gases``), and each pair of reachable
solids of different cations may react to a solid whose cations lie between theirs
(``A + B -> X + gases``); the gases (O2; CO2 when carbon is in the space; H2O when
hydrogen is) balance it. A reaction is kept when it runs forward (dG < 0) somewhere in the
recipe's dwell range in at least one furnace atmosphere; its product becomes reachable. A
candidate no kept reaction makes is left out, with the reason.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .catalogue import load_atmospheres
from .limits import RECIPE_LIMITS
from .phases import Phase, ThermoError
from .reactions import BalancedReaction, balance
from .system_reader import CatalogueError, SystemReader
from .tables import assessed_formulas, assessed_gibbs_table

GAS_ELEMENTS = ("O", "C", "H")  # elements that come and go as gases
MAX_SUBSCRIPT = 12  # a reduced formula with a larger subscript is a non-stoichiometric phase (Fe947O1000)
TRACE_PRESSURE = 1.0e-6  # atm: a gas an atmosphere does not name (as kinetics.TRACE_PRESSURE)


class BuildError(ValueError):
    """A system cannot be built from the tables; the message says what to fix."""


def plain_name(formula: str) -> str:
    """A phase name without spaces or brackets: ``Zn(FeO2)2`` -> ``ZnFe2O4``."""
    from pymatgen.core import Composition

    comp = Composition(formula).reduced_composition
    return "".join(f"{el}{'' if n == 1 else f'{n:g}'}" for el, n in
                   ((str(e), comp[e]) for e in comp))


def cations(phase: Phase) -> dict[str, float]:
    """Amounts of the elements other than O, C and H in one formula unit."""
    return {e: float(n) for e, n in phase.element_amounts.items() if e not in GAS_ELEMENTS and n > 0}


def _between(x: dict[str, float], a: dict[str, float], b: dict[str, float]) -> bool:
    """True if cation vector ``x`` = alpha a + beta b with alpha, beta > 0."""
    els = sorted(set(x) | set(a) | set(b))
    if not set(x) <= set(a) | set(b):
        return False
    M = np.array([[a.get(e, 0.0), b.get(e, 0.0)] for e in els])
    want = np.array([x.get(e, 0.0) for e in els])
    coef, *_ = np.linalg.lstsq(M, want, rcond=None)
    return bool(np.allclose(M @ coef, want, atol=1e-9) and np.all(coef > 1e-9))


def _parallel(a: dict[str, float], b: dict[str, float]) -> bool:
    if set(a) != set(b):
        return False
    ratios = [a[e] / b[e] for e in a]
    return all(abs(r / ratios[0] - 1) < 1e-9 for r in ratios)


def integer_coefficients(rxn: BalancedReaction) -> BalancedReaction:
    """The reaction scaled to the smallest integer coefficients (denominators up to 12)."""
    fracs = {n: Fraction(c).limit_denominator(12) for n, c in rxn.coefficients.items()}
    lcm = math.lcm(*(f.denominator for f in fracs.values()))
    ints = {n: f * lcm for n, f in fracs.items()}
    g = math.gcd(*(int(abs(v)) for v in ints.values()))
    scaled = {n: float(v / g) for n, v in ints.items()}
    if not all(abs(scaled[n] / c - scaled[next(iter(scaled))] / rxn.coefficients[next(iter(scaled))]) < 1e-6
               for n, c in rxn.coefficients.items()):
        return rxn  # irrational-looking coefficients: keep pymatgen's
    return BalancedReaction(scaled, rxn.phases)


@dataclass
class Network:
    """The phases and kept reactions of one chemical space.

    Attributes:
        phases: name -> Phase, precursors first, then target, products, gases.
        reactions: kept reactions, forward as written, in the order found.
        downhill: per reaction (same order), the atmospheres in which it runs forward as written
            somewhere in the dwell range (empty: it runs only backward there).
        skipped: candidate name -> why it is not in the file.
    """

    phases: dict[str, Phase]
    reactions: list[BalancedReaction] = field(default_factory=list)
    downhill: list[list[str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _load(name: str, spec: dict) -> Phase:
    return SystemReader("(system build)", {}).read_phases({name: spec})[name]


def user_formula(name: str, role: str) -> None:
    """Refuse a precursor's or the target's name that is not a formula of real elements.

    Raises:
        BuildError: naming the formula and what is wrong with it.
    """
    from pymatgen.core import Composition, Element

    if not set(name) <= set(string.ascii_letters + string.digits + "()."):
        raise BuildError(f"{role} {name!r}: unknown formula: a formula holds letters, digits, brackets and dots only")
    try:
        comp = Composition(name)
        unknown = [str(e) for e in comp.elements if not isinstance(e, Element)]
        if unknown or not comp.elements:
            raise ValueError(f"no element {unknown[0].rstrip('0+')}" if unknown else "no elements")
    except (ValueError, KeyError) as exc:
        raise BuildError(f"{role} {name!r}: unknown formula ({str(exc)[:80]}); "
                         "write it like SrCO3 or ZnFe2O4") from None


def user_phase(name: str, role: str) -> tuple[Phase, dict]:
    """A precursor's or the target's phase and its file entry: an assessed G(T) table, else
    pymatgen's enthalpy with the CRC entropy and Cp of its CAS number.

    Raises:
        BuildError: not a formula, or no table has its G(T).
    """
    from .tables import cas_for_formula

    user_formula(name, role)
    if assessed_gibbs_table(name) is not None:
        return _load(name, {}), {}
    cas = cas_for_formula(name)
    spec = {"cas": cas} if cas else {}
    try:
        return _load(name, spec), spec
    except CatalogueError as exc:
        raise BuildError(
            f"{role} {name}: no G(T) data (no NIST-JANAF or FREED table; {exc.problem.split(';')[0]}); write "
            f"the phase by hand in a system file (enthalpy:, entropy:, heat_capacity: or gibbs_from:, each with "
            f"its source, as envs/chemistry/data/arrows-ybco/YBa2Cu3O6.5.yaml does)"
        ) from None


def candidates(space: set[str], named: dict[str, Phase]) -> tuple[dict[str, Phase], dict[str, str]]:
    """Solids of the tables in the space (elements ``space``) other than the named ones, and
    the ones left out with why."""
    from pymatgen.core import Composition, Element

    allowed = {Element(e) for e in space}
    named_reduced = {Composition(p.formula).reduced_formula for p in named.values()}
    found: dict[str, Phase] = {}
    skipped: dict[str, str] = {}
    for formula in sorted(assessed_formulas()):
        comp = Composition(formula)
        els = {str(e) for e in comp.elements}
        if not set(comp.elements) <= allowed or len(els) < 2 or els <= set(GAS_ELEMENTS):
            continue
        if comp.reduced_formula in named_reduced:
            continue
        name = plain_name(formula)
        if max(comp.reduced_composition.values()) > MAX_SUBSCRIPT:
            skipped[name] = ("non-stoichiometric (a table of one composition of a range, such as Fe0.947O; "
                             "the stoichiometric phase stands for it)")
            continue
        if not comp.oxi_state_guesses():
            skipped[name] = "not charge-balanced with common oxidation states (a gas species or suboxide)"
            continue
        try:
            found[name] = _load(name, {"formula": name})
        except CatalogueError as exc:
            skipped[name] = f"not loadable: {exc.problem}"
    return found, skipped


def _try_balance(reactants: Sequence[Phase], product: Phase, gases: Sequence[Phase]) -> BalancedReaction | None:
    """``reactants -> product`` balanced with the fewest gases (either side), or None."""
    for k in range(len(gases) + 1):
        for subset in itertools.combinations(gases, k):
            try:
                rxn = balance(list(reactants), [product, *subset])
            except ThermoError:
                continue
            if rxn.coefficients[product.name] > 0:
                return integer_coefficients(rxn)
    return None


def as_decomposition(rxn: BalancedReaction) -> BalancedReaction:
    """``SrO + CO2 -> SrCO3`` written as ``SrCO3 -> SrO + CO2``: a reaction of one solid with
    gases to one solid is written in the direction that releases the gas, so its prior does not
    depend on which side the network met first (the kinetics run either way)."""
    solid_in = [n for n, c in rxn.coefficients.items() if c < 0 and not rxn.phases[n].is_gas]
    solid_out = [n for n, c in rxn.coefficients.items() if c > 0 and not rxn.phases[n].is_gas]
    gas_out = [n for n, c in rxn.coefficients.items() if c > 0 and rxn.phases[n].is_gas]
    if len(solid_in) == 1 and len(solid_out) == 1 and not gas_out:
        return BalancedReaction({n: -c for n, c in rxn.coefficients.items()}, rxn.phases)
    return rxn


def _downhill(rxn: BalancedReaction, grid: np.ndarray) -> list[str]:
    out = []
    for atm, partial in load_atmospheres().items():
        pressures = {n: partial.get(p.formula, TRACE_PRESSURE) for n, p in rxn.phases.items() if p.is_gas}
        if np.any(rxn.gibbs(grid, pressures) < 0):
            out.append(atm)
    return out


def grow(precursors: dict[str, Phase], target: Phase, gases: dict[str, Phase],
         pool: dict[str, Phase], temperature_step: float) -> Network:
    """The network from the precursors over the candidate solids ``pool`` (see module doc)."""
    bound = RECIPE_LIMITS["dwell_temperature"]
    grid = np.arange(bound.low, bound.high + temperature_step / 2, temperature_step)
    solids = {**precursors, target.name: target, **pool}
    reachable = list(precursors)
    net = Network(phases={})
    seen: set[frozenset[str]] = set()  # phase sets of the reactions balanced (a reverse is the same)
    tried: set[tuple[frozenset[str], str]] = set()
    gas_list = list(gases.values())

    def consider(reactants: list[Phase], product: Phase) -> None:
        attempt = (frozenset(p.name for p in reactants), product.name)
        if attempt in tried:
            return
        tried.add(attempt)
        rxn = _try_balance(reactants, product, gas_list)
        if rxn is None or frozenset(rxn.coefficients) in seen:
            return
        seen.add(frozenset(rxn.coefficients))
        if not _downhill(rxn, grid):
            return
        rxn = as_decomposition(rxn)
        net.reactions.append(rxn)
        net.downhill.append(_downhill(rxn, grid))
        if product.name not in reachable:
            reachable.append(product.name)

    done = 0
    while done < len(reachable):  # every newly reachable solid meets every earlier one
        for i in range(done, len(reachable)):
            a = solids[reachable[i]]
            for y in solids.values():
                if y.name != a.name and _parallel(cations(a), cations(y)):
                    consider([a], y)
            for j in range(i):
                b = solids[reachable[j]]
                if _parallel(cations(a), cations(b)):
                    continue
                for x in solids.values():
                    if x.name not in (a.name, b.name) and _between(cations(x), cations(b), cations(a)):
                        consider([b, a], x)
            done = i + 1
    if not any(r.coefficients.get(target.name, 0) > 0 for r in net.reactions) and len(precursors) > 2:
        consider(list(precursors.values()), target)  # the overall reaction, which no pair writes
    used_gases = {n for r in net.reactions for n in r.coefficients if n in gases}
    kept = list(reachable) + ([target.name] if target.name not in reachable else [])
    net.phases = {n: solids[n] for n in kept} | {n: g for n, g in gases.items() if n in used_gases or n == "O2"}
    for name in pool:
        if name not in net.phases:
            net.skipped[name] = (f"no reaction from the precursors makes it forward (dG < 0) at "
                                 f"{bound.low:g}-{bound.high:g} K in any furnace atmosphere "
                                 f"({', '.join(load_atmospheres())})")
    return net
