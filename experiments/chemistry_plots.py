"""Plots of the chemistry world: hulls, firing histories, reaction pathways (PNG).

The hull plot is drawn on the join between the system's two cations with oxygen and
carbon open to the furnace atmosphere (grand potential per cation, eV): that is how a
chemist reads a hull of oxides and carbonates in air. The 0 K view uses enthalpies with
O2 and CO2 at their standard enthalpies; the view at T uses dfG(T) with O2 and CO2 at
the partial pressures of air.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthgap.envs.chemistry.tables import EV_TO_J_PER_MOL, R_GAS, gas_formation_gibbs_table

OPEN_ELEMENTS = ("O", "C", "H")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, layout: bool = True) -> Path:
    """Write a figure as PNG (folders made as needed) and free it; ``layout=False`` when
    the figure was laid out before its labels were placed."""
    plt = _pyplot()
    if layout:
        fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _open_potentials(T: float) -> dict[str, float]:
    """Chemical potentials of O and C, J/mol, in air at T (0: the 0 K enthalpy view)."""
    from synthgap.envs.chemistry.hull import DEFAULT_PRESSURES

    grid, values, _ = gas_formation_gibbs_table("CO2")
    if T == 0.0:
        return {"O": 0.0, "C": values[0], "H": 0.0}
    mu_o = 0.5 * R_GAS * T * np.log(DEFAULT_PRESSURES["O2"])
    mu_co2 = float(np.interp(T, grid, values)) + R_GAS * T * np.log(DEFAULT_PRESSURES["CO2"])
    return {"O": mu_o, "C": mu_co2 - 2 * mu_o, "H": 0.0}


def _lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lower convex hull of (x, y) points, left to right; of points at one x only the lowest."""
    lowest: dict[float, float] = {}
    for x, y in points:
        lowest[x] = min(y, lowest.get(x, np.inf))
    hull: list[tuple[float, float]] = []
    for p in sorted(lowest.items()):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def join_points(system, T: float) -> tuple[tuple[str, str], dict[str, tuple[float, float]]]:
    """Phase -> (cation fraction of the second cation, grand potential per cation, eV).

    Only the system's phases: an element is no end-member of the join unless the system
    lists it as a phase (a metal is no stable phase in air).
    """
    cations = [e for e in system.elements if e not in OPEN_ELEMENTS]
    if len(cations) != 2:
        raise ValueError(f"{system.name}: the hull plot needs exactly two cations, found {cations}")
    a, b = cations
    mu = _open_potentials(T)
    out: dict[str, tuple[float, float]] = {}
    for name, p in system.phases.items():
        amounts = p.element_amounts
        n_cat = amounts.get(a, 0.0) + amounts.get(b, 0.0)
        if p.is_gas or n_cat == 0 or (T == 0.0 and "C" in amounts):
            continue  # the 0 K view has no CO2 to balance a carbonate against
        g = p.enthalpy.value if T == 0.0 else float(p.formation_gibbs(T))
        g -= sum(amounts.get(el, 0.0) * mu[el] for el in OPEN_ELEMENTS)
        out[name] = (amounts.get(b, 0.0) / n_cat, g / n_cat / EV_TO_J_PER_MOL)
    return (a, b), out


def _height_fraction(fig, artist) -> float:
    """The height of ``artist`` (e.g. a legend below the axes) as a fraction of the figure's."""
    from synthgap.envs.lab.plots import renderer_of

    return artist.get_window_extent(renderer_of(fig)).height / fig.bbox.height + 0.01


ON_HULL, ABOVE_HULL = "#2b5fc4", "#9a9a9a"


