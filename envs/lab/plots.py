"""PNG plots of a lab campaign (matplotlib, Agg backend, imported lazily), and
:func:`place_labels`, the label placer every figure of the package uses (the lowest layer
that draws: chemistry and benchmark figures import it from here).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["plot_gantt", "gantt_figure", "plot_furnace_traces", "furnace_traces_figure", "plot_queues",
           "place_labels", "renderer_of"]

#: candidate label directions (degrees, counter-clockwise from east), tried in this order
_ANGLES = (45, 0, 90, 315, 270, 135, 180, 225, 22, 67, 112, 157, 202, 247, 292, 337)
#: candidate distances from the point, points (a leader line from the second one on)
_RADII = (5, 11, 18, 26, 36, 48, 62)
_PAD_PX = 2.0  # clearance between two labels, or a label and a mark, pixels


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def renderer_of(fig):
    """The Agg renderer of ``fig`` after a draw (attaching an Agg canvas to a bare Figure)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(box: tuple, others: np.ndarray) -> float:
    """Total overlap area (px^2) of a box ``(x0, y0, x1, y1)`` with boxes ``others`` (n, 4)."""
    if not len(others):
        return 0.0
    w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return float(np.sum(np.clip(w, 0, None) * np.clip(h, 0, None)))


def _nearer_mark(box: tuple, own: tuple[float, float], centres: np.ndarray) -> bool:
    """True when another mark's centre is nearer the box than ``own`` (px)."""
    def gap(c):
        dx = np.maximum(np.maximum(box[0] - c[..., 0], c[..., 0] - box[2]), 0)
        dy = np.maximum(np.maximum(box[1] - c[..., 1], c[..., 1] - box[3]), 0)
        return np.hypot(dx, dy)

    others = centres[np.hypot(*(centres - own).T) > 0.5] if len(centres) else centres
    return bool(len(others)) and bool(np.min(gap(others)) < gap(np.asarray(own)))


