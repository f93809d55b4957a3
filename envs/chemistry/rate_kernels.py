"""The compiled firing kernels: every reaction, evaporation and grain growth of a batch,
step by step (the rate laws of :mod:`.kinetics`, whose :class:`~.kinetics.ReactionNetwork`
builds the tables they read).

Big batches share chunks of samples out among threads; small ones run a serial build.
Kernels fill arrays their caller allocated and return nothing (a returned array would be
boxed through a Python callback, where a Ctrl-C turns into a ``SystemError``).
"""

from __future__ import annotations

import numba
import numpy as np

from .recipe import ROOM_TEMPERATURE
from .system_model import RATE_LAWS

__all__ = ["T_GRID_MAX", "T_GRID_MIN", "T_GRID_STEP", "first_layer_slope", "programmes_kernel", "traces_kernel"]

T_GRID_MIN, T_GRID_MAX, T_GRID_STEP = 250.0, 2500.0, 1.0  # K: the rate tables' temperature grid


@numba.njit(cache=True, inline="always")
def _reacted(x):  # pragma: no cover - compiled
    """1 - exp(-x) for x >= 0: the part of a first-order reactant used in a step of rate x
    time ``x``. Most ramp steps are slow (x < 1e-3 in 3 of 4): there the series to x^5
    gives it to rounding (the next term is x^6/720, relative 1.4e-18) without expm1."""
    if x < 1e-3:
        return x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x * (1.0 / 120.0)))))
    return -np.expm1(-x)


FIRST_ORDER = RATE_LAWS.index("first-order")  # the law codes ReactionNetwork.laws holds
JANDER = RATE_LAWS.index("jander")
AVRAMI = RATE_LAWS.index("avrami-erofeev")
MAX_STEP_CONVERSION = 0.1  # the most of its reactant a Jander-law reaction converts in one (sub)step
MAX_SUBSTEPS = 16  # the most parts a step is cut into
#: an upper bound of d alpha / d(reduced time) on Jander's curve above the first layer
#: (its value at a conversion of 0.1; kinetics.FIRST_LAYER is 0.143): a step whose
#: reduced time times this is below MAX_STEP_CONVERSION needs no parts
JANDER_MAX_SLOPE = 1.5 * np.cbrt(0.9) ** 2 / (1.0 - np.cbrt(0.9))  # 1.5 (1 - c)^2 / c, c = 1 - 0.9^(1/3)
#: a step's reduced time |k dt| below which a reaction is not applied: it would convert
#: less than 1e-9 of its reactant even at the steepest point of Jander's curve (the bound
#: above, 40x; a molten flux's first order is 15x), so a firing of N steps loses at most
#: N x 1e-9 of any reactant: 6.4e-8 in a programme's 64 steps, 1e-5 in 10,000 (a furnace
#: driven live in seconds-long steps for hours), two orders below what XRD sees (~1e-3).
#: In LiMn2O4's ramps and cools about a third of the reaction-steps are this slow; at 1e-12
#: (thirteenth stop) the skip made batched firing 5-20 % faster, at 1e-9 another 6 %
#: (measured beside each other; the machine's noise is of that size)
KD_NEGLIGIBLE = 1e-9 / JANDER_MAX_SLOPE


@numba.njit(cache=True)
def first_layer_slope(first_layer):  # pragma: no cover - compiled
    """d alpha / d(reduced time) of Jander's law at the conversion ``first_layer``: computed
    once per network with the kernel's own arithmetic (the tables hold it, for
    :func:`_jander_extent`)."""
    c0 = 1.0 - np.cbrt(1.0 - first_layer)
    return 1.5 * (1.0 - c0) ** 2 / c0