def _hull_panel(ax, system, temp: float, roles: dict[str, str]) -> tuple[list, bool]:
    """One panel; returns its label specs and whether a phase is on the table's hull but
    above this panel's line (stable only at another O potential)."""
    from synthgap.envs.chemistry import hull_at

    view = hull_at(system, temp)  # the `synthgap hull` table's owner of "on the hull"
    stable = set(view.stable)
    (a, b), pts = join_points(system, temp)
    hull = _lower_hull(list(pts.values()))
    ax.plot(*zip(*hull, strict=True), "-", color="#2a7", lw=2, zorder=1)
    on_line = set(hull)
    labels, marks, elsewhere = [], [], False
    order = sorted(pts, key=lambda n: (roles.get(n) is None, pts[n][0]))
    for name in order:
        x, y = pts[name]
        colour = ON_HULL if name in stable else ABOVE_HULL
        role = roles.get(name)
        if role == "unobtainium":
            ax.scatter([x], [y], marker="*", s=300, color=colour, edgecolor="#d22", linewidth=1.5, zorder=4)
            r = 10
        elif role == "target":
            ax.scatter([x], [y], marker="o", s=130, color=colour, edgecolor="k", linewidth=1.5, zorder=4)
            r = 7
        else:
            ax.scatter([x], [y], marker="o", s=50, color=colour, zorder=3)
            r = 4.5
        text = name
        if name not in stable:
            text += f" (+{view.e_above_hull[name] * 1e3:.0f} meV/atom)"
        elif (x, y) not in on_line:
            text += "*"
            elsewhere = True
        labels.append((text, (x, y), {}))
        marks.append(((x, y), r))
    ax.set_xlabel(f"{b} / ({a} + {b}), cation fraction")
    ax.set_xlim(-0.08, 1.08)
    ax.grid(alpha=0.3)
    return [labels, marks, hull], elsewhere


def plot_hulls(system, T: float, out: Path) -> Path:
    """The 0 K hull beside the hull at ``T`` (K), on the cation join, as a PNG
    (:func:`hull_figure`)."""
    return _save(hull_figure(system, T), out, layout=False)


def hull_figure(system, T: float):
    """The 0 K hull beside the hull at ``T`` (K), on the cation join (a pyplot Figure).

    A mark is blue when the ``synthgap hull`` table puts the phase on the hull (0 meV/atom,
    :func:`synthgap.envs.chemistry.hull_at`), grey otherwise (its label gives meV/atom).
    """
    from matplotlib.lines import Line2D

    from synthgap.envs.lab.plots import place_labels

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    roles = {t.phase: "unobtainium" if t.unobtainium else "target" for t in system.targets.values()}
    panels, elsewhere = [], False
    for ax, temp, title in ((axes[0], 0.0, "0 K view (enthalpies; no carbonates: no CO2 at 0 K)"),
                            (axes[1], T, f"{T:g} K in air (dfG(T), gases at air's partial pressures)")):
        spec, other = _hull_panel(ax, system, temp, roles)
        panels.append(spec)
        elsewhere |= other
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("grand potential per cation, eV\n(O and C open to the atmosphere)")
    handles = [Line2D([], [], color="#2a7", lw=2, label="lower hull of the points drawn"),
               Line2D([], [], ls="", marker="o", color=ON_HULL, label="on the hull (0 meV/atom in the hull table)"),
               Line2D([], [], ls="", marker="o", color=ABOVE_HULL, label="above the hull (meV/atom in its label)"),
               Line2D([], [], ls="", marker="o", ms=10, mfc="white", mec="k", mew=1.5, label="target")]
    if "unobtainium" in roles.values():
        handles.append(Line2D([], [], ls="", marker="*", ms=14, mfc="white", mec="#d22", mew=1.5,
                              label="unobtainium candidate"))
    if elsewhere:
        handles.append(Line2D([], [], ls="", label="* on the hull at another O potential, not at this one"))
    legend = fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(f"{system.name}: what a 0 K predictor sees, and what the furnace sees")
    fig.tight_layout(rect=(0, _height_fraction(fig, legend), 1, 1))
    for ax, (labels, marks, hull) in zip(axes, panels, strict=True):
        place_labels(ax, labels, marks, [tuple(zip(*hull, strict=True))])
    return fig


