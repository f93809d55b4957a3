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


def _save(fig, out: Path) -> Path:
    """Write a figure as PNG (folders made as needed) and free it."""
    plt = _pyplot()
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
    pts = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for p in pts:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) <= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def join_points(system, T: float) -> tuple[tuple[str, str], dict[str, tuple[float, float]]]:
    """Phase -> (cation fraction of the second cation, grand potential per cation, eV)."""
    cations = [e for e in system.elements if e not in OPEN_ELEMENTS]
    if len(cations) != 2:
        raise ValueError(f"{system.name}: the hull plot needs exactly two cations, found {cations}")
    a, b = cations
    mu = _open_potentials(T)
    out: dict[str, tuple[float, float]] = {a: (0.0, 0.0), b: (1.0, 0.0)}
    for name, p in system.phases.items():
        amounts = p.element_amounts
        n_cat = amounts.get(a, 0.0) + amounts.get(b, 0.0)
        if p.is_gas or n_cat == 0 or (T == 0.0 and "C" in amounts):
            continue  # the 0 K view has no CO2 to balance a carbonate against
        g = p.enthalpy.value if T == 0.0 else float(p.formation_gibbs(T))
        g -= sum(amounts.get(el, 0.0) * mu[el] for el in OPEN_ELEMENTS)
        out[name] = (amounts.get(b, 0.0) / n_cat, g / n_cat / EV_TO_J_PER_MOL)
    return (a, b), out


def plot_hulls(system, T: float, out: Path) -> Path:
    """The 0 K hull beside the hull at ``T`` (K), on the cation join, as a PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    unob = {t.phase for t in system.targets.values() if t.unobtainium}
    targets = {t.phase for t in system.targets.values() if not t.unobtainium}
    for ax, temp, title in ((axes[0], 0.0, "0 K view (enthalpy only)"),
                            (axes[1], T, f"at {T:g} K in air (dG, gases at partial pressure)")):
        (a, b), pts = join_points(system, temp)
        hull = _lower_hull(list(pts.values()))
        ax.plot(*zip(*hull, strict=True), "-", color="#2a7", lw=2, label="convex hull", zorder=1)
        on_hull = set(hull)
        for name, (x, y) in pts.items():
            if name in unob:
                style = dict(marker="*", s=260, color="#d22", zorder=4)
            elif name in targets:
                style = dict(marker="o", s=110, color="#2a7", edgecolor="k", zorder=4)
            else:
                style = dict(marker="o", s=50, color="#36c" if (x, y) in on_hull else "#999", zorder=3)
            ax.scatter([x], [y], **style)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, -14 if name in unob else 6),
                        fontsize=9)
        ax.set_title(title)
        ax.set_xlabel(f"{b} / ({a} + {b})  (cation fraction)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("grand potential per cation, eV  (O, C open to the atmosphere)")
    axes[0].scatter([], [], marker="*", s=150, color="#d22", label="unobtainium candidate")
    axes[0].scatter([], [], marker="o", s=80, color="#2a7", edgecolor="k", label="target")
    axes[0].legend(loc="lower left", fontsize=9)
    fig.suptitle(f"{system.name}: what a 0 K predictor sees, and what the furnace sees")
    return _save(fig, out)


def plot_firing(system, recipe, history, out: Path) -> Path:
    """Phase fractions and temperature against time for one firing, as a PNG."""
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
    ax.set_xlabel("time, h")
    ax.set_ylabel("phase fraction, wt%")
    ax.set_ylim(-2, 102)
    ax2 = ax.twinx()
    temps = np.concatenate([[history.temperature[0]], history.temperature])
    ax2.plot(hours, temps, "k--", lw=1, label="temperature")
    ax2.set_ylabel("temperature, K")
    ax.legend(loc="center right", fontsize=9)
    perf = history.final.performance[0]
    model = system.targets[recipe.target].performance
    ax.set_title(f"{recipe.target} from {' + '.join(recipe.precursors)}: {recipe.dwell_temperature:g} K, "
                 f"{recipe.dwell_time:g} h, {recipe.atmosphere}  ->  {model.property} "
                 f"{perf:.3g} {model.unit} (theoretical {model.theoretical:g})", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, out)


def _molar_mass(formula: str) -> float:
    from pymatgen.core import Composition

    return float(Composition(formula).weight)


def plot_pathways(system, target: str, T: float, paths, out: Path) -> Path:
    """Free-energy landscape along each path: states, barriers, the trap marked (PNG)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labelled: set[tuple[float, int]] = set()
    for k, path in enumerate(paths):
        color = colors[k % len(colors)]
        energies = path.energies
        xs_state = [4.0 * i / len(path.steps) for i in range(len(energies))]
        xs, ys = [], []
        for i, e in enumerate(energies):
            xs += [xs_state[i] - 0.25, xs_state[i] + 0.25]
            ys += [e, e]
            if i == len(path.steps):
                break
            # reactant state -> transition state (state + Ea) -> product state
            top = e + path.steps[i].barrier
            u = np.linspace(0.0, 1.0, 41)
            end_e = energies[i + 1]
            curve = np.where(u < 0.5, e + (top - e) * np.sin(np.pi * u) ** 2,
                             end_e + (top - end_e) * np.sin(np.pi * u) ** 2)
            xs += list(np.linspace(xs_state[i] + 0.25, xs_state[i + 1] - 0.25, u.size))
            ys += list(curve)
            ax.annotate(f"Ea {path.steps[i].barrier:.0f}", ((xs_state[i] + xs_state[i + 1]) / 2, top),
                        textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8, color=color)
        label = " -> ".join([" + ".join(path.precursors)] + [s.product for s in path.steps])
        ax.plot(xs, ys, color=color, lw=2, label=label)
        for i, s in enumerate(path.steps):
            is_trap = path.trap == s.product
            key = (xs_state[i + 1], round(energies[i + 1]))
            if key in labelled and not is_trap:
                continue
            labelled.add(key)
            ax.annotate(s.product + ("\n(kinetic trap)" if is_trap else ""), (xs_state[i + 1], energies[i + 1]),
                        textcoords="offset points", xytext=(0, -28 if is_trap else -16),
                        ha="center", fontsize=9, color="#d22" if is_trap else "k")
    ax.set_xticks([0, 4])
    ax.set_xticklabels(["precursors", target])
    ax.set_xlabel("reaction progress")
    ax.set_ylabel(f"free energy, kJ per mol {target}  (barrier = state + Ea)")
    ax.set_title(f"{system.name}: paths to {target} at {T:g} K in air, from the catalogue's numbers")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return _save(fig, out)