@numba.njit(cache=True)
def _jander_extent(made, avail, kt, first_layer, slope):  # pragma: no cover - compiled
    """mol of reaction a Jander-law step makes: ``made`` mol made so far (the product
    layer), ``avail`` mol of reaction still available, ``kt`` the step's k D m dt,
    ``slope`` :func:`first_layer_slope` of ``first_layer``.

    The conversion alpha = made / (made + avail) obeys Jander's law
    [1 - (1 - alpha)^(1/3)]^2 = k t. Jander's rate diverges at alpha = 0, so below the
    first crystallites' layer (``first_layer``, a conversion) the rate is the one at that
    layer: without that bound, reactant that another reaction has just supplied would
    react at an unbounded rate. Exact over any step (for fixed amounts): the step's
    reduced time first fills the part below the layer at that constant rate, then moves
    along Jander's curve; complete (alpha = 1) at reduced time 1."""
    total = made + avail
    a = made / total
    if a < first_layer:
        need = (first_layer - a) / slope
        if kt <= need:
            return total * kt * slope
        kt -= need
        a = first_layer
    c = 1.0 - np.cbrt(1.0 - a)
    g = c * c + kt
    if g >= 1.0:
        return avail
    return min(max(total * (1.0 - (1.0 - np.sqrt(g)) ** 3) - made, 0.0), avail)


@numba.njit(cache=True)
def _avrami_extent(made, avail, kt):  # pragma: no cover - compiled
    """mol of reaction an Avrami-Erofeev (nucleation and growth, exponent 2) step makes:
    ``made`` mol made so far, ``avail`` mol of reaction still available, ``kt`` the step's
    k D m dt. The conversion alpha = made / (made + avail) obeys -ln(1 - alpha) = (k t)^2:
    its reduced time theta = sqrt(-ln(1 - alpha)) grows by ``kt``. Exact over any step (for
    fixed amounts); from alpha = 0 the conversion starts as (k t)^2, the induction of a
    nucleation-limited step, and never completes in finite time."""
    total = made + avail
    theta = np.sqrt(-np.log1p(-made / total)) + kt
    return min(max(-total * np.expm1(-theta * theta) - made, 0.0), avail)


@numba.njit(cache=True)
def _substeps(n, b, T, step, offset, factor, tables, layer):  # pragma: no cover - compiled
    """How many equal parts a step of ``step`` s at ``T`` K must be cut into so that no
    Jander-law reaction of sample ``b`` converts more than MAX_STEP_CONVERSION of its
    reactant in one part (at most MAX_SUBSTEPS; 1 when no Jander reaction is fast).

    Reactions are applied one after another within a step; a reaction that completes in
    one step would take its reactant before a competitor for it can act. Only the Jander-law
    reactions are looked at (``jander``), and the callers skip the call where even the
    fastest of them at this temperature is slow (``fastest``, without per-sample worlds):
    60 % of the steps of a LiMn2O4 batch. The two made its batched firing 8 % faster, to the
    bit the same samples (measured beside the kernel without them)."""
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, laws, first_layer, layer_slope, molten, melt, jander,
     fastest, vol_idx, vol_table, grain_table, w_rxn, w_vol, w_grain, escape, bed) = tables
    ti = min(max(int(np.rint((T - T_GRID_MIN) / T_GRID_STEP)), 0), grain_table.shape[0] - 1)
    row = ti + offset
    scaled = step * factor
    worlds = w_rxn.shape[0] > 0
    inv_T = 1.0 / (T_GRID_MIN + ti * T_GRID_STEP)
    parts = 1.0
    for r in jander:
        if r_cnt[r] == 0 or T >= melt[r]:
            continue  # a first-order step (or a molten flux's) needs no parts
        kd = rate_table[row, r] * scaled
        if kd <= 0.0:
            continue
        if worlds:
            kd *= np.exp(w_rxn[b, r, 0] - w_rxn[b, r, 1] * inv_T)
        if kd * JANDER_MAX_SLOPE <= MAX_STEP_CONVERSION:
            continue  # slow: even at the first layer, where Jander's rate is highest
        avail = np.inf
        for j in range(r_cnt[r]):
            avail = min(avail, n[b, r_idx[r, j]] / r_nu[r, j])
        if avail <= MAX_STEP_CONVERSION * (layer[b, r] + avail):
            continue  # even all that is left is less than a part's worth (and none is left: nothing to cut)
        parts = max(parts, _jander_extent(layer[b, r], avail, kd, first_layer, layer_slope) / (layer[b, r] + avail)
                    / MAX_STEP_CONVERSION)
    return min(int(np.ceil(parts)), MAX_SUBSTEPS)