def plot_firing(system, recipe, history, out: Path, powder: str = "") -> Path:
    """Phase fractions and temperature against time for one firing, as a PNG (``powder``:
    how the powder was fired, if not as one size in the open furnace, for the title)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    hours = np.concatenate([[0.0], history.time / 3600.0])
    shown = [i for i in range(len(history.phases)) if history.phase_fractions[:, i].max() > 0.01]
    mass0 = history.final.initial[0] * np.array(
        [_molar_mass(system.phases[p].formula) for p in history.phases])
    start = mass0 / mass0.sum()
    stack = np.vstack([start[None, :], history.phase_fractions])
    for i in shown:
        lw = 3 if history.phases[i] == recipe.target else 1.8
        ax.plot(hours, stack[:, i] * 100, lw=lw, label=history.phases[i])
    if system.sintering is not None:  # the sintering stage: relative density on the same 0-100 scale
        rho = np.concatenate([[system.sintering.green_density], history.density])
        ax.plot(hours, rho * 100, color="0.4", ls=":", lw=2.2, label="relative density, %")
    ax.set_xlabel("time, h")
    ax.set_ylabel("phase fraction, wt% (density, % of theoretical)")
    ax.set_ylim(-2, 102)
    ax2 = ax.twinx()
    temps = np.concatenate([[history.temperature[0]], history.temperature])
    ax2.plot(hours, temps, "k--", lw=1, label="sample temperature, K (right axis)")
    ax2.set_ylabel("temperature, K")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    legend = fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=9, frameon=False)
    perf = history.final.performance[0]
    model = system.targets[recipe.target].performance
    ax.set_title(f"{recipe.target} from {' + '.join(recipe.precursors)}: {recipe.dwell_temperature:g} K, "
                 f"{recipe.dwell_time:g} h, {recipe.atmosphere}  ->  {model.property} "
                 f"{perf:.3g} {model.unit} (theoretical {model.theoretical:g})\n"
                 f"grain size {history.final.grain_size[0]:.2g} um"
                 + (f", relative density {history.final.density[0] * 100:.1f} %"
                    if system.sintering is not None else "") + (f"; {powder}" if powder else ""), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, _height_fraction(fig, legend), 1, 1))  # the legend below, off the curves
    return _save(fig, out, layout=False)


def _molar_mass(formula: str) -> float:
    from pymatgen.core import Composition

    return float(Composition(formula).weight)


def _coefficient(c: float) -> str:
    return "" if abs(c - 1.0) < 1e-6 else f"{c:.2g} "


def _state_labels(system, path) -> list[str]:
    """What each state after the precursors holds, per mol of the path's target: the
    step's product, then solid by-products and the gases released so far (``(g)``)."""
    specs = {spec.reaction.equation: spec for spec in system.reactions}
    steps = [specs[st.equation].reaction.coefficients for st in path.steps]
    net: dict[str, float] = {}
    out = []
    for st, coeffs, ext in zip(path.steps, steps, path.extents, strict=True):  # extents per mol of target
        for name, c in coeffs.items():
            net[name] = net.get(name, 0.0) + c * ext
        extra = [f"{_coefficient(n)}{k}" + ("(g)" if system.phases[k].is_gas else "")
                 for k, n in sorted(net.items(), key=lambda kv: (system.phases[kv[0]].is_gas, kv[0]))
                 if n > 1e-9 and k != st.product]
        out.append(" + ".join([f"{_coefficient(net[st.product])}{st.product}", *extra]))
    return out


def _barrier_curve(x0: float, x1: float, e0: float, e1: float, top: float) -> tuple[np.ndarray, np.ndarray]:
    """State e0 at x0 -> transition state ``top`` -> state e1 at x1 (a smooth hump)."""
    u = np.linspace(0.0, 1.0, 41)
    ys = np.where(u < 0.5, e0 + (top - e0) * np.sin(np.pi * u) ** 2, e1 + (top - e1) * np.sin(np.pi * u) ** 2)
    return np.linspace(x0, x1, u.size), ys


def plot_pathways(system, target: str, T: float, paths, out: Path) -> Path:
    """Free-energy landscape along each path, as a PNG (:func:`pathway_figure`)."""
    return _save(pathway_figure(system, target, T, paths), out, layout=False)


