"""Solid-state reaction kinetics, vectorised over a batch of samples.

Each reaction r of a system's network advances with

    d xi_r / dt = k_r(T) * D_r(T, p) * m * F_r

* k_r(T) = A_r exp(-Ea_r / R T), Arrhenius, 1/s;
* D_r = tanh(-dG_r / (n_r * g_ref)): the thermodynamic driving force per atom, in (-1, 1);
  a reaction runs forward only when dG < 0 and backward (its products decompose) when
  dG > 0; nothing runs uphill, and a reaction whose driving force is nearly used up
  (an intermediate took it) is slow: the kinetic trap;
* m = (d_ref / d)^2: contact area per volume from milling (Jander-type diffusion), with
  the particle size d, um, set by the milling time;
* F_r: the limiting amount (mol of reaction) of the solid reactants (forward) or solid
  products (backward). Gases are the furnace atmosphere's: a reservoir at fixed partial
  pressure that never limits a reaction.

Integration is exact for each reaction over a step (exponential update
F (1 - exp(-k D m dt))), reactions applied in sequence, so amounts never go negative
and every element is conserved up to the gas exchanged with the atmosphere and the
volatile loss, both tallied. Grain size grows as d_g^2 = d_0^2 + int K_g(T) dt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from .catalogue import ChemicalSystem, load_atmospheres
from .discretisation import COOL_STEPS, DWELL_STEPS, RAMP_STEPS
from .recipe import ROOM_TEMPERATURE
from .stoichiometry import molar_mass
from .tables import EV_TO_J_PER_MOL, R_GAS

if TYPE_CHECKING:
    from .world_rates import WorldKinetics

T_GRID_MIN, T_GRID_MAX, T_GRID_STEP = 250.0, 2500.0, 1.0  # K
DRIVING_FORCE_SCALE = 0.05  # eV/atom: g_ref, the driving force at which D = tanh(1)
TRACE_PRESSURE = 1.0e-6  # atm, partial pressure of a gas the atmosphere does not name
REFERENCE_PARTICLE_SIZE = 2.0  # um: particle size at which m = 1
UNMILLED_PARTICLE_SIZE = 10.0  # um
MILLED_PARTICLE_SIZE = 0.5  # um, the finest a ball mill reaches
MILLING_TIME_CONSTANT = 2.0  # h
INITIAL_GRAIN_SIZE = 0.05  # um, crystallites as they first form


def particle_size(milling_time: np.ndarray) -> np.ndarray:
    """Mean precursor particle size, um, after ``milling_time`` hours of ball milling."""
    t = np.asarray(milling_time, dtype=float)
    return MILLED_PARTICLE_SIZE + (UNMILLED_PARTICLE_SIZE - MILLED_PARTICLE_SIZE) * np.exp(
        -t / MILLING_TIME_CONSTANT
    )


def milling_rate_factor(milling_time: np.ndarray) -> np.ndarray:
    """Rate multiplier m = (d_ref / d)^2 from milling (dimensionless)."""
    return (REFERENCE_PARTICLE_SIZE / particle_size(milling_time)) ** 2


@dataclass
class KineticState:
    """Result of integrating a batch through its temperature histories.

    Attributes:
        amounts: (B, P) mol of each solid phase (``network.solids`` order).
        gas_released: (B, G) mol of each gas released to the atmosphere (negative: taken up).
        volatilized: (B, P) mol of each solid lost by evaporation.
        grain_size: (B,) um, mean grain size of the product.
    """

    amounts: np.ndarray
    gas_released: np.ndarray
    volatilized: np.ndarray
    grain_size: np.ndarray


class ReactionNetwork:
    """A chemical system's reaction network, compiled to lookup tables for fast firing.

    Rate constants times driving forces are tabulated on a 1 K grid from 250 K to
    2500 K for every atmosphere, so a step costs a table lookup per reaction.
    """

    def __init__(self, system: ChemicalSystem):
        self.system = system
        self.solids: tuple[str, ...] = system.solids
        self.gases: tuple[str, ...] = system.gases
        self.atmospheres: tuple[str, ...] = tuple(load_atmospheres())
        s_index = {n: i for i, n in enumerate(self.solids)}
        g_index = {n: i for i, n in enumerate(self.gases)}
        self.molar_mass = np.array([molar_mass(system.phases[n].formula) for n in self.solids])
        self.elements: tuple[str, ...] = system.elements
        self.solid_elements = np.array(
            [[system.phases[n].element_amounts.get(e, 0.0) for e in self.elements] for n in self.solids]
        ).reshape(len(self.solids), len(self.elements))
        self.gas_elements = np.array(
            [[system.phases[n].element_amounts.get(e, 0.0) for e in self.elements] for n in self.gases]
        ).reshape(len(self.gases), len(self.elements))

        grid = np.arange(T_GRID_MIN, T_GRID_MAX + T_GRID_STEP / 2, T_GRID_STEP)
        self.n_grid = grid.size
        atm_p = load_atmospheres()
        self.reactants: list[list[tuple[int, float]]] = []
        self.products: list[list[tuple[int, float]]] = []
        self.gas_terms: list[list[tuple[int, float]]] = []
        rate = np.empty((len(system.reactions), len(self.atmospheres) * self.n_grid))
        for r, spec in enumerate(system.reactions):
            rxn = spec.reaction
            self.reactants.append([(s_index[n], -c) for n, c in rxn.coefficients.items()
                                   if c < 0 and n in s_index])
            self.products.append([(s_index[n], c) for n, c in rxn.coefficients.items()
                                  if c > 0 and n in s_index])
            self.gas_terms.append([(g_index[n], c) for n, c in rxn.coefficients.items() if n in g_index])
            atoms = sum(-c * rxn.phases[n].atoms for n, c in rxn.coefficients.items() if c < 0)
            k = spec.prefactor * np.exp(-spec.activation_energy / (R_GAS * grid))
            for a, atm in enumerate(self.atmospheres):
                pressures = {g: atm_p[atm].get(g, TRACE_PRESSURE) for g in self.gases}
                dg = rxn.gibbs(grid, pressures) / EV_TO_J_PER_MOL / atoms  # eV/atom
                rate[r, a * self.n_grid:(a + 1) * self.n_grid] = k * np.tanh(-dg / DRIVING_FORCE_SCALE)
        # (atmosphere x temperature, reaction): one step reads one row, a single cache line
        self.rate_table = np.ascontiguousarray(rate.T)
        self._structure = _pad(self.reactants) + _pad(self.products) + (
            _gas_matrix(self.gas_terms, len(self.gases)),
        )
        self.volatile_index = np.array([s_index[n] for n in system.volatiles], dtype=np.int64)
        self.volatile_table = np.array(
            [A * np.exp(-Ea / (R_GAS * grid)) for Ea, A in system.volatiles.values()]
        ).reshape(len(self.volatile_index), self.n_grid)
        Eg, Ag = system.grain_growth
        self.grain_table = Ag * np.exp(-Eg / (R_GAS * grid))
        self._no_worlds = (np.zeros((0, len(system.reactions), 2)), np.zeros((0, len(self.volatile_index), 2)),
                           np.zeros((0, 2)))

    def integrate(
        self,
        amounts: np.ndarray,
        temperatures: np.ndarray,
        dt: np.ndarray,
        atmosphere: np.ndarray,
        rate_factor: np.ndarray,
        grain_size: np.ndarray | None = None,
        worlds: WorldKinetics | None = None,
    ) -> KineticState:
        """Fire a batch of samples through their temperature histories.

        Args:
            amounts: (B, P) initial mol of each solid.
            temperatures: (B, S) sample temperature at each step, K (the *true* one).
            dt: (B, S) step durations, s.
            atmosphere: (B,) int, atmosphere index.
            rate_factor: (B,) dimensionless multiplier of every rate (milling).
            grain_size: (B,) um, grain size to start from (to continue an earlier
                integration); default: fresh crystallites.
            worlds: each sample's own Arrhenius parameters (B rows: a batch of campaigns,
                each in a drawn world of this network's system); default the network's.

        Returns:
            the final :class:`KineticState`.
        """
        n = np.array(amounts, dtype=float, order="C")  # copy: the caller's array stays
        B = n.shape[0]
        gas = np.zeros((B, len(self.gases)))
        lost = np.zeros_like(n)
        grain2 = (np.full(B, INITIAL_GRAIN_SIZE**2) if grain_size is None
                  else np.asarray(grain_size, dtype=float) ** 2)
        _traces_kernel(
            n, np.ascontiguousarray(temperatures, dtype=float), np.ascontiguousarray(dt, dtype=float),
            np.asarray(atmosphere, dtype=np.int64) * self.n_grid, np.ascontiguousarray(rate_factor, dtype=float),
            self._tables(worlds, B), gas, lost, grain2,
        )
        return KineticState(n, gas, lost, np.sqrt(grain2))

    def integrate_programmes(
        self,
        amounts: np.ndarray,
        dwell_temperature: np.ndarray,
        ramp_rate: np.ndarray,
        dwell_time: np.ndarray,
        cooling_rate: np.ndarray,
        atmosphere: np.ndarray,
        rate_factor: np.ndarray,
        worlds: WorldKinetics | None = None,
    ) -> KineticState:
        """Fire a batch through ideal programmes (ramp from room temperature, dwell, cool).

        The fast path of planners and the oracle: the steps are generated inside the
        kernel, identical to :func:`programme_steps`, so no (B, S) arrays are built.

        Args:
            amounts: (B, P) initial mol of each solid.
            dwell_temperature: (B,) K; ramp_rate: (B,) K/min; dwell_time: (B,) h;
                cooling_rate: (B,) K/min.
            atmosphere: (B,) int atmosphere index; rate_factor: (B,) milling multiplier.
            worlds: each sample's own Arrhenius parameters, as :meth:`integrate`'s.
        """
        n = np.array(amounts, dtype=float, order="C")
        B = n.shape[0]
        gas = np.zeros((B, len(self.gases)))
        lost = np.zeros_like(n)
        grain2 = np.full(B, INITIAL_GRAIN_SIZE**2)

        def col(x):
            return np.ascontiguousarray(x, dtype=float)

        _programmes_kernel(
            n, col(dwell_temperature), col(ramp_rate), col(dwell_time), col(cooling_rate),
            np.asarray(atmosphere, dtype=np.int64) * self.n_grid, col(rate_factor),
            self._tables(worlds, B), gas, lost, grain2, (RAMP_STEPS, DWELL_STEPS, COOL_STEPS),
        )
        return KineticState(n, gas, lost, np.sqrt(grain2))

    def _tables(self, worlds: WorldKinetics | None, batch: int) -> tuple:
        """The kernels' tables for ``batch`` samples; ``worlds``: each one's own Arrhenius parameters."""
        if worlds is None:
            w = self._no_worlds
        elif len(worlds) != batch:
            raise ValueError(f"world kinetics for {len(worlds)} samples, amounts for {batch}")
        else:
            w = worlds.arrays(len(self.system.reactions), self.volatile_index.shape[0])
        return (self.rate_table, *self._structure, self.volatile_index, self.volatile_table, self.grain_table, *w)

    def element_totals(self, state_amounts: np.ndarray, gas: np.ndarray, lost: np.ndarray) -> np.ndarray:
        """(B, E) mol of each element in sample + released gas + volatilized solid."""
        return state_amounts @ self.solid_elements + gas @ self.gas_elements + lost @ self.solid_elements


def _pad(terms: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged (phase index, coefficient) lists as padded arrays (index, coeff, count)."""
    width = max([len(t) for t in terms] + [1])
    idx = np.zeros((len(terms), width), dtype=np.int64)
    coef = np.ones((len(terms), width))
    count = np.array([len(t) for t in terms], dtype=np.int64)
    for r, t in enumerate(terms):
        for j, (i, c) in enumerate(t):
            idx[r, j], coef[r, j] = i, c
    return idx, coef, count