@numba.njit(cache=True, inline="always")
def _advance(n, b, T, step, offset, factor, tables, gas, lost, grain2, layer, odd):  # pragma: no cover - compiled
    """One step of ``step`` s at ``T`` K for sample ``b`` (cut into :func:`_substeps` parts)."""
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, laws, first_layer, layer_slope, molten, melt, jander,
     fastest, vol_idx, vol_table, grain_table, w_rxn, w_vol, w_grain, escape, bed) = tables
    row = min(max(int(np.rint((T - T_GRID_MIN) / T_GRID_STEP)), 0), grain_table.shape[0] - 1) + offset
    if w_rxn.shape[0] == 0 and fastest[row] * step * factor * JANDER_MAX_SLOPE <= MAX_STEP_CONVERSION:
        parts = 1  # no Jander-law reaction is fast at this temperature (the common step: checked once)
    else:
        parts = _substeps(n, b, T, step, offset, factor, tables, layer)
    for q in range(parts):
        _advance_once(n, b, T, step / parts, offset, factor, tables, gas, lost, grain2, layer, (odd + q) % 2)


@numba.njit(cache=True, inline="always")
def _advance_once(n, b, T, step, offset, factor, tables, gas, lost, grain2, layer, odd):  # pragma: no cover - compiled
    """One step of ``step`` s at ``T`` K for sample ``b``: every reaction, evaporation, grain growth.

    ``tables`` is :meth:`ReactionNetwork._tables` (one tuple, so the call can be inlined).
    The reactions act one after another: in the file's order, or in reverse when ``odd``
    (every other step and part). Alternating makes each pair of steps symmetric (Strang's
    splitting of two), so the order's bias falls from first to second order in the step:
    against a 100x finer firing of 2,000 random recipes (seed 7) the target fraction's
    90th-percentile error fell from 0.0118 to 0.0017 (BaTiO3), 0.0017 to 0.0012 (LiMn2O4)
    and 0.0047 to 0.0015 (CaSiO3), the 99th from 0.042 to 0.020, 0.054 to 0.018 and 0.0095
    to 0.0064. The reversed index is unsigned (a signed one brought numba's negative-index
    checks back and cost 15 %); measured alternately with the file-order kernel, 1.00x
    (LiMn2O4) and 0.96x (BaTiO3) the batched rate.
    """
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, laws, first_layer, layer_slope, molten, melt, jander,
     fastest, vol_idx, vol_table, grain_table, w_rxn, w_vol, w_grain, escape, bed) = tables
    ti = int(np.rint((T - T_GRID_MIN) / T_GRID_STEP))
    ti = min(max(ti, 0), grain_table.shape[0] - 1)
    row = ti + offset
    scaled = step * factor
    worlds = w_rxn.shape[0] > 0
    inv_T = 1.0 / (T_GRID_MIN + ti * T_GRID_STEP)
    capped = bed.shape[0] > 0
    last = np.uint64(rate_table.shape[1] - 1)  # unsigned indices: numba then skips the negative-index checks
    for i in range(np.uint64(rate_table.shape[1])):
        r = last - i if odd else i  # every other step in reverse order
        kd = rate_table[row, r] * scaled
        if worlds:
            kd *= np.exp(w_rxn[b, r, 0] - w_rxn[b, r, 1] * inv_T)
        if abs(kd) < KD_NEGLIGIBLE:
            continue
        if kd > 0.0:
            if r_cnt[r] == 0:
                continue
            avail = np.inf
            for j in range(r_cnt[r]):
                avail = min(avail, n[b, r_idx[r, j]] / r_nu[r, j])
            if avail <= 0.0:
                continue  # a reactant is used up: nothing to do (the updates would add 0)
            if laws[r] == JANDER:
                if T >= melt[r]:  # through the molten flux: first order, no layer to cross
                    xi = avail * _reacted(kd * molten)
                else:
                    xi = _jander_extent(layer[b, r], avail, kd, first_layer, layer_slope)
            elif laws[r] == AVRAMI:
                xi = _avrami_extent(layer[b, r], avail, kd)
            else:
                xi = avail * _reacted(kd)
        elif kd < 0.0:
            if p_cnt[r] == 0:
                continue
            avail = np.inf
            for j in range(p_cnt[r]):
                avail = min(avail, n[b, p_idx[r, j]] / p_nu[r, j])
            if avail <= 0.0:
                continue
            xi = -avail * _reacted(-kd)  # products decompose first-order: no layer to cross
        else:
            continue
        if capped:  # the gas must cross the powder bed (:mod:`.powder_bed`)
            limit = bed[b] * escape[row, r] * step
            xi = min(max(xi, -limit), limit)
        if laws[r] != FIRST_ORDER:  # what a Jander or Avrami law has made grows, or shrinks, with it
            layer[b, r] = max(layer[b, r] + xi, 0.0)
        for j in range(r_cnt[r]):
            n[b, r_idx[r, j]] = max(n[b, r_idx[r, j]] - r_nu[r, j] * xi, 0.0)
        for j in range(p_cnt[r]):
            n[b, p_idx[r, j]] = max(n[b, p_idx[r, j]] + p_nu[r, j] * xi, 0.0)
        for g in range(gas_coef.shape[1]):
            gas[b, g] += gas_coef[r, g] * xi
    for v in range(vol_idx.shape[0]):
        iv = vol_idx[v]
        k_v = vol_table[v, ti] * (np.exp(w_vol[b, v, 0] - w_vol[b, v, 1] * inv_T) if worlds else 1.0)
        out = n[b, iv] * _reacted(k_v * step)
        n[b, iv] -= out
        lost[b, iv] += out
    grain2[b] += grain_table[ti] * step * (np.exp(w_grain[b, 0] - w_grain[b, 1] * inv_T) if worlds else 1.0)