def pathway_figure(system, target: str, T: float, paths):
    """Free-energy landscape along each path: states (with by-products), barriers, traps.

    When no path of the network makes ``target`` (an unobtainium candidate), the figure shows
    what the same precursors make instead, under a note that the target never forms.

    Raises:
        ValueError: no path makes ``target`` and no other target shares its precursors.
    """
    from matplotlib.lines import Line2D

    from synthgap.envs.chemistry.pathway import pathways
    from synthgap.envs.lab.plots import place_labels

    shown, note = target, None
    if not paths:
        pre = set(system.targets[target].precursor_sets)
        for other in system.targets:
            alt = [q for q in pathways(system, other, T) if q.precursors in pre] if other != target else []
            if alt:
                shown, paths = other, alt
                break
        else:
            raise ValueError(f"no reaction of {system.name}'s network forms {target} at {T:g} K, and its "
                             "precursors make no other target: there is no pathway to draw")
        kind = " (an unobtainium candidate)" if system.targets[target].unobtainium else ""
        starts = " or ".join(" + ".join(q) for q in dict.fromkeys(q.precursors for q in paths))
        note = (f"{target}{kind} never forms: no reaction of the network makes it.\n"
                f"Drawn instead: the paths its precursors {starts} take, to {shown}.")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 6.4 + 0.22 * len(paths)))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    states: dict[tuple[str, float, int], str] = {}  # one label per (text, x, kJ): never repeated
    barriers: list[tuple[str, tuple[float, float], dict]] = []
    handles, curves, marks = [], [], []
    for k, path in enumerate(paths):
        colour = colours[k % len(colours)]
        energies = path.energies
        xs_state = [4.0 * i / len(path.steps) for i in range(len(energies))]
        names = _state_labels(system, path)
        xs, ys = [], []
        for i, e in enumerate(energies):
            xs += [xs_state[i] - 0.25, xs_state[i] + 0.25]
            ys += [e, e]
            if i == len(path.steps):
                break
            top = e + path.steps[i].barrier
            cx, cy = _barrier_curve(xs_state[i] + 0.25, xs_state[i + 1] - 0.25, e, energies[i + 1], top)
            xs += list(cx)
            ys += list(cy)
            barriers.append((f"Ea {path.steps[i].barrier:.0f}", ((xs_state[i] + xs_state[i + 1]) / 2, top),
                             {"color": colour}))
            trap = path.trap == path.steps[i].product
            states.setdefault((names[i] + ("  (kinetic trap)" if trap else ""), xs_state[i + 1],
                               round(energies[i + 1])), "#d22" if trap else "k")
        ax.plot(xs, ys, color=colour, lw=2)
        curves.append((xs, ys))
        gases = sorted({g for g in names[-1].split(" + ") if g.endswith("(g)")})
        route = " -> ".join([" + ".join(path.precursors)] + [st.product for st in path.steps])
        handles.append(Line2D([], [], color=colour, lw=2, label=f"{route}: dG {energies[-1]:+.0f} kJ/mol"
                              + (f" ({', '.join(g[:-3].split()[-1] for g in gases)} released)" if gases else "")))
    ax.set_xticks([0, 2, 4], ["precursors", "intermediates", "products"])
    if any(p.trap for p in paths):
        handles.append(Line2D([], [], ls="none", marker="s", color="#d22",
                              label="red state label: a kinetic trap (it holds most of the path's driving force "
                                    "spent, and leaving it costs a higher barrier than entering it)"))
    ax.set_xlim(-0.5, 5.7)
    ax.set_xlabel("reaction progress")
    ax.set_ylabel(f"free energy, kJ per mol {shown}\n(a peak is its state + Ea, kJ/mol)")
    lo = min(min(c[1]) for c in curves)
    hi = max(max(c[1]) for c in curves)
    ax.set_ylim(lo - 0.12 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.grid(alpha=0.3)
    title = f"{system.name}: paths to {shown} at {T:g} K in air, from the catalogue's numbers"
    if note:
        title = f"{system.name}: no path to {target} at {T:g} K in air\n{note}"
    ax.set_title(title, fontsize=10, color="#b00" if note else "k")
    legend = fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=8, frameon=False,
                        title="paths (dG: per mol of the product, gases at air's partial pressures)",
                        title_fontsize=8)
    fig.tight_layout(rect=(0, _height_fraction(fig, legend), 1, 1))
    labels = [(text, (x + (0.25 if x > 3.5 else 0.0), e), {"color": c}) for (text, x, e), c in states.items()]
    place_labels(ax, labels + barriers, marks, curves, fontsize=8)
    return fig