def _gas_matrix(terms: list[list[tuple[int, float]]], n_gases: int) -> np.ndarray:
    out = np.zeros((len(terms), n_gases))
    for r, t in enumerate(terms):
        for g, c in t:
            out[r, g] = c
    return out


@numba.njit(cache=True, inline="always")
def _reacted(x):  # pragma: no cover - compiled
    """1 - exp(-x) for x >= 0: the part of a first-order reactant used in a step of rate x
    time ``x``. Most ramp steps are slow (x < 1e-3 in 3 of 4): there the series to x^5
    gives it to rounding (the next term is x^6/720, relative 1.4e-18) without expm1."""
    if x < 1e-3:
        return x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x * (1.0 / 120.0)))))
    return -np.expm1(-x)


@numba.njit(cache=True, inline="always")
def _advance(n, b, T, step, offset, factor, tables, gas, lost, grain2):  # pragma: no cover - compiled
    """One step of ``step`` s at ``T`` K for sample ``b``: every reaction, evaporation, grain growth.

    ``tables`` is :meth:`ReactionNetwork._tables` (one tuple, so the call can be inlined).
    """
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, vol_idx, vol_table, grain_table,
     w_rxn, w_vol, w_grain) = tables
    ti = int(np.rint((T - T_GRID_MIN) / T_GRID_STEP))
    ti = min(max(ti, 0), grain_table.shape[0] - 1)
    row = ti + offset
    scaled = step * factor
    worlds = w_rxn.shape[0] > 0
    inv_T = 1.0 / (T_GRID_MIN + ti * T_GRID_STEP)
    for r in range(rate_table.shape[1]):
        kd = rate_table[row, r] * scaled
        if worlds:
            kd *= np.exp(w_rxn[b, r, 0] - w_rxn[b, r, 1] * inv_T)
        if kd > 0.0:
            if r_cnt[r] == 0:
                continue
            avail = np.inf
            for j in range(r_cnt[r]):
                avail = min(avail, n[b, r_idx[r, j]] / r_nu[r, j])
            if avail <= 0.0:
                continue  # a reactant is used up: nothing to do (the updates would add 0)
            xi = avail * _reacted(kd)
        elif kd < 0.0:
            if p_cnt[r] == 0:
                continue
            avail = np.inf
            for j in range(p_cnt[r]):
                avail = min(avail, n[b, p_idx[r, j]] / p_nu[r, j])
            if avail <= 0.0:
                continue
            xi = -avail * _reacted(-kd)
        else:
            continue
        for j in range(r_cnt[r]):
            n[b, r_idx[r, j]] = max(n[b, r_idx[r, j]] - r_nu[r, j] * xi, 0.0)
        for j in range(p_cnt[r]):
            n[b, p_idx[r, j]] = max(n[b, p_idx[r, j]] + p_nu[r, j] * xi, 0.0)
        for g in range(gas_coef.shape[1]):
            gas[b, g] += gas_coef[r, g] * xi
    for v in range(vol_idx.shape[0]):
        i = vol_idx[v]
        k_v = vol_table[v, ti] * (np.exp(w_vol[b, v, 0] - w_vol[b, v, 1] * inv_T) if worlds else 1.0)
        out = n[b, i] * _reacted(k_v * step)
        n[b, i] -= out
        lost[b, i] += out
    grain2[b] += grain_table[ti] * step * (np.exp(w_grain[b, 0] - w_grain[b, 1] * inv_T) if worlds else 1.0)