@numba.njit(cache=True, inline="always")
def _dwell(n, b, T, step, count, offset, factor, tables, gas, lost, grain2, layer,
           first):  # pragma: no cover - compiled
    """``count`` equal steps of ``step`` s at ``T`` K (a dwell): the same as ``count`` calls
    of :func:`_advance` (bit for bit; the first is step ``first`` of the firing, for the
    reactions' alternating order), with the reactions' and evaporation's shares computed
    once. The reaction update is spelled out here and in :func:`_advance` on purpose: as a
    shared inline helper per reaction it made the serial build 10x slower, and as a shared
    step over arrays of shares 20 % slower on threads (numba 0.68, measured)."""
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, laws, first_layer, layer_slope, molten, melt, jander,
     fastest, vol_idx, vol_table, grain_table, w_rxn, w_vol, w_grain, escape, bed) = tables
    ti = int(np.rint((T - T_GRID_MIN) / T_GRID_STEP))
    ti = min(max(ti, 0), grain_table.shape[0] - 1)
    row = ti + offset
    scaled = step * factor
    worlds = w_rxn.shape[0] > 0
    inv_T = 1.0 / (T_GRID_MIN + ti * T_GRID_STEP)
    share = np.empty(rate_table.shape[1])  # > 0 forward, < 0 backward, 0 none
    kds = np.empty(rate_table.shape[1])  # each step's reduced time, for the Jander- and Avrami-law reactions
    capped = bed.shape[0] > 0
    limits = np.empty(rate_table.shape[1] if capped else 0)  # mol of reaction the bed lets through a step
    for r in range(rate_table.shape[1]):
        if capped:
            limits[r] = bed[b] * escape[row, r] * step
        kd = rate_table[row, r] * scaled
        if worlds:
            kd *= np.exp(w_rxn[b, r, 0] - w_rxn[b, r, 1] * inv_T)
        if abs(kd) < KD_NEGLIGIBLE:
            kd = 0.0
        kds[r] = kd
        if kd > 0.0 and laws[r] == JANDER and T >= melt[r]:
            kd *= molten  # through the molten flux: first order (the loop below)
        share[r] = _reacted(kd) if kd > 0.0 else (-_reacted(-kd) if kd < 0.0 else 0.0)
    evaporated = np.empty(vol_idx.shape[0])
    for v in range(vol_idx.shape[0]):
        k_v = vol_table[v, ti] * (np.exp(w_vol[b, v, 0] - w_vol[b, v, 1] * inv_T) if worlds else 1.0)
        evaporated[v] = _reacted(k_v * step)
    growth = grain_table[ti] * step * (np.exp(w_grain[b, 0] - w_grain[b, 1] * inv_T) if worlds else 1.0)
    slow = not worlds and fastest[row] * scaled * JANDER_MAX_SLOPE <= MAX_STEP_CONVERSION  # no step needs parts
    last = np.uint64(rate_table.shape[1] - 1)
    for it in range(count):
        parts = 1 if slow else _substeps(n, b, T, step, offset, factor, tables, layer)
        if parts > 1:  # a fast Jander-law reaction: this step in parts, its shares recomputed
            for q in range(parts):
                _advance_once(n, b, T, step / parts, offset, factor, tables, gas, lost, grain2, layer,
                              (first + it + q) % 2)
            continue
        backward = (first + it) % 2 == 1
        for i in range(np.uint64(rate_table.shape[1])):
            r = last - i if backward else i  # every other step in reverse order
            f = share[r]
            if f > 0.0:
                if r_cnt[r] == 0:
                    continue
                avail = np.inf
                for j in range(r_cnt[r]):
                    avail = min(avail, n[b, r_idx[r, j]] / r_nu[r, j])
            elif f < 0.0:
                if p_cnt[r] == 0:
                    continue
                avail = np.inf
                for j in range(p_cnt[r]):
                    avail = min(avail, n[b, p_idx[r, j]] / p_nu[r, j])
            else:
                continue
            if avail <= 0.0:
                continue
            if laws[r] == FIRST_ORDER or f < 0.0 or (laws[r] == JANDER and T >= melt[r]):
                xi = avail * f  # first order (a molten flux's, a decomposing product's)
            elif laws[r] == JANDER:
                xi = _jander_extent(layer[b, r], avail, kds[r], first_layer, layer_slope)
            else:
                xi = _avrami_extent(layer[b, r], avail, kds[r])
            if capped:
                xi = min(max(xi, -limits[r]), limits[r])
            if laws[r] != FIRST_ORDER:
                layer[b, r] = max(layer[b, r] + xi, 0.0)
            for j in range(r_cnt[r]):
                n[b, r_idx[r, j]] = max(n[b, r_idx[r, j]] - r_nu[r, j] * xi, 0.0)
            for j in range(p_cnt[r]):
                n[b, p_idx[r, j]] = max(n[b, p_idx[r, j]] + p_nu[r, j] * xi, 0.0)
            for g in range(gas_coef.shape[1]):
                gas[b, g] += gas_coef[r, g] * xi
        for v in range(vol_idx.shape[0]):
            iv = vol_idx[v]
            out = n[b, iv] * evaporated[v]
            n[b, iv] -= out
            lost[b, iv] += out
        grain2[b] += growth


