"""``synthgap validate arrows [FILE.csv]``: predictions against real firings, and the baselines to beat.

For every row of a CSV in the ARROWS3 format (default: the YBCO campaign shipped with
synthgap, ``envs/chemistry/data/arrows-ybco/``) it prints the predicted weight fractions
and the metrics of :mod:`synthgap.agents.phase_validation` (target fraction MAE, mean
Jaccard overlap of the phase sets above 2 wt%, precision and recall of "pure target"),
cross-validated by precursor set and in sample.

The models (``models`` in the JSON lists what was scored, the first gives ``predicted``):

- ``fitted_kinetics``: the Y-Ba-Cu-O system (``envs/chemistry/data/arrows-ybco/``) with
  every reaction's Ea and A fitted to the training firings
  (:class:`synthgap.agents.arrows_models.FittedKinetics`), fired with the assumed protocol
  (``--ramp-rate``, ``--dwell-time``; the log gives only the temperature);
- ``temperature_only``: the training mean of every phase at each firing temperature;
- ``equilibrium_at_T``: the assemblage of lowest Gibbs energy at the firing temperature in
  air, from the system's tables;
- ``zero_kelvin_hull``: pure target everywhere (the target is on the hull and every set's
  reaction to it is downhill).

The two models built on the system are scored when every precursor of the CSV is one of
the system's (``--baselines-only`` skips them: the fit takes about 6 s per precursor set).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["add_parsers", "validate_arrows"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` (``validate arrows``) to the CLI root's subparsers."""
    p = subparsers.add_parser("validate", help="score predictions against real experiments")
    sub = p.add_subparsers(dest="validate_command", metavar="DATA")
    sub.required = True
    a = sub.add_parser("arrows", help="firings with XRD weight fractions in the ARROWS3 CSV format",
                       description=__doc__.split("\n\n")[0])
    a.add_argument("csv", nargs="?", default=None,
                   help="CSV with experiment,temperature_C,precursors,products,weight_fractions "
                        "(default: the ARROWS3 YBCO campaign shipped with synthgap)")
    a.add_argument("--target", default=None, help="the target phase (default Ba2YCu3O7, the campaign's)")
    a.add_argument("--out", default=None, metavar="PNG",
                   help="also plot predicted against measured target fraction (cross-validated), one panel per model")
    a.add_argument("--baselines-only", action="store_true",
                   help="score only the temperature-only and 0 K baselines (no fit)")
    a.add_argument("--dwell-time", type=float, default=4.0, metavar="H",
                   help="assumed hold at the firing temperature, h (default 4; the log does not say)")
    a.add_argument("--ramp-rate", type=float, default=10.0, metavar="K_PER_MIN",
                   help="assumed heating and cooling rate, K/min (default 10)")
    a.add_argument("--json", action="store_true",
                   help='one JSON object: {"rows": [{"experiment", "predicted": {phase: fraction}}], "metrics"}')
    a.set_defaults(func=handler)