@numba.njit(cache=True, inline="always")
def _dwell(n, b, T, step, count, offset, factor, tables, gas, lost, grain2):  # pragma: no cover - compiled
    """``count`` equal steps of ``step`` s at ``T`` K (a dwell): the same as ``count`` calls
    of :func:`_advance` (bit for bit), with the reactions' and evaporation's shares computed
    once. The reaction update is spelled out here and in :func:`_advance` on purpose: as a
    shared inline helper per reaction it made the serial build 10x slower, and as a shared
    step over arrays of shares 20 % slower on threads (numba 0.68, measured)."""
    (rate_table, r_idx, r_nu, r_cnt, p_idx, p_nu, p_cnt, gas_coef, vol_idx, vol_table, grain_table,
     w_rxn, w_vol, w_grain) = tables
    ti = int(np.rint((T - T_GRID_MIN) / T_GRID_STEP))
    ti = min(max(ti, 0), grain_table.shape[0] - 1)
    row = ti + offset
    scaled = step * factor
    worlds = w_rxn.shape[0] > 0
    inv_T = 1.0 / (T_GRID_MIN + ti * T_GRID_STEP)
    share = np.empty(rate_table.shape[1])  # > 0 forward, < 0 backward, 0 none
    for r in range(rate_table.shape[1]):
        kd = rate_table[row, r] * scaled
        if worlds:
            kd *= np.exp(w_rxn[b, r, 0] - w_rxn[b, r, 1] * inv_T)
        share[r] = _reacted(kd) if kd > 0.0 else (-_reacted(-kd) if kd < 0.0 else 0.0)
    evaporated = np.empty(vol_idx.shape[0])
    for v in range(vol_idx.shape[0]):
        k_v = vol_table[v, ti] * (np.exp(w_vol[b, v, 0] - w_vol[b, v, 1] * inv_T) if worlds else 1.0)
        evaporated[v] = _reacted(k_v * step)
    growth = grain_table[ti] * step * (np.exp(w_grain[b, 0] - w_grain[b, 1] * inv_T) if worlds else 1.0)
    for _ in range(count):
        for r in range(rate_table.shape[1]):
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
            xi = avail * f
            for j in range(r_cnt[r]):
                n[b, r_idx[r, j]] = max(n[b, r_idx[r, j]] - r_nu[r, j] * xi, 0.0)
            for j in range(p_cnt[r]):
                n[b, p_idx[r, j]] = max(n[b, p_idx[r, j]] + p_nu[r, j] * xi, 0.0)
            for g in range(gas_coef.shape[1]):
                gas[b, g] += gas_coef[r, g] * xi
        for v in range(vol_idx.shape[0]):
            i = vol_idx[v]
            out = n[b, i] * evaporated[v]
            n[b, i] -= out
            lost[b, i] += out
        grain2[b] += growth