@numba.njit(cache=True, inline="always")
def _traces_range(lo, hi, n, T, dt, offset, factor, tables, gas, lost, grain2, layer,
                  first):  # pragma: no cover - compiled
    """Samples lo..hi-1 through their own temperature histories ``T`` (B, S) K, ``dt`` (B, S) s,
    whose first step is step ``first`` of the firing (the reaction order alternates with it)."""
    for b in range(lo, hi):
        for s in range(T.shape[1]):
            _advance(n, b, T[b, s], dt[b, s], offset[b], factor[b], tables, gas, lost, grain2, layer, (first + s) % 2)


@numba.njit(cache=True, inline="always")
def _programmes_range(lo, hi, n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                      grain2, layer, steps):  # pragma: no cover - compiled
    """Samples lo..hi-1 through their programmes (ramp, dwell, cool), steps made on the fly.

    The same steps as :func:`~synthgap.envs.chemistry.firing.programme_trace`: midpoints of
    ``steps`` = (ramp, dwell, cool) equal parts of each segment (:mod:`.discretisation`;
    an argument, not a global, because numba's cache would not see a change in that module).
    """
    ramp_steps, dwell_steps, cool_steps = steps
    for b in range(lo, hi):
        span, off, fac = dwell_T[b] - ROOM_TEMPERATURE, offset[b], factor[b]
        dt = span * 60.0 / ramp[b] / ramp_steps
        for k in range(ramp_steps):
            T = ROOM_TEMPERATURE + span * (k + 0.5) / ramp_steps
            _advance(n, b, T, dt, off, fac, tables, gas, lost, grain2, layer, k % 2)
        _dwell(n, b, dwell_T[b], dwell_h[b] * 3600.0 / dwell_steps, dwell_steps, off, fac, tables, gas, lost, grain2,
               layer, ramp_steps % 2)
        dt = span * 60.0 / cool[b] / cool_steps
        for k in range(cool_steps):
            T = dwell_T[b] - span * (k + 0.5) / cool_steps
            _advance(n, b, T, dt, off, fac, tables, gas, lost, grain2, layer, (ramp_steps + dwell_steps + k) % 2)