def validate_arrows(path=None, target: str | None = None, baselines_only: bool = False,
                    dwell_time: float = 4.0, ramp_rate: float = 10.0, progress=None) -> dict:
    """The predictions and metrics ``synthgap validate arrows`` prints (see the module docstring).

    Args:
        dwell_time: assumed hold, h; ramp_rate: assumed heating and cooling rate, K/min.
        progress: called with a line of text as each cross-validation fit starts (or None).

    Raises:
        UserFileError: an unreadable or malformed CSV (naming the line and column).
        ValueError: a target no row mentions, a single precursor set, or a protocol out of
            the recipe limits.
    """
    from synthgap.agents.phase_validation import (
        TemperatureMean,
        ZeroKelvinHull,
        in_sample,
        leave_one_set_out,
        score,
    )
    from synthgap.envs.chemistry.observed import ARROWS_YBCO, ARROWS_YBCO_TARGET, read_firings

    firings = read_firings(path if path is not None else ARROWS_YBCO)
    target = target or ARROWS_YBCO_TARGET
    if not any(target in f.phases for f in firings):
        phases = sorted({p for f in firings for p in f.phases})
        raise ValueError(f"--target {target}: no firing of the file made it; phases found: {', '.join(phases)}")
    models: dict = {}
    skipped = None
    if not baselines_only:
        skipped = _system_models(models, firings, target, dwell_time, ramp_rate, progress)
    models.update({"temperature_only": TemperatureMean(), "zero_kelvin_hull": ZeroKelvinHull(target)})
    if "fitted_kinetics" in models:
        models["equilibrium_at_T"] = models.pop("equilibrium_at_T")
    crossed = {name: leave_one_set_out(firings, fit) for name, fit in models.items()}
    fitted = {name: in_sample(firings, fit) for name, fit in models.items()}
    primary = next(iter(models))
    rows = [{"experiment": f.experiment, "temperature_K": f.temperature_K, "precursors": list(f.precursors),
             "measured": f.phases, "predicted": crossed[primary][i],
             "baselines": {name: crossed[name][i] for name in models if name != primary}}
            for i, f in enumerate(firings)]
    metrics = {name: {"cross_validated_by_precursor_set": score(firings, crossed[name], target),
                      "in_sample": score(firings, fitted[name], target)} for name in models}
    out = {"file": str(path if path is not None else ARROWS_YBCO), "target": target, "models": list(models),
            "predicted_by": primary, "precursor_sets": len({f.precursor_set for f in firings}),
            "rows": rows, "metrics": metrics}
    if "fitted_kinetics" in models:
        p = models["fitted_kinetics"].protocol
        out["protocol"] = {"ramp_rate_K_per_min": p.ramp_rate, "dwell_time_h": p.dwell_time,
                           "cooling_rate_K_per_min": p.cooling_rate, "milling_time_h": p.milling_time,
                           "atmosphere": "air", "assumed": True}
    if skipped:
        out["not_scored"] = skipped
    return out


def _system_models(models: dict, firings, target: str, dwell_time: float, ramp_rate: float, progress) -> str | None:
    """Add the fitted kinetic model (first) and the equilibrium baseline, if the system covers
    the CSV; else return why not."""
    from synthgap.agents.arrows_models import (
        EquilibriumAtT,
        FiringProtocol,
        FittedKinetics,
        campaign_names,
        ybco_system,
    )
    from synthgap.envs.chemistry.limits import RECIPE_LIMITS
    from synthgap.envs.chemistry.observed import ARROWS_YBCO_TARGET

    for field, value in (("dwell_time", dwell_time), ("ramp_rate", ramp_rate)):
        b = RECIPE_LIMITS[field]
        if not b.low <= value <= b.high:
            raise ValueError(f"--{field.replace('_', '-')} {value:g}: must be within {b.low:g}-{b.high:g} {b.unit}")
    system = ybco_system()
    names = campaign_names(system, [p for f in firings for p in f.precursors])
    unknown = sorted({p for f in firings for p in f.precursors if p not in names})
    sets = {frozenset(s) for s in system.targets[next(iter(system.targets))].precursor_sets}
    if unknown:
        return f"the {system.name} system has no precursor {', '.join(unknown)}"
    if target not in (ARROWS_YBCO_TARGET, *system.targets):
        return (f"the {system.name} system's target is {', '.join(system.targets)} "
                f"(the campaign's {ARROWS_YBCO_TARGET}), not {target}")
    outside = sorted({" + ".join(f.precursors) for f in firings
                      if frozenset(names[p] for p in f.precursors) not in sets})
    if outside:
        return f"precursor sets not in the {system.name} system file: {'; '.join(outside)}"
    fit = FittedKinetics(target=target, protocol=FiringProtocol(ramp_rate, dwell_time, ramp_rate))
    total = len({f.precursor_set for f in firings}) + 1  # one fit per held-out set, one in sample
    models["fitted_kinetics"] = _Announced(fit, progress, total)
    models["equilibrium_at_T"] = EquilibriumAtT(target=target)
    return None


