"""``synthgap validate arrows [FILE.csv]``: predictions against real firings, and the baselines to beat.

For every row of a CSV in the ARROWS3 format (default: the YBCO campaign shipped with
synthgap, ``envs/chemistry/data/arrows-ybco/``) it prints the predicted weight fractions
and the metrics of :mod:`synthgap.agents.phase_validation` (target fraction MAE, mean
Jaccard overlap of the phase sets above 2 wt%, precision and recall of "pure target"),
cross-validated by precursor set and in sample.

The models scored today are two baselines: temperature-only (the training mean of every
phase at each firing temperature) and the 0 K hull (pure target everywhere: the target is
on the hull and every set's reaction to it is downhill). The fitted kinetic model of the
Y-Ba-Cu-O system and the equilibrium assemblage at the firing temperature join this
command as they are built (issue 14); ``models`` in the JSON lists what was scored.
"""

from __future__ import annotations

import argparse
import json
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
    a.add_argument("--json", action="store_true",
                   help='one JSON object: {"rows": [{"experiment", "predicted": {phase: fraction}}], "metrics"}')
    a.set_defaults(func=handler)


def validate_arrows(path=None, target: str | None = None) -> dict:
    """The predictions and metrics ``synthgap validate arrows`` prints (see the module docstring).

    Raises:
        UserFileError: an unreadable or malformed CSV (naming the line and column).
        ValueError: a target no row mentions, or a single precursor set.
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
    models = {"temperature_only": TemperatureMean(), "zero_kelvin_hull": ZeroKelvinHull(target)}
    crossed = {name: leave_one_set_out(firings, fit) for name, fit in models.items()}
    fitted = {name: in_sample(firings, fit) for name, fit in models.items()}
    primary = next(iter(models))
    rows = [{"experiment": f.experiment, "temperature_K": f.temperature_K, "precursors": list(f.precursors),
             "measured": f.phases, "predicted": crossed[primary][i],
             "baselines": {name: crossed[name][i] for name in models if name != primary}}
            for i, f in enumerate(firings)]
    metrics = {name: {"cross_validated_by_precursor_set": score(firings, crossed[name], target),
                      "in_sample": score(firings, fitted[name], target)} for name in models}
    return {"file": str(path if path is not None else ARROWS_YBCO), "target": target, "models": list(models),
            "predicted_by": primary, "precursor_sets": len({f.precursor_set for f in firings}),
            "rows": rows, "metrics": metrics}


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
    fig.suptitle(f"{len(rows)} firings, {result['precursor_sets']} precursor sets", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def handler(args: argparse.Namespace) -> int:
    """Print :func:`validate_arrows` as a table (or ``--json``)."""
    if args.out is not None:
        from .chemistry_cli import _png

        out = _png(args.out, "validate_arrows.png")
    result = validate_arrows(args.csv, args.target)
    if args.out is not None:
        result["figure"] = str(plot_predicted_vs_measured(result, out))
    if args.json:
        print(json.dumps(result, allow_nan=False))
        return 0

    def cell(v) -> str:
        return "-" if v is None else f"{v:.3f}"

    print(f"{result['file']}: {len(result['rows'])} firings, {result['precursor_sets']} precursor sets, "
          f"target {result['target']}")
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
