"""Chemistry subcommands: systems, reaction, hull, fire, pathway, bench chemistry."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from synthgap.envs.userfiles import int_arg, short

T_MAX = 6000.0  # K: beyond any furnace, and beyond the tables
MAX_EQUATION_CHARS = 500  # characters of a reaction equation (a long one is a typo or an attack)
MAX_NAME_CHARS = 100  # characters of a phase name given on the command line
MAX_BENCH_RECIPES = 1_000_000  # recipes in one benchmark batch (about 100 MB of arrays)
MAX_REPEATS = 100


def _temperature(text: str) -> float:
    try:
        T = float(text)
    except ValueError:
        raise ValueError(f"--T: temperature must be a number in K, got {short(text)}") from None
    if not (0 < T <= T_MAX):
        raise ValueError(f"--T: temperature must be in (0, {T_MAX:g}] K, got {T:g}")
    return T


def _pressures(items: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if "=" not in part:
                raise ValueError(f"--p: partial pressure must look like CO2=0.001 (atm), got {short(part)}")
            gas, value = part.split("=", 1)
            gas = short(gas.strip(), 20).strip("'")
            try:
                p = float(value)
            except ValueError:
                raise ValueError(f"--p: partial pressure of {gas} must be a number (atm), got {short(value)}") from None
            if not math.isfinite(p):
                raise ValueError(f"--p: partial pressure of {gas} must be a finite number of atm, got {p:g}")
            if not p > 0:
                raise ValueError(f"--p: partial pressure of {gas} must be > 0 atm, got {p:g}")
            out[gas.strip()] = p
    return out


def _png(out: str, default_name: str) -> Path:
    """Where a plot goes: ``--out`` itself, or ``default_name`` inside it when it is an existing folder
    (as ``cp FILE DIR`` does; writing ``DIR.png`` beside the folder surprised users)."""
    if not out.strip():
        raise ValueError("--out is empty: give a PNG file or an existing folder")
    path = Path(out)
    if path.is_dir():
        return path / default_name
    if not path.parent.is_dir():  # never a folder tree made from a typo (it once made /nonexistent/dir)
        raise ValueError(f"--out {short(out, 200)}: folder {short(str(path.parent), 200)} does not exist")
    return path if path.suffix else path.with_name(path.name + ".png")  # what matplotlib writes


def _enthalpy_estimates(system) -> dict:
    """Phase -> how its enthalpy was estimated, and its uncertainty per atom (eV/atom; None if
    the source states none): the phases whose place on the hull is not measured."""
    from pymatgen.core import Composition

    from synthgap.envs.chemistry.tables import EV_TO_J_PER_MOL

    out = {}
    for name, p in system.phases.items():
        e = p.enthalpy
        if p.is_gas or e is None or not e.estimate:
            continue
        atoms = Composition(p.formula).num_atoms
        out[name] = {"method": e.method, "source": " ".join(e.source.split()),
                     "uncertainty_eV_per_atom": None if e.uncertainty is None
                     else e.uncertainty / EV_TO_J_PER_MOL / atoms}
    return out


def _emit(args, payload: dict, human: str) -> int:
    print(json.dumps(payload, default=float) if args.json else human)
    return 0


def add_parsers(sub, bench) -> None:
    p = sub.add_parser("systems", help="list the catalogue's chemical systems and targets")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_systems)

    p = sub.add_parser("reaction", help="free energy of a reaction at T and its crossover temperature")
    p.add_argument("equation", help='e.g. "CaCO3 -> CaO + CO2"')
    p.add_argument("--T", type=str, default="298.15", help="temperature, K (default 298.15)")
    p.add_argument("--p", action="append", metavar="GAS=ATM", help="partial pressure of a gas, atm")
    p.add_argument("--system", metavar="S", help="take phases from this system first (bundled name or system "
                   "file: its estimates and measured values), then the catalogue, then the tables")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reaction)

    p = sub.add_parser("hull", help="plot the 0 K hull beside the hull at T")
    p.add_argument("system", help="bundled system name or path of a system file")
    p.add_argument("--T", type=str, default="1273", help="synthesis temperature, K")
    p.add_argument("--out", default="hull.png", help="PNG to write (an existing folder: hull.png inside it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_hull)

    p = sub.add_parser("fire", help="fire one recipe; plot phase fractions and temperature")
    p.add_argument("system")
    p.add_argument("--recipe", required=True, help="recipe file (YAML or JSON)")
    p.add_argument("--out", default="fire.png", help="PNG to write (an existing folder: fire.png inside it)")
    p.add_argument("--size-classes", type=int, default=1,
                   help="fire the milled powder as this many particle-size classes (default 1: one size, the "
                        "milling time's median; see synthgap.envs.chemistry.size_classes)")
    p.add_argument("--bed-depth", type=float, default=None, metavar="MM",
                   help="fire the powder as a bed this deep, mm, whose gas must diffuse out (and in); default: "
                        "the furnace's atmosphere reaches every grain (synthgap.envs.chemistry.powder_bed)")
    p.add_argument("--size-spread", type=float, default=None,
                   help="the powder's geometric standard deviation d84/d50, >= 1, with --size-classes "
                        "(default: size_classes.MILLED_GEOMETRIC_SD, an assumption)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fire)

    p = sub.add_parser("pathway", help="free-energy landscape along the reaction paths")
    p.add_argument("system")
    p.add_argument("--target", help="target phase (default: the system's first target)")
    p.add_argument("--T", type=str, default="1273", help="temperature, K")
    p.add_argument("--out", default="path.png", help="PNG to write (an existing folder: path.png inside it)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pathway)

    p = bench.add_parser("chemistry", help="batched against one-at-a-time firing")
    p.add_argument("--n", type=int_arg(1, MAX_BENCH_RECIPES), default=10_000,
                   help=f"recipes in the batch, 1-{MAX_BENCH_RECIPES:,}")
    p.add_argument("--single", type=int_arg(1, MAX_BENCH_RECIPES), default=300, help="recipes fired one at a time")
    p.add_argument("--system", default="BaTiO3")
    p.add_argument("--repeats", type=int_arg(1, MAX_REPEATS), default=5, help=f"1-{MAX_REPEATS}")
    p.add_argument("--size-classes", type=int, default=None,
                   help="particle-size classes of the size-distribution leg (default: "
                        "size_classes.DEFAULT_SIZE_CLASSES)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_chemistry)


def cmd_systems(args) -> int:
    from synthgap.envs.chemistry import bundled_system_names, load_system

    rows = []
    for name in bundled_system_names():
        s = load_system(name)
        rows.append({
            "system": name,
            "elements": list(s.elements),
            "precursors": list(s.precursors),
            "targets": [
                {"phase": t.phase, "property": t.performance.property, "unit": t.performance.unit,
                 "theoretical": t.performance.theoretical, "unobtainium": t.unobtainium,
                 "precursor_sets": [list(x) for x in t.precursor_sets]}
                for t in s.targets.values()
            ],
        })
    lines = [f"{'system':10} {'target':12} {'property':40} {'theoretical':>11}  note"]
    for r in rows:
        for t in r["targets"]:
            note = "unobtainium (0 K-stable, unbuildable)" if t["unobtainium"] else ""
            prop = f"{t['property']} ({t['unit']})" if t["unit"] else t["property"]
            lines.append(f"{r['system']:10} {t['phase']:12} {prop:40} {t['theoretical']:>11g}  {note}")
    return _emit(args, {"systems": rows}, "\n".join(lines))


def _as_written(rxn, left, right):
    """``rxn`` scaled to the user's coefficients when they balance (``2 FeO + 0.5 O2`` from
    ``Fe2O3`` stays so; dG scales with it, crossovers do not), and whether it was."""
    from dataclasses import replace

    given = {f: -c for c, f in left} | {f: c for c, f in right}
    ratios = [given[rxn.phases[n].formula] / c for n, c in rxn.coefficients.items()
              if c != 0 and rxn.phases[n].formula in given]
    if len(ratios) != len(rxn.coefficients) or not all(abs(r / ratios[0] - 1) < 1e-6 for r in ratios):
        return rxn, False
    scale = ratios[0]
    return replace(rxn, coefficients={n: float(f"{c * scale:.12g}") for n, c in rxn.coefficients.items()}), True


def cmd_reaction(args) -> int:
    from synthgap.envs.chemistry import balance, find_phase, load_system
    from synthgap.envs.chemistry.thermo import parse_equation

    T = _temperature(args.T)
    system = load_system(args.system) if args.system is not None else None
    pressures = _pressures(args.p)
    if len(args.equation) > MAX_EQUATION_CHARS:
        raise ValueError(f"reaction: longer than {MAX_EQUATION_CHARS} characters ({len(args.equation):,}): "
                         f"{short(args.equation)}")
    left, right = parse_equation(args.equation)
    reactants = [find_phase(f, system) for _, f in left]
    products = [find_phase(f, system) for _, f in right]
    rxn, as_written = _as_written(balance(reactants, products), left, right)
    for gas in pressures:
        if gas not in rxn.phases or not rxn.phases[gas].is_gas:
            raise ValueError(f"--p {gas}: {gas} is not a gas of this reaction")
    dG = float(rxn.gibbs(T, pressures)) / 1e3
    cross = rxn.crossover_temperatures(pressures)
    payload = {
        "equation": rxn.equation,
        "system": system.name if system is not None else None,
        "T_K": T,
        "pressures_atm": pressures,
        "dG_kJ_per_mol": dG,
        "crossover_K": cross[0] if cross else None,
        "all_crossovers_K": cross,
        "sources": {n: p.sources() for n, p in rxn.phases.items()},
    }
    payload["as_written"] = as_written
    human = [f"{rxn.equation}", f"  dG({T:g} K) = {dG:+.1f} kJ/mol (per the equation as printed)"]
    if not as_written:
        human.insert(1, "  balanced: your coefficients do not balance; dG is per the balanced equation above")
    human.append(f"  changes sign at {cross[0]:.0f} K" if cross else "  no sign change in 300-3000 K")
    return _emit(args, payload, "\n".join(human))


def cmd_hull(args) -> int:
    from synthgap.envs.chemistry import hull_at, load_system

    from .chemistry_plots import plot_hulls

    T = _temperature(args.T)
    system = load_system(args.system)
    h0, hT = hull_at(system, 0.0), hull_at(system, T)
    out = plot_hulls(system, T, _png(args.out, "hull.png"))
    payload = {"system": system.name, "T_K": T, "png": str(out),
               "e_above_hull_0K_eV_per_atom": h0.e_above_hull,
               f"e_above_hull_{T:g}K_eV_per_atom": hT.e_above_hull,
               "stable_0K": h0.stable, "stable_T": hT.stable}
    lines = [f"{'phase':12} {'0 K':>10} {f'{T:g} K':>10}   (meV/atom above hull)"]
    for p in h0.e_above_hull:
        lines.append(f"{p:12} {h0.e_above_hull[p] * 1e3:10.1f} {hT.e_above_hull.get(p, float('nan')) * 1e3:10.1f}")
    payload["estimates"] = _enthalpy_estimates(system)
    for name, est in payload["estimates"].items():
        unstated = " (no uncertainty stated)" if est["uncertainty_eV_per_atom"] is None else ""
        lines.append(f"{name}: enthalpy an estimate, {est['method']}{unstated}")
    lines.append(f"wrote {out}")
    return _emit(args, payload, "\n".join(lines))


def _size_distribution(classes: int, spread: float | None):
    """The powder's :class:`ParticleSizeDistribution` from ``--size-classes`` and ``--size-spread``."""
    from synthgap.envs.chemistry.size_classes import MILLED_GEOMETRIC_SD, ParticleSizeDistribution

    if spread is not None and classes == 1:
        raise ValueError(f"--size-spread {spread:g} needs --size-classes above 1: one class is one size")
    return ParticleSizeDistribution(MILLED_GEOMETRIC_SD if spread is None else spread, classes)