# Big batches share chunks of samples out among threads (OpenMP), each running the inlined
# serial loop: 10k programmes in 17 ms on 2 threads. Small batches (the twin, the envs, the
# deploy path: one sample, in processes with threads, signals and forks) never enter a
# parallel region: a serial build, 6 us for one sample. Every kernel is compiled with
# error_model="numpy": no zero-division check on each division (every divisor is a
# stoichiometric coefficient > 0 or a constant), which made the serial build 3x slower.
CHUNK = 64  # samples per task
PARALLEL_BATCH = 1024  # samples from which the threaded kernels are used


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _traces_threaded(n, T, dt, offset, factor, tables, gas, lost, grain2, layer, first):  # pragma: no cover - compiled
    for c in numba.prange((n.shape[0] + CHUNK - 1) // CHUNK):  # threads share out chunks of samples
        _traces_range(c * CHUNK, min(n.shape[0], (c + 1) * CHUNK), n, T, dt, offset, factor, tables,
                      gas, lost, grain2, layer, first)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _programmes_threaded(n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                         grain2, layer, steps):  # pragma: no cover - compiled
    for c in numba.prange((n.shape[0] + CHUNK - 1) // CHUNK):
        _programmes_range(c * CHUNK, min(n.shape[0], (c + 1) * CHUNK), n, dwell_T, ramp, dwell_h, cool,
                          offset, factor, tables, gas, lost, grain2, layer, steps)


@numba.njit(cache=True, error_model="numpy")
def _traces_serial(n, T, dt, offset, factor, tables, gas, lost, grain2, layer, first):  # pragma: no cover - compiled
    _traces_range(0, n.shape[0], n, T, dt, offset, factor, tables, gas, lost, grain2, layer, first)


@numba.njit(cache=True, error_model="numpy")
def _programmes_serial(n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                       grain2, layer, steps):  # pragma: no cover - compiled
    _programmes_range(0, n.shape[0], n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost, grain2, layer,
                      steps)


def traces_kernel(n, *args) -> None:
    (_traces_threaded if n.shape[0] >= PARALLEL_BATCH else _traces_serial)(n, *args)


def programmes_kernel(n, *args) -> None:
    (_programmes_threaded if n.shape[0] >= PARALLEL_BATCH else _programmes_serial)(n, *args)