def place_labels(ax, labels, marks=(), lines=(), fontsize: float = 9.0) -> list:
    """Annotate points so that no label overlaps another label, a mark or a line.

    Each label is tried at growing distances and all around its point (a grey leader line
    once it stands off); the first place clear of the labels already placed, of every mark
    and of every line, and inside the axes, wins (else the least-overlapping place). Labels
    stay out of the layout engine, so lay the figure out before calling this.

    Args:
        ax: the Axes (its figure is drawn once to measure text).
        labels: ``(text, (x, y) data, style dict for annotate)`` in priority order.
        marks: ``((x, y) data, radius in points)`` of markers to keep clear.
        lines: ``(xs, ys)`` data polylines to keep clear.

    Returns:
        the Annotation objects, in the order given.
    """
    fig = ax.figure
    renderer = renderer_of(fig)
    px = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    obstacles = []
    centres = np.array([to_px(xy) for xy, _ in marks], dtype=float).reshape(-1, 2)
    for (x, y), r in marks:
        cx, cy = to_px((x, y))
        obstacles.append((cx - r * px, cy - r * px, cx + r * px, cy + r * px))
    for xs, ys in lines:  # a line is a chain of 2 px boxes, one every 4 px along it
        pts = to_px(np.column_stack([xs, ys]))
        for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:], strict=True):
            u = np.linspace(0.0, 1.0, max(1, int(math.hypot(x1 - x0, y1 - y0) // 4)) + 1)
            obstacles += [(x - 1, y - 1, x + 1, y + 1) for x, y in zip(x0 + u * (x1 - x0), y0 + u * (y1 - y0),
                                                                        strict=True)]
    obstacles = np.array(obstacles, dtype=float).reshape(-1, 4)
    placed: list[tuple] = []
    out = []
    for text, (x, y), style in labels:
        probe = ax.text(0, 0, text, fontsize=fontsize, ha="center", va="center", **style)
        box = probe.get_window_extent(renderer)
        probe.remove()
        w, h = box.width + 2 * _PAD_PX, box.height + 2 * _PAD_PX
        cx, cy = to_px((x, y))
        best = None
        for r in _RADII:
            for deg in _ANGLES:
                c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
                # the label's nearest edge (not its centre) sits r from the point
                bx = cx + r * px * c + (w / 2) * np.sign(round(c, 6))
                by = cy + r * px * s + (h / 2) * np.sign(round(s, 6))
                cand = (bx - w / 2, by - h / 2, bx + w / 2, by + h / 2)
                cost = 10 * _overlap(cand, np.array(placed).reshape(-1, 4)) + _overlap(cand, obstacles)
                if cand[0] < frame.x0 or cand[2] > frame.x1 or cand[1] < frame.y0 or cand[3] > frame.y1:
                    cost += w * h * 20
                if _nearer_mark(cand, (cx, cy), centres):  # a label reads as its nearest mark's
                    cost += w * h * 0.5
                if best is None or cost < best[0]:
                    best = (cost, r, cand, (bx - cx) / px, (by - cy) / px)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, r, cand, dx, dy = best
        leader = {"arrowstyle": "-", "color": "0.45", "lw": 0.7, "shrinkA": 0, "shrinkB": 3} if r > _RADII[0] else None
        ann = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                          ha="center", va="center", annotation_clip=False, arrowprops=leader, **style)
        ann.set_in_layout(False)
        placed.append(cand)
        out.append(ann)
    return out


#: Gantt colour of each station type's busy blocks (a repair is black)
STATION_COLOURS = {"robot": "C0", "balance": "C1", "mill": "C2", "press": "C3", "furnace": "C4",
                   "xrd": "C5", "property": "C6"}


def _save(fig, path: str | Path) -> Path:
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return Path(path)


def plot_gantt(usage, path: str | Path, max_hours: float = 72.0) -> Path:
    """The Gantt chart of :func:`gantt_figure`, as a PNG."""
    return _save(gantt_figure(usage, max_hours), path)


def gantt_figure(usage, max_hours: float = 72.0):
    """Instrument use over the first ``max_hours`` h: one row per instrument, one colour per
    station type (busy with a sample or firing), black for a furnace repair."""
    from matplotlib.patches import Patch

    plt = _plt()
    units = sorted({u for _, u, _, _, _ in usage})
    fig, ax = plt.subplots(figsize=(12, 0.35 * len(units) + 1.6))
    seen: dict[str, str] = {}
    for s, u, job, a, b in usage:
        if a / 3600 > max_hours:
            continue
        c = "black" if job == "repair" else STATION_COLOURS.get(s, "grey")
        seen.setdefault("furnace repair" if job == "repair" else f"{s}: busy (a block per job)", c)
        # a white edge between jobs, only on blocks wide enough not to be washed out by it
        wide = (b - a) / 3600 > max_hours / 150
        ax.broken_barh([(a / 3600, max((b - a) / 3600, 0.05))], (units.index(u) - 0.4, 0.8), facecolor=c,
                       edgecolor="white" if wide else "none", linewidth=0.4)
    ax.set_yticks(range(len(units)), units)
    ax.set_xlim(0, max_hours)
    ax.set_xlabel("lab time, h")
    ax.set_title(f"Instrument use, first {max_hours:g} h of the campaign")
    order = sorted(seen, key=lambda k: (k == "furnace repair", k))
    ax.legend(handles=[Patch(facecolor=seen[k], label=k) for k in order], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_furnace_traces(firings, truth_offsets, path: str | Path, per_furnace: int = 1) -> Path:
    """The furnace traces of :func:`furnace_traces_figure`, as a PNG."""
    return _save(furnace_traces_figure(firings, truth_offsets, per_furnace), path)


def furnace_traces_figure(firings, truth_offsets, per_furnace: int = 1):
    """Per furnace, the first ``per_furnace`` sample firings: setpoint and logged
    thermocouple (K), and below them their deviation from the setpoint (K) beside the band
    where the sample truly was, setpoint - offset +- 2 drift sd (invisible at the scale of a
    programme, a few K wide)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    plt = _plt()
    furnaces = sorted({f.furnace for f in firings})
    fig, axes = plt.subplots(2 * len(furnaces), 1, figsize=(11, 3.6 * len(furnaces)), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2] * len(furnaces)}, layout="constrained")
    for k, fu in enumerate(furnaces):
        ax, dev = axes[2 * k, 0], axes[2 * k + 1, 0]
        dev.sharex(ax)
        logs = [f for f in firings if f.furnace == fu and f.kind == "sample" and f.status == "ok"]
        for log in logs[:per_furnace]:
            t = log.time_s / 3600
            off, sd = truth_offsets[log.firing_id]
            ax.plot(t, log.setpoint_K, "k--", lw=1)
            ax.plot(t, log.thermocouple_K, "C0", lw=1)
            dev.axhline(0.0, color="k", ls="--", lw=1)
            dev.plot(t, log.thermocouple_K - log.setpoint_K, "C0", lw=1)
            dev.fill_between(t, -off - 2 * sd, -off + 2 * sd, color="C3", alpha=0.3, lw=0)
            ax.set_title(f"furnace-{fu}, firing {log.firing_id}: true offset {off:+.1f} K, drift sd {sd:.1f} K",
                         fontsize=9)
        if not logs:
            ax.set_title(f"furnace-{fu}: no sample firing logged", fontsize=9)
        ax.set_ylabel("T, K")
        dev.set_ylabel("T - setpoint, K")
        ax.tick_params(labelbottom=False)
        for a in (ax, dev):
            a.grid(alpha=0.3)
        dev.set_xlabel("time since programme start, h")
    handles = [Line2D([], [], color="k", ls="--", lw=1, label="setpoint"),
               Line2D([], [], color="C0", lw=1, label="thermocouple (logged)"),
               Patch(facecolor="C3", alpha=0.3, label="sample (truth): setpoint - offset ± 2 drift sd")]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, fontsize=8, frameon=False)
    return fig


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
    ax.set_xlabel("lab time, h")
    ax.set_ylabel("jobs waiting (count)")
    ax.set_title("Queue lengths")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