def cmd_fire(args) -> int:
    from synthgap.envs.chemistry import Recipe, load_system, validate_recipe
    from synthgap.envs.chemistry.firing import fire_history

    from .chemistry_plots import plot_firing

    system = load_system(args.system)
    recipe = validate_recipe(system, Recipe.from_file(args.recipe))
    sizes = _size_distribution(args.size_classes, args.size_spread)
    bed = None
    if args.bed_depth is not None:
        from synthgap.envs.chemistry.powder_bed import PowderBed

        bed = PowderBed(depth_mm=args.bed_depth)
    hist = fire_history(system, recipe, sizes, bed)
    powder = ", ".join(([] if sizes.single_size else [f"{sizes.classes} size classes, d84/d50 {sizes.geometric_sd:g}"])
                       + ([] if bed is None else [f"{bed.depth_mm:g} mm powder bed"]))
    out = plot_firing(system, recipe, hist, _png(args.out, "fire.png"), powder)
    f = hist.final
    fractions = {p: float(x) for p, x in zip(f.phases, f.phase_fractions[0], strict=True) if x > 1e-4}
    payload = {"system": system.name, "recipe": recipe.to_dict(), "phase_fractions": fractions,
               "target_fraction": float(f.target_fraction[0]), "grain_size_um": float(f.grain_size[0]),
               "relative_density": None if system.sintering is None else float(f.density[0]),
               "performance": float(f.performance[0]),
               "property": system.targets[recipe.target].performance.property,
               "gas_released_mol": dict(zip(system.gases, f.kinetic.gas_released[0].tolist(), strict=True)),
               "size_classes": sizes.classes, "size_spread": None if sizes.single_size else sizes.geometric_sd,
               "bed_depth_mm": None if bed is None else bed.depth_mm,
               "png": str(out)}
    perf = system.targets[recipe.target].performance
    lines = [f"{recipe.target} from {' + '.join(recipe.precursors)}: "
             f"{recipe.dwell_temperature:g} K for {recipe.dwell_time:g} h in {recipe.atmosphere}"]
    for p, x in sorted(fractions.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {p:12} {x * 100:6.1f} wt%")
    density = "" if system.sintering is None else f", relative density {f.density[0] * 100:.1f} %"
    lines.append(f"  grain size {f.grain_size[0]:.2f} um{density}; {perf.property} {f.performance[0]:.4g} "
                 f"{perf.unit} (theoretical {perf.theoretical:g}, rule {perf.rule.name})")
    if not sizes.single_size:
        lines.append(f"  fired as {sizes.classes} particle-size classes, d84/d50 = {sizes.geometric_sd:g}")
    if bed is not None:
        lines.append(f"  fired as a {bed.depth_mm:g} mm powder bed (its gas diffuses through the bed)")
    lines.append(f"wrote {out}")
    return _emit(args, payload, "\n".join(lines))


def cmd_pathway(args) -> int:
    from synthgap.envs.chemistry import load_system
    from synthgap.envs.chemistry.pathway import pathways

    from .chemistry_plots import plot_pathways

    T = _temperature(args.T)
    if args.target is not None and len(args.target) > MAX_NAME_CHARS:
        raise ValueError(f"--target: longer than {MAX_NAME_CHARS} characters: {short(args.target)}")
    system = load_system(args.system)
    target = args.target or next(iter(system.targets))
    paths = pathways(system, target, T)
    out = plot_pathways(system, target, T, paths, _png(args.out, "path.png"))
    payload = {"system": system.name, "target": target, "T_K": T, "png": str(out), "paths": [
        {"precursors": list(p.precursors), "trap": p.trap, "energies_kJ_per_mol_target": p.energies,
         "steps": [{"equation": s.equation, "product": s.product, "dG_kJ": s.dG, "barrier_kJ_per_mol": s.barrier}
                   for s in p.steps]} for p in paths]}
    # the figure's own test (chemistry_plots.pathway_figure): no path of the network makes it
    payload["forms"] = bool(paths)
    lines = [f"paths to {target} at {T:g} K (kJ per mol {target}):"]
    for p in paths:
        chain = " -> ".join([" + ".join(p.precursors)] + [s.product for s in p.steps])
        lines.append(f"  {chain}: dG = {p.energies[-1]:+.0f}" + (f"  [trap: {p.trap}]" if p.trap else ""))
    if not paths:
        kind = " (an unobtainium candidate)" if system.targets[target].unobtainium else ""
        starts = " or ".join(" + ".join(q) for q in system.targets[target].precursor_sets)
        lines = [f"no path to {target} at {T:g} K: {target}{kind} never forms from {starts}; no reaction of "
                 f"{system.name}'s network makes it (the figure shows what these precursors make instead)"]
    lines.append(f"wrote {out}")
    return _emit(args, payload, "\n".join(lines))


def cmd_bench_chemistry(args) -> int:
    from synthgap.envs.chemistry import fire, load_system, random_recipes
    from synthgap.envs.chemistry.powder_bed import PowderBed
    from synthgap.envs.chemistry.size_classes import DEFAULT_SIZE_CLASSES

    sizes = _size_distribution(DEFAULT_SIZE_CLASSES if args.size_classes is None else args.size_classes, None)
    if sizes.single_size:
        raise ValueError(f"--size-classes {sizes.classes}: the size-distribution leg needs at least 2 classes")
    system = load_system(args.system)
    rng = np.random.default_rng(0)
    batch = random_recipes(system, args.n, rng)
    # the same network with every reaction first-order (the rate law before product-layer
    # diffusion): what the Jander laws cost, measured beside them, in turns
    first_order = replace(system, reactions=tuple(replace(r, law="first-order") for r in system.reactions))
    for s in (system, first_order):
        fire(s, batch)  # warm-up: compile/load kernels, build tables
    fire(system, batch.take(slice(0, 1)), bed=PowderBed())  # and the bed's escape table
    fire(system, batch.take(slice(0, 1)))
    batch_times, first_order_times, size_class_times, bed_times = [], [], [], []
    bed = PowderBed()
    for _ in range(args.repeats):
        for s, times in ((system, batch_times), (first_order, first_order_times)):
            t = time.perf_counter()
            fire(s, batch)
            times.append(time.perf_counter() - t)
        t = time.perf_counter()  # the same batch fired as a milled powder's size classes (what they cost)
        fire(system, batch, sizes=sizes)
        size_class_times.append(time.perf_counter() - t)
        t = time.perf_counter()  # and through a powder bed
        fire(system, batch, bed=bed)
        bed_times.append(time.perf_counter() - t)
    # one at a time, two ways: one-row slices of the arrays (the strict measure: nothing
    # but the firing), and Recipe objects, as a loop `for r in recipes: fire(system, r)`
    # does (the recipe is checked and turned into arrays on each call)
    single_times, recipe_times = [], []
    for i in range(min(args.single, args.n)):
        one = batch.take(slice(i, i + 1))
        recipe = batch.recipe(system, i)
        t = time.perf_counter()
        fire(system, one)
        single_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        fire(system, recipe)
        recipe_times.append(time.perf_counter() - t)
    batch_rate = args.n / statistics.median(batch_times)
    single_rate = 1.0 / statistics.median(single_times)
    recipe_rate = 1.0 / statistics.median(recipe_times)
    first_order_rate = args.n / statistics.median(first_order_times)
    size_class_rate = args.n / statistics.median(size_class_times)
    bed_rate = args.n / statistics.median(bed_times)
    payload = {"system": system.name, "batch_size": args.n, "single_sample": len(single_times),
               "batch_recipes_per_s": batch_rate, "single_recipes_per_s": single_rate,
               "ratio": batch_rate / single_rate, "single_recipe_objects_per_s": recipe_rate,
               "ratio_to_recipe_objects": batch_rate / recipe_rate,
               "first_order_recipes_per_s": first_order_rate, "ratio_to_first_order": batch_rate / first_order_rate,
               "size_classes": sizes.classes, "size_spread": sizes.geometric_sd,
               "size_class_recipes_per_s": size_class_rate, "size_classes_ratio": size_class_rate / batch_rate,
               "bed_depth_mm": bed.depth_mm, "bed_recipes_per_s": bed_rate, "bed_ratio": bed_rate / batch_rate}
    human = (f"{system.name}: batched {batch_rate:,.0f} recipes/s (median of {args.repeats} x {args.n}); "
             f"one at a time {single_rate:,.0f} recipes/s as one-row arrays, {recipe_rate:,.0f} as Recipe "
             f"objects (median of {len(single_times)}); ratio {batch_rate / single_rate:.1f}x and "
             f"{batch_rate / recipe_rate:.1f}x; every law first-order {first_order_rate:,.0f} recipes/s, "
             f"this system's laws at {batch_rate / first_order_rate:.2f}x that; as {sizes.classes} particle-size "
             f"classes {size_class_rate:,.0f} recipes/s, {size_class_rate / batch_rate:.2f}x one size; through a "
             f"{bed.depth_mm:g} mm powder bed {bed_rate:,.0f} recipes/s, {bed_rate / batch_rate:.2f}x the open furnace")
    return _emit(args, payload, human)