@numba.njit(cache=True, inline="always")
def _traces_range(lo, hi, n, T, dt, offset, factor, tables, gas, lost, grain2):  # pragma: no cover - compiled
    """Samples lo..hi-1 through their own temperature histories ``T`` (B, S) K, ``dt`` (B, S) s."""
    for b in range(lo, hi):
        for s in range(T.shape[1]):
            _advance(n, b, T[b, s], dt[b, s], offset[b], factor[b], tables, gas, lost, grain2)


@numba.njit(cache=True, inline="always")
def _programmes_range(lo, hi, n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                      grain2, steps):  # pragma: no cover - compiled
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
            _advance(n, b, T, dt, off, fac, tables, gas, lost, grain2)
        _dwell(n, b, dwell_T[b], dwell_h[b] * 3600.0 / dwell_steps, dwell_steps, off, fac, tables, gas, lost, grain2)
        dt = span * 60.0 / cool[b] / cool_steps
        for k in range(cool_steps):
            T = dwell_T[b] - span * (k + 0.5) / cool_steps
            _advance(n, b, T, dt, off, fac, tables, gas, lost, grain2)


# Big batches share chunks of samples out among threads (OpenMP), each running the inlined
# serial loop: 10k programmes in 17 ms on 2 threads. Small batches (the twin, the envs, the
# deploy path: one sample, in processes with threads, signals and forks) never enter a
# parallel region: a serial build, 6 us for one sample. Every kernel is compiled with
# error_model="numpy": no zero-division check on each division (every divisor is a
# stoichiometric coefficient > 0 or a constant), which made the serial build 3x slower.
CHUNK = 64  # samples per task
PARALLEL_BATCH = 1024  # samples from which the threaded kernels are used


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _traces_threaded(n, T, dt, offset, factor, tables, gas, lost, grain2):  # pragma: no cover - compiled
    for c in numba.prange((n.shape[0] + CHUNK - 1) // CHUNK):  # threads share out chunks of samples
        _traces_range(c * CHUNK, min(n.shape[0], (c + 1) * CHUNK), n, T, dt, offset, factor, tables,
                      gas, lost, grain2)


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _programmes_threaded(n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                         grain2, steps):  # pragma: no cover - compiled
    for c in numba.prange((n.shape[0] + CHUNK - 1) // CHUNK):
        _programmes_range(c * CHUNK, min(n.shape[0], (c + 1) * CHUNK), n, dwell_T, ramp, dwell_h, cool,
                          offset, factor, tables, gas, lost, grain2, steps)




@numba.njit(cache=True, error_model="numpy")
def _traces_serial(n, T, dt, offset, factor, tables, gas, lost, grain2):  # pragma: no cover - compiled
    _traces_range(0, n.shape[0], n, T, dt, offset, factor, tables, gas, lost, grain2)


@numba.njit(cache=True, error_model="numpy")
def _programmes_serial(n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost,
                       grain2, steps):  # pragma: no cover - compiled
    _programmes_range(0, n.shape[0], n, dwell_T, ramp, dwell_h, cool, offset, factor, tables, gas, lost, grain2,
                      steps)


def _traces_kernel(n, *args) -> None:
    (_traces_threaded if n.shape[0] >= PARALLEL_BATCH else _traces_serial)(n, *args)


def _programmes_kernel(n, *args) -> None:
    (_programmes_threaded if n.shape[0] >= PARALLEL_BATCH else _programmes_serial)(n, *args)
