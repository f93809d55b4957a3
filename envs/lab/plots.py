"""PNG plots of a lab campaign (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_gantt", "plot_furnace_traces", "plot_queues"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_gantt(usage, path: str | Path, max_hours: float = 72.0) -> Path:
    """Instrument use over the first ``max_hours`` h: one row per instrument."""
    plt = _plt()
    units = sorted({u for _, u, _, _, _ in usage})
    fig, ax = plt.subplots(figsize=(11, 0.35 * len(units) + 1.5))
    colours = {"robot": "C0", "balance": "C1", "mill": "C2", "press": "C3", "furnace": "C4",
               "xrd": "C5", "property": "C6"}
    for s, u, job, a, b in usage:
        if a / 3600 > max_hours:
            continue
        c = "black" if job == "repair" else colours.get(s, "grey")
        ax.broken_barh([(a / 3600, max((b - a) / 3600, 0.02))], (units.index(u) - 0.4, 0.8),
                       facecolor=c, edgecolor="white", linewidth=0.3)
    ax.set_yticks(range(len(units)), units)
    ax.set_xlim(0, max_hours)
    ax.set_xlabel("lab time (h)")
    ax.set_title(f"Instrument use, first {max_hours:g} h (black: furnace repair)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_furnace_traces(firings, truth_offsets, path: str | Path, per_furnace: int = 1) -> Path:
    """Setpoint, logged thermocouple and the band setpoint - offset +- 2 drift sd, per furnace."""
    plt = _plt()
    furnaces = sorted({f.furnace for f in firings})
    fig, axes = plt.subplots(len(furnaces), 1, figsize=(10, 2.6 * len(furnaces)), squeeze=False)
    for ax, fu in zip(axes[:, 0], furnaces, strict=True):
        logs = [f for f in firings if f.furnace == fu and f.kind == "sample" and f.status == "ok"]
        for log in logs[:per_furnace]:
            t = log.time_s / 3600
            off, sd = truth_offsets[log.firing_id]
            ax.plot(t, log.setpoint_K, "k--", lw=1, label="setpoint")
            ax.plot(t, log.thermocouple_K, "C0", lw=1, label="thermocouple (logged)")
            ax.fill_between(t, log.setpoint_K - off - 2 * sd, log.setpoint_K - off + 2 * sd,
                            color="C3", alpha=0.3,
                            label=f"sample: setpoint - offset ({off:+.1f} K) ± 2 drift sd")
            ax.set_title(f"furnace-{fu}, firing {log.firing_id}", fontsize=9)
        ax.set_ylabel("T (K)")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time since programme start (h)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_queues(queue_log, path: str | Path) -> Path:
    """Queue length (waiting jobs) of each station over lab time (step plot)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4))
    stations = sorted({s for _, s, _ in queue_log})
    for s in stations:
        pts = [(t, n) for t, st, n in queue_log if st == s]
        t = np.array([p[0] for p in pts]) / 3600
        n = np.array([p[1] for p in pts])
        ax.step(t, n, where="post", label=s, lw=1)
    ax.set_xlabel("lab time (h)")
    ax.set_ylabel("jobs waiting")
    ax.set_title("Queue lengths")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