@dataclass
class _Announced:
    """A model's fit that says, before each fit, which one of ``total`` it is."""

    fit: object
    progress: object
    total: int
    calls: int = 0

    @property
    def protocol(self):
        return self.fit.protocol

    def __call__(self, train):
        self.calls += 1
        if self.progress is not None:
            self.progress(f"fitting the kinetic model {self.calls}/{self.total} on {len(train)} firings")
        return self.fit(train)


def plot_predicted_vs_measured(result: dict, path) -> Path:
    """Predicted (cross-validated by precursor set) against measured target weight fraction,
    one panel per model, coloured by firing temperature; the diagonal is a perfect model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models, target, rows = result["models"], result["target"], result["rows"]
    measured = np.array([r["measured"].get(target, 0.0) for r in rows])
    temps = np.array([r["temperature_K"] for r in rows])
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.6), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[0], models, strict=True):
        predicted = np.array([(r["predicted"] if name == result["predicted_by"] else r["baselines"][name])
                              .get(target, 0.0) for r in rows])
        m = result["metrics"][name]["cross_validated_by_precursor_set"]
        sc = ax.scatter(measured, predicted, c=temps - 273.15, cmap="plasma", s=28, edgecolors="k", linewidths=0.3)
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="predicted = measured")
        ax.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), aspect="equal",
               xlabel=f"measured {target}, weight fraction (XRD)",
               title=f"{name.replace('_', ' ')}\ntarget MAE {m['target_mae']:.3f}, Jaccard {m['jaccard']:.2f}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"predicted {target}, weight fraction\n(cross-validated by precursor set)")
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.colorbar(sc, ax=axes[0].tolist(), label="firing temperature, degC", shrink=0.85)
    fig.suptitle(f"{len(rows)} firings, {result['precursor_sets']} precursor sets", fontsize=10, y=1.07)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def handler(args: argparse.Namespace) -> int:
    """Print :func:`validate_arrows` as a table (or ``--json``)."""
    if args.out is not None:
        from .chemistry_cli import _png

        out = _png(args.out, "validate_arrows.png")
    import sys

    result = validate_arrows(args.csv, args.target, args.baselines_only, args.dwell_time, args.ramp_rate,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    if args.out is not None:
        result["figure"] = str(plot_predicted_vs_measured(result, out))
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0

    def cell(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(f"{result['file']}: {len(result['rows'])} firings, {result['precursor_sets']} precursor sets, "
          f"target {result['target']}")
    if "protocol" in result:
        p = result["protocol"]
        print(f"assumed protocol (the log gives only the temperature): {p['ramp_rate_K_per_min']:g} K/min up and "
              f"down, {p['dwell_time_h']:g} h hold, in air, hand-mixed")
    if "not_scored" in result:
        print(f"fitted kinetics and equilibrium not scored: {result['not_scored']}")
    print(f"{'model':<18} {'fit':<32} {'target MAE':>10} {'Jaccard':>8} {'pure prec.':>10} {'pure recall':>11}")
    for name, by_fit in result["metrics"].items():
        for how, m in by_fit.items():
            print(f"{name:<18} {how.replace('_', ' '):<32} {cell(m['target_mae']):>10} {cell(m['jaccard']):>8} "
                  f"{cell(m['pure_precision']):>10} {cell(m['pure_recall']):>11}")
    observed = next(iter(result["metrics"].values()))["in_sample"]["pure_observed"]
    print(f"target MAE: weight fraction; Jaccard: phase sets above 2 wt%; pure: only the target above 2 wt% "
          f"({observed} pure firings observed); cross-validated: each precursor set predicted by the model "
          "fitted on the others")
    return 0
