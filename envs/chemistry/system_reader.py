"""Read one system file (YAML or JSON, already parsed) into a :class:`~.system_model.ChemicalSystem`.

Every bad field is refused with a :class:`CatalogueError` that names the file, the field
and the problem; nothing is assumed (no heat capacity of 0, no unbalanced reaction).
Units in a file: activation energies kJ/mol (stored J/mol), enthalpies kJ/mol or eV/atom
below the 0 K hull, entropies and heat capacities J/(mol K), prefactors 1/s (grain growth
um^2/s), grain sizes um.

Fields of a phase entry (all optional):

* ``formula``: defaults to the phase name;
* ``cas``: CAS number for S0 and Cp in the CRC (or NIST WebBook) table;
* ``gas: true``: a gas, Gibbs energy from NIST-JANAF (elements like O2 are zero);
* ``enthalpy``: ``{value: kJ/mol, source: ...}``, or ``{below_hull_0K: eV/atom,
  uncertainty_per_atom: eV/atom, source}`` (a placement says its uncertainty)
  for a predicted phase placed that far below the 0 K hull of the other phases;
  default: pymatgen's experimental table;
* ``entropy`` / ``heat_capacity``: ``{value: J/(mol K), source}``, or
  ``{additivity: {PHASE: coefficient, ...}, offset: J/(mol K)}`` (an estimate by oxide
  additivity from phases of the same file);
* ``gibbs_from``: ``{parts: {PHASE: coefficient, ...}, dG: [a kJ/mol, b kJ/(mol K)],
  uncertainty: kJ/mol, source}``: dfG(T) is the parts' dfG(T) plus the measured line
  a + b T of the reaction parts -> phase (phases listed earlier; gases at 1 atm);
* ``hypothetical: true``: a predicted phase nobody has made;
* ``assessed: false`` with ``reason``: do not take dfG(T) from the assessed tables
  (NIST-JANAF, FREED) although they have the compound. A solid the tables have takes its
  dfG(T) from them and must give no enthalpy, entropy or heat capacity; any other solid
  needs a heat capacity (from its ``cas``, a value, or additivity): none is refused.

A target's ``performance:`` block (property, unit, theoretical, ``rule:`` and the rule's
sourced numbers) is read by :mod:`.property_rules`, the optional ``sintering:`` block
(a master sintering curve) by :mod:`.sintering`; their docstrings give the schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..userfiles import short
from . import tables
from .phases import Phase, ThermoError, gas_table, heat_capacity_298, tabled_solid
from .property_rules import read_rule
from .reactions import BalancedReaction, balance, parse_equation
from .sintering import read_sintering
from .system_model import RATE_LAWS, ChemicalSystem, PerformanceModel, ReactionSpec, Target
from .tables import EV_TO_J_PER_MOL, MissingDataError, Sourced


class CatalogueError(ValueError):
    """A system data file is malformed; the message names the file, the field and the problem."""

    def __init__(self, file: str, field_path: str, problem: str):
        self.file, self.field, self.problem = file, field_path, problem
        super().__init__(f"{file}: {field_path}: {problem}")


class SystemReader:
    """Turns a parsed system file into a ChemicalSystem, naming every bad field."""

    def __init__(self, path: str, data: Any):
        self.path = path
        if not isinstance(data, dict):
            self.fail("(top level)", "must be a mapping with keys system, phases, reactions, targets")
        self.data = data

    def fail(self, field_path: str, problem: str):
        raise CatalogueError(self.path, field_path, problem)

    def require(self, mapping: Mapping, key: str, where: str, kind: type | tuple = object):
        if not isinstance(mapping, Mapping) or key not in mapping:
            self.fail(f"{where}.{key}" if where else key, "is required")
        value = mapping[key]
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(f"{where}.{key}" if where else key, f"must be a {names}, got {short(value)}")
        return value

    def number(self, mapping: Mapping, key: str, where: str, positive: bool = False) -> float:
        value = self.require(mapping, key, where, (int, float, str))
        try:  # a string too: YAML 1.1 reads 2.0e5 as a string
            number = float(value)
        except ValueError:
            self.fail(f"{where}.{key}", f"must be a number, got {short(value)}")
        except OverflowError:  # an integer beyond any float
            number = math.inf
        if isinstance(value, bool) or not math.isfinite(number):
            self.fail(f"{where}.{key}", f"must be a finite number, got {short(value)}")
        if positive and not number > 0:
            self.fail(f"{where}.{key}", f"must be > 0, got {short(value)}")
        return number

    def read(self) -> ChemicalSystem:
        d = self.data
        name = self.require(d, "system", "", str)
        phases_raw = self.require(d, "phases", "", dict)
        phases = self.read_phases(phases_raw)
        precursors = tuple(self.require(d, "precursors", "", list))
        for i, pre in enumerate(precursors):
            if not isinstance(pre, str) or pre not in phases:
                self.fail(f"precursors[{i}]", f"unknown phase {short(pre)} (phases: {', '.join(phases)})")
        reactions = tuple(
            self.read_reaction(i, r, phases) for i, r in enumerate(self.require(d, "reactions", "", list))
        )
        gg = self.require(d, "grain_growth", "", dict)
        grain = (
            self.number(gg, "activation_energy", "grain_growth", True) * 1e3,
            self.number(gg, "prefactor", "grain_growth", True),
        )
        volatiles = {}
        for vname, v in (d.get("volatiles") or {}).items():
            if vname not in phases:
                self.fail(f"volatiles.{vname}", "unknown phase")
            where = f"volatiles.{vname}"
            volatiles[vname] = (
                self.number(v, "activation_energy", where, True) * 1e3,
                self.number(v, "prefactor", where, True),
            )
        sintering = read_sintering(self, d["sintering"]) if d.get("sintering") is not None else None
        targets = {
            t: self.read_target(t, spec, phases, precursors)
            for t, spec in self.require(d, "targets", "", dict).items()
        }
        return ChemicalSystem(
            name=name,
            description=" ".join(str(d.get("description", "")).split()),
            phases=phases,
            precursors=precursors,
            reactions=reactions,
            targets=targets,
            grain_growth=grain,
            volatiles=volatiles,
            source=self.path,
            sintering=sintering,
        )

    # -- phases -----------------------------------------------------------------------

    def read_phases(self, raw: dict) -> dict[str, Phase]:
        from pymatgen.core import Composition

        phases: dict[str, Phase] = {}
        deferred: list[tuple[str, dict]] = []
        for name, spec in raw.items():
            where = f"phases.{name}"
            spec = spec or {}
            if not isinstance(spec, dict):
                self.fail(where, f"must be a mapping, got {short(spec)}")
            formula = str(spec.get("formula", name))
            try:
                Composition(formula)
            except (ValueError, KeyError) as exc:
                self.fail(f"{where}.formula", f"not a valid formula {short(formula)}: {short(str(exc), 80)}")
            if spec.get("gas"):
                try:
                    phases[name] = gas_phase(name, formula)
                except MissingDataError as exc:
                    self.fail(where, str(exc))
                continue
            if "below_hull_0K" in (spec.get("enthalpy") or {}):
                deferred.append((name, spec))
                continue
            phases[name] = self.read_solid(name, formula, spec, phases)
        for name, spec in deferred:
            phases[name] = self.read_solid(name, str(spec.get("formula", name)), spec, phases)
        return {n: phases[n] for n in raw}

    def read_solid(self, name: str, formula: str, spec: dict, known: dict[str, Phase]) -> Phase:
        where = f"phases.{name}"
        cas = spec.get("cas")
        hypothetical = bool(spec.get("hypothetical", False))
        table = self.assessed_table(name, formula, spec)
        if table is not None:
            return tabled_solid(name, formula, table, hypothetical)
        if "gibbs_from" in spec:
            return self.read_gibbs_from(name, formula, spec, known, hypothetical)
        enthalpy = self.read_enthalpy(name, formula, spec.get("enthalpy"), known)
        entropy = self.read_value(name, "entropy", spec.get("entropy"), known, cas, formula)
        if entropy is None:
            self.fail(f"{where}.entropy", "no standard entropy: give cas, a value or additivity")
        cp_spec = spec.get("heat_capacity")
        heat_capacity = self.read_value(name, "heat_capacity", cp_spec, known, cas, formula)
        fit = tables.heat_capacity_fit(str(cas), formula) if cas is not None and cp_spec is None else None
        parts = ()
        if isinstance(cp_spec, dict) and "additivity" in cp_spec:
            parts = tuple((known[o], float(c)) for o, c in cp_spec["additivity"].items())
        if heat_capacity is None and fit is None:
            self.fail(f"{where}.heat_capacity", "no heat capacity in any table: give a value with its "
                      "source, or additivity from phases listed earlier (never assumed 0)")
        return Phase(
            name,
            formula,
            enthalpy=enthalpy,
            entropy=entropy,
            heat_capacity=heat_capacity,
            hypothetical=hypothetical,
            heat_capacity_fit=fit,
            heat_capacity_parts=parts,
        )

    def read_gibbs_from(self, name: str, formula: str, spec: dict, known: dict[str, Phase],
                        hypothetical: bool) -> Phase:
        where = f"phases.{name}.gibbs_from"
        given = [k for k in ("enthalpy", "entropy", "heat_capacity") if k in spec]
        if given:
            self.fail(f"phases.{name}.{given[0]}", "gibbs_from gives dfG(T) already; remove the value")
        g = spec["gibbs_from"]
        if not isinstance(g, dict):
            self.fail(where, f"must be a mapping with parts, dG and source, got {short(g)}")
        parts = self.require(g, "parts", where, dict)
        for other in parts:
            if other not in known:
                self.fail(f"{where}.parts.{other}", "must name a phase listed earlier in the file")
        self.check_additivity(name, formula, parts, known, f"{where}.parts")
        line = g.get("dG")
        numbers = isinstance(line, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in line)
        if not (numbers and len(line) == 2 and all(math.isfinite(x) for x in line)):
            self.fail(f"{where}.dG", f"must be [a kJ/mol, b kJ/(mol K)] (dG = a + b T), got {short(line)}")
        sigma = self.number(g, "uncertainty", where, True) if "uncertainty" in g else None
        from .derived_gibbs import phase_from_parts

        return phase_from_parts(name, formula, [(known[o], float(c)) for o, c in parts.items()],
                                float(line[0]), float(line[1]), self.require(g, "source", where, str),
                                sigma, hypothetical)

    def assessed_table(self, name: str, formula: str, spec: dict):
        """The phase's assessed G(T) table, None if it has none or the file declines it.

        A phase with a table takes dfG(T) from it; giving enthalpy, entropy or heat capacity
        as well is an error unless ``assessed: false`` with a ``reason`` says why not.
        """
        where = f"phases.{name}"
        assessed = spec.get("assessed", True)
        if assessed is False:
            reason = spec.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                self.fail(f"{where}.reason", "assessed: false needs a reason (why the tables are not used)")
            return None
        if assessed is not True:
            self.fail(f"{where}.assessed", f"must be true or false, got {str(assessed)[:20]!r}")
        table = tables.assessed_gibbs_table(formula)
        if table is None:
            return None
        given = [k for k in ("enthalpy", "entropy", "heat_capacity") if k in spec]
        if given:
            origin = table.source.split(" G(T)")[0]
            self.fail(f"{where}.{given[0]}", f"{formula} has an assessed G(T) table ({origin}); "
                      "remove the value, or set assessed: false with a reason")
        return table

    def read_enthalpy(self, name: str, formula: str, spec: Any, known: dict[str, Phase]) -> Sourced:
        where = f"phases.{name}.enthalpy"
        if spec is None:
            try:
                return tables.formation_enthalpy(formula)
            except MissingDataError as exc:
                self.fail(where, str(exc))
        if not isinstance(spec, dict):
            self.fail(where, f"must be a mapping, got {short(spec)}")
        source = self.require(spec, "source", where, str)
        if "value" in spec:
            kj = self.number(spec, "value", where)
            return Sourced(kj * 1e3, source, estimate=bool(spec.get("estimate", False)),
                           method=str(spec.get("method", "")))
        if "below_hull_0K" in spec:
            depth = self.number(spec, "below_hull_0K", where)
            if "uncertainty_per_atom" not in spec:
                self.fail(f"{where}.uncertainty_per_atom", "a phase placed below the hull needs its uncertainty "
                          "(eV/atom) and, in source, where it comes from or that it is an assumption")
            sigma = self.number(spec, "uncertainty_per_atom", where)
            placed = self.below_hull_enthalpy(name, formula, depth, source, known)
            from pymatgen.core import Composition

            atoms = Composition(formula).num_atoms
            return replace(placed, uncertainty=sigma * atoms * EV_TO_J_PER_MOL,
                           method=f"{placed.method}, +- {sigma * 1e3:g} meV/atom")
        self.fail(where, "needs value (kJ/mol) or below_hull_0K (eV/atom)")

    def below_hull_enthalpy(
        self, name: str, formula: str, depth: float, source: str, known: dict[str, Phase]
    ) -> Sourced:
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
        from pymatgen.core import Composition, Element

        comp = Composition(formula)
        entries = [PDEntry(Composition(str(el)), 0.0) for el in comp.elements]
        for p in known.values():
            if p.is_gas or p.enthalpy is None:
                continue
            pc = Composition(p.formula)
            if set(pc.elements) <= set(comp.elements):
                entries.append(PDEntry(pc, p.enthalpy.value / EV_TO_J_PER_MOL))
        pd = PhaseDiagram(entries, elements=[Element(str(e)) for e in comp.elements])
        hull_per_atom = pd.get_hull_energy_per_atom(comp)
        value = (hull_per_atom - depth) * comp.num_atoms * EV_TO_J_PER_MOL
        return Sourced(value, source, estimate=True,
                       method=f"placed {depth * 1e3:g} meV/atom below the 0 K hull of known phases")

    def read_value(
        self, name: str, key: str, spec: Any, known: dict[str, Phase], cas: str | None, formula: str
    ) -> Sourced | None:
        where = f"phases.{name}.{key}"
        if spec is None:
            if cas is None:
                return None
            try:
                fn = tables.standard_entropy if key == "entropy" else tables.heat_capacity
                return fn(str(cas), formula)
            except MissingDataError as exc:
                if key == "entropy":
                    self.fail(where, str(exc))
                return None
        if not isinstance(spec, dict):
            self.fail(where, f"must be a mapping, got {short(spec)}")
        if "value" in spec:
            return Sourced(self.number(spec, "value", where, True), self.require(spec, "source", where, str))
        if "additivity" in spec:
            parts = self.require(spec, "additivity", where, dict)
            total, names = float(spec.get("offset", 0.0)), []
            for other, coeff in parts.items():
                if other not in known:
                    self.fail(f"{where}.additivity.{other}", "must name a phase listed earlier in the file")
                v = getattr(known[other], key)
                if key == "heat_capacity":
                    try:
                        v = Sourced(heat_capacity_298(known[other]), "")
                    except MissingDataError as exc:
                        self.fail(f"{where}.additivity.{other}", str(exc))
                if v is None:
                    self.fail(f"{where}.additivity.{other}", f"{other} has no {key} to add")
                total += float(coeff) * v.value
                names.append(f"{coeff} {other}")
            method = ("Neumann-Kopp (oxide additivity, each part's Cp(T) by its own route): "
                      if key == "heat_capacity" else "oxide additivity: ") + " + ".join(names)
            if spec.get("offset"):
                method += f" {float(spec['offset']):+g} J/(mol K)"
            # the composition must match, or the estimate is meaningless
            self.check_additivity(name, formula, parts, known, where)
            return Sourced(total, "estimate", estimate=True, method=method)
        self.fail(where, "needs value (J/(mol K)) with source, or additivity")

    def check_additivity(self, name, formula, parts, known, where):
        from pymatgen.core import Composition

        total = Composition()
        for other, coeff in parts.items():
            total += Composition(known[other].formula) * float(coeff)
        if not total.almost_equals(Composition(formula)):
            self.fail(f"{where}.additivity", f"adds up to {total.formula}, not {formula}")

    # -- reactions and targets ---------------------------------------------------------

    def read_reaction(self, i: int, spec: Any, phases: dict[str, Phase]) -> ReactionSpec:
        where = f"reactions[{i}]"
        if not isinstance(spec, dict):
            self.fail(where, "must be a mapping with equation, activation_energy, prefactor")
        eq = self.require(spec, "equation", where, str)
        try:
            left, right = parse_equation(eq)
        except ThermoError as exc:
            self.fail(f"{where}.equation", str(exc))
        for _, n in left + right:
            if n not in phases:
                self.fail(f"{where}.equation", f"unknown phase {short(n)} in {short(eq)}")
        try:
            rxn = balance([phases[n] for _, n in left], [phases[n] for _, n in right])
        except ThermoError as exc:
            self.fail(f"{where}.equation", str(exc))
        # the written coefficients must be the balanced ones (up to one common factor)
        first_c, first_n = left[0]
        scale = first_c / -rxn.coefficients[first_n]
        coeffs = {n: c * scale for n, c in rxn.coefficients.items()}
        for c, n in left + right:
            if abs(abs(coeffs[n]) - c) > 1e-6:
                self.fail(f"{where}.equation", f"{short(eq)} is not balanced; balanced: {rxn.equation}")
        law = spec.get("law", RATE_LAWS[0])
        if law not in RATE_LAWS:
            self.fail(f"{where}.law", f"unknown rate law {short(law)}; use one of {', '.join(RATE_LAWS)}")
        solids = [n for n, c in coeffs.items() if c < 0 and phases[n].state != "gas"]  # the solid reactants
        if law == "jander" and len(solids) < 2:
            self.fail(f"{where}.law", "a Jander law needs two solid reactants (its product layer grows between them)")
        if law == "avrami-erofeev" and len(solids) != 1:
            self.fail(f"{where}.law", "an Avrami-Erofeev law needs exactly one solid reactant (the new phase "
                                      "nucleates and grows inside it)")
        flux, melting = spec.get("flux"), math.inf
        if flux is not None:
            if law != "jander":
                self.fail(f"{where}.flux", "a flux changes a Jander law (its melt removes the product layer); "
                                           "give law: jander")
            if flux not in solids:
                self.fail(f"{where}.flux", f"{short(flux)} is not a solid reactant of {short(eq)} "
                                           f"(its solid reactants: {', '.join(solids)})")
            try:
                melting = tables.melting_point(phases[flux].formula).value
            except MissingDataError as exc:
                self.fail(f"{where}.flux", f"{exc}: a flux needs its melting point")
        return ReactionSpec(
            BalancedReaction(coeffs, rxn.phases),
            self.number(spec, "activation_energy", where, True) * 1e3,
            self.number(spec, "prefactor", where, True),
            law, flux, melting,
        )

    def read_target(self, name: str, spec: Any, phases: dict[str, Phase], precursors) -> Target:
        where = f"targets.{name}"
        if name not in phases:
            self.fail(where, "a target must be one of the phases")
        if not isinstance(spec, dict):
            self.fail(where, "must be a mapping with precursor_sets and performance")
        sets = self.require(spec, "precursor_sets", where, list)
        out_sets = []
        for j, s in enumerate(sets):
            if not isinstance(s, list) or not s:
                self.fail(f"{where}.precursor_sets[{j}]", "must be a non-empty list of precursors")
            for pre in s:
                if not isinstance(pre, str) or pre not in precursors:
                    self.fail(f"{where}.precursor_sets[{j}]", f"{short(pre)} is not in precursors")
            out_sets.append(tuple(s))
        perf = self.require(spec, "performance", where, dict)
        pw = f"{where}.performance"
        rule = read_rule(self, perf, pw, name, phases, self.data.get("sintering") is not None)
        theoretical = self.number(perf, "theoretical", pw, True) if "theoretical" in perf else None
        if rule.name == "weight_fraction" and theoretical not in (None, 1.0):
            self.fail(f"{pw}.theoretical", f"rule weight_fraction: the property is a fraction, 1 at best, "
                      f"got {theoretical:g}")
        if theoretical is None and rule.name != "weight_fraction":
            self.fail(f"{pw}.theoretical", "is required")
        model = PerformanceModel(
            property=self.require(perf, "property", pw, str),
            unit=str(perf.get("unit", "")),
            theoretical=1.0 if theoretical is None else theoretical,
            rule=rule,
            source=" ".join(str(perf.get("source", "")).split()),
        )
        return Target(name, tuple(out_sets), model, bool(spec.get("unobtainium", False)))


def gas_phase(name: str, formula: str) -> Phase:
    from pymatgen.core import Composition

    if len(Composition(formula).elements) == 1:
        return Phase(name, formula, state="gas")
    return Phase(name, formula, state="gas", gibbs_table=gas_table(formula))

