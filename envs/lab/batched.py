"""Many labs at once: N campaigns' labs, each running one sample at a time, in one batched call.

:class:`BatchedLabs` is the lab of the native vector env (``synthgap/Campaign-v0`` through
``gymnasium.make_vec``). When a campaign has one sample in flight, the twin's event queue
only adds the chain's durations one after the other, so N such labs need no event queue:
each call runs one experiment in each of a set of labs, every step an array operation over
them. It keeps the twin's noise model (:mod:`.twin`, the same :class:`~.params.LabParams`)
and each lab's state between calls:

* the hidden world of each lab, drawn from its seed exactly as the twin's
  (:func:`~.world.draw_parameters`: the same seed gives the same world), its kinetics
  fired per sample (:class:`~synthgap.envs.chemistry.world_kinetics.WorldKinetics`);
* precursor lots (purity uniform in [purity_min, 1], hygroscopicity, ``samples_per_lot``
  dispenses each, impurity phases), the lab's humidity (daily sinusoid plus noise) at each
  dispense, dispensing noise;
* furnaces served in turn (the one idle longest first, :mod:`.firing_queue`'s rule), each
  with its calibration offset (drawn, then random-walked with lab time), the thermal model
  (lag, overshoot, drift, thermocouple noise, :func:`~.thermal.simulate_firings`) on the
  twin's firing grid (:mod:`.firing_grid`), a reference run before its first firing and
  every ``reference_every`` firings, breakdowns (exponential, calendar time: a firing
  under way fails, the furnace is repaired);
* station durations (gamma, cv ``duration_cv``) of the chain: robot moves, dispensing,
  milling, pressing, furnace loading, XRD and property measurement;
* measurement: the lab's :class:`~.measurement.MeasurementModel`.

What it leaves out, against the twin (one sample in flight per lab): queues at the stations
(there are none with one sample), a breakdown during a reference run (the twin re-queues
the load; here the furnace counts it with its idle breakdowns), the balance reading (only
what was dispensed matters to the chemistry) and the records (``BatchedResult`` holds what
an env needs). ``tests/lab/test_batched_labs.py`` compares its outcome distribution with
the twin's (two-sample tests, 1,000 samples).

Randomness: ONE ``numpy.random.Generator`` for every lab's noise (worlds come from each
lab's seed). Units: s, K, g, h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, RecipeBatch, TemperatureTrace, fire, network_for
from synthgap.envs.chemistry.discretisation import DWELL_STEPS, RAMP_STEPS
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE
from synthgap.envs.chemistry.stoichiometry import molar_mass, precursor_masses
from synthgap.envs.chemistry.tables import R_GAS
from synthgap.envs.chemistry.world_rates import WorldKinetics

from .firing_grid import REFERENCE_STANDARDS, recipe_firing_grids, reference_programme
from .materials import impurity_phases
from .params import DAY, LabParams
from .protocol import LabInputError
from .thermal import simulate_firings
from .world import DEFAULT_WORLD_SPREAD, draw_parameters, world_lab

__all__ = ["BatchedLabs", "BatchedResult"]


@dataclass(frozen=True)
class BatchedResult:
    """One experiment in each of B labs, as the labs report it (rows in the order asked).

    Attributes:
        performance: (B,) the measured property, the target's unit (NaN where failed).
        xrd: (B, P) measured weight fractions of the system's solids (``BatchedLabs.solids``; 0 where failed).
        failed: (B,) bool, the firing broke down (nothing measured).
        lab_hours: (B,) h, the sample's lab time from start to finish.
        humidity: (B,) relative humidity at the first dispense (0-1).
        wait_h: (B,) h the load waited for a furnace (reference runs, repairs).
        tc_dwell_mean_K, tc_dwell_std_K: (B,) K, the logged thermocouple over the dwell.
        true_target_fraction, true_performance: (B,) the noise-free sample (NaN where failed).
            PRIVILEGED: for tests and evaluation only.
    """

    performance: np.ndarray
    xrd: np.ndarray
    failed: np.ndarray
    lab_hours: np.ndarray
    humidity: np.ndarray
    wait_h: np.ndarray
    tc_dwell_mean_K: np.ndarray
    tc_dwell_std_K: np.ndarray
    true_target_fraction: np.ndarray
    true_performance: np.ndarray


class _Routes:
    """Every route (target, precursor set) of a system as arrays, in ``RecipeBatch`` route order
    (routes of target t start at ``offset[t]``): what the chain weighs and what it adds."""

    def __init__(self, system: ChemicalSystem, solids: tuple[str, ...], batch_mass_g: float) -> None:
        impurity = impurity_phases(system, network_for(system))
        precursors = list(system.precursors)
        rows: list[list[tuple[int, float, float, int, float]]] = []
        self.offset = []
        for target, spec in system.targets.items():
            self.offset.append(len(rows))
            n_target = batch_mass_g / molar_mass(system.phases[target].formula)
            for pre in spec.precursor_sets:
                row = []
                for p, m in precursor_masses(system, target, tuple(pre), batch_mass_g):
                    imp = impurity[p]
                    row.append((precursors.index(p), m, 1.0 / molar_mass(system.phases[p].formula) / n_target,
                                solids.index(imp) if imp is not None else -1,
                                1.0 / molar_mass(system.phases[imp].formula) / n_target if imp is not None else 0.0))
                rows.append(row)
        K = max(len(r) for r in rows)
        G = len(rows)
        self.offset = np.array(self.offset, dtype=np.int64)
        self.precursor = np.full((G, K), -1, dtype=np.int64)  # index into system.precursors
        self.mass_g = np.zeros((G, K))  # commanded g for batch_mass_g g of target, no excess
        self.mol_per_g = np.zeros((G, K))  # mol of precursor per mol of target intended, per g
        self.impurity_col = np.full((G, K), -1, dtype=np.int64)
        self.impurity_mol_per_g = np.zeros((G, K))
        for g, row in enumerate(rows):
            for k, (p, m, c, ic, icoef) in enumerate(row):
                self.precursor[g, k], self.mass_g[g, k], self.mol_per_g[g, k] = p, m, c
                self.impurity_col[g, k], self.impurity_mol_per_g[g, k] = ic, icoef
        self.precursor_col = np.array([solids.index(p) for p in precursors], dtype=np.int64)


class BatchedLabs:
    """N labs with the twin's noise model, one experiment per lab per call (see the module docstring).

    Args:
        system: the chemical system as the labs believe it (the nominal model).
        n_labs: how many labs (>= 1).
        n_furnaces: furnaces per lab (>= 1).
        config: the twin's parameters (default :class:`LabParams`); each lab's world scales them.
        world_spread: the hidden worlds' spread (:mod:`.world`; 0: the nominal world).
        seed: seed of the one generator of every lab's noise.

    Attributes:
        solids: the columns of :attr:`BatchedResult.xrd` (the reaction network's solids).
        clock_s: (N,) s, each lab's clock.
        lab_seeds: (N,) the seed each lab was drawn from (its world), -1 before :meth:`reset`.
    """

    def __init__(self, system: ChemicalSystem, n_labs: int, *, n_furnaces: int = 2, config: LabParams | None = None,
                 world_spread: float = DEFAULT_WORLD_SPREAD, seed: int = 0) -> None:
        for name, v in (("n_labs", n_labs), ("n_furnaces", n_furnaces)):
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                raise LabInputError(f"{name} must be an integer >= 1, got {v!r}")
        self.system = system
        self.config = c = config if config is not None else LabParams()
        if c.furnace_offsets_K is not None:
            raise LabInputError("BatchedLabs draws every lab's furnace offsets; furnace_offsets_K must be None")
        self.n, self.n_furnaces, self.world_spread = int(n_labs), int(n_furnaces), float(world_spread)
        draw_parameters(system, 0, self.world_spread)  # checks the spread
        self.rng = np.random.default_rng(seed)
        net = network_for(system)
        self.solids: tuple[str, ...] = net.solids
        self._routes = _Routes(system, self.solids, c.batch_mass_g)
        self._reaction_ea = np.array([[r.activation_energy, r.prefactor] for r in system.reactions]).reshape(-1, 2)
        self._volatile_ea = np.array(list(system.volatiles.values())).reshape(-1, 2)
        top = min(max(REFERENCE_STANDARDS.values()) + 25.0, c.furnace.max_temperature_K)
        self._reference_s = reference_programme(c.furnace.ambient_K, top).duration_s
        N, F, n_pre = self.n, self.n_furnaces, len(system.precursors)
        self.lab_seeds = np.full(N, -1, dtype=np.int64)
        self.clock_s = np.zeros(N)
        self.worlds = WorldKinetics.nominal(system, N)
        self._offset_sd, self._walk, self._drift_std = np.zeros(N), np.zeros(N), np.zeros(N)
        self._purity_min, self._hygroscopicity = np.ones(N), np.zeros(N)
        self._offset, self._offset_time = np.zeros((N, F)), np.zeros((N, F))
        self._idle_since, self._down_until = np.zeros((N, F)), np.zeros((N, F))
        self._next_break, self._since_reference = np.full((N, F), np.inf), np.zeros((N, F), dtype=np.int64)
        self._lot_purity, self._lot_water = np.ones((N, n_pre)), np.zeros((N, n_pre))
        self._lot_uses = np.zeros((N, n_pre), dtype=np.int64)

    # ------------------------------------------------------------------ labs
    def reset(self, index: np.ndarray, lab_seeds: np.ndarray) -> None:
        """Fresh labs at rows ``index``, each in the world of its seed (the twin's world for that seed)."""
        index = np.asarray(index, dtype=np.int64)
        lab_seeds = np.asarray(lab_seeds, dtype=np.int64)
        if index.shape != lab_seeds.shape:
            raise LabInputError(f"{index.size} labs to reset but {lab_seeds.size} seeds")
        c, rng, F = self.config, self.rng, self.n_furnaces
        draws = [draw_parameters(self.system, int(s), self.world_spread) for s in lab_seeds]
        B = index.size
        if B == 0:
            return
        self.lab_seeds[index] = lab_seeds
        self.worlds.reactions[index] = [_relative(d.reactions, self._reaction_ea) for d in draws]
        self.worlds.volatiles[index] = [_relative(list(d.volatiles.values()), self._volatile_ea) for d in draws]
        self.worlds.grain[index] = [_relative([d.grain], np.array([self.system.grain_growth]))[0] for d in draws]
        labs = [world_lab(c, d.scales) for d in draws]
        self._offset_sd[index] = [lab.offset_sd_K for lab in labs]
        self._walk[index] = [lab.offset_walk_K_per_sqrt_day for lab in labs]
        self._drift_std[index] = [lab.furnace.drift_std_K for lab in labs]
        self._purity_min[index] = [lab.purity_min for lab in labs]
        self._hygroscopicity[index] = [lab.hygroscopicity for lab in labs]
        self.clock_s[index] = 0.0
        self._offset[index] = self._offset_sd[index, None] * rng.standard_normal((B, F))
        self._offset_time[index] = 0.0
        self._idle_since[index] = np.arange(F) * 1e-9  # furnace 0 has waited longest
        self._down_until[index] = 0.0
        self._next_break[index] = (rng.exponential(c.mtbf_h * 3600.0, (B, F)) if math.isfinite(c.mtbf_h)
                                   else np.inf)
        self._since_reference[index] = c.reference_every
        self._lot_uses[index] = 0
        self._new_lots(index[:, None].repeat(self._lot_uses.shape[1], 1),
                       np.arange(self._lot_uses.shape[1])[None, :].repeat(B, 0))

    def _new_lots(self, rows: np.ndarray, precursors: np.ndarray) -> None:
        rng = self.rng
        self._lot_purity[rows, precursors] = rng.uniform(self._purity_min[rows], 1.0)
        self._lot_water[rows, precursors] = self._hygroscopicity[rows] * rng.uniform(0.5, 1.5, rows.shape)
        self._lot_uses[rows, precursors] = 0

    def _duration(self, mean_s: np.ndarray) -> np.ndarray:
        c = self.config
        mean_s = np.asarray(mean_s, dtype=float)
        if not c.stochastic or c.duration_cv == 0:
            return mean_s
        k = 1.0 / c.duration_cv**2
        return self.rng.gamma(k, mean_s / k)

    # ------------------------------------------------------------------ one experiment per lab
    def run(self, index: np.ndarray, batch: RecipeBatch) -> BatchedResult:
        """One experiment in each lab of ``index`` (B,), recipe ``batch`` row by row (valid
        recipes of the system: the env decodes them from actions); the labs' clocks advance."""
        index = np.asarray(index, dtype=np.int64)
        if len(batch) != index.size:
            raise LabInputError(f"{len(batch)} recipes for {index.size} labs")
        if np.unique(index).size != index.size:
            raise LabInputError("each lab runs one experiment per call: an index appears twice")
        if index.size and (self.lab_seeds[index] < 0).any():
            raise LabInputError("reset() a lab before running an experiment in it")
        c = self.config
        t = self.clock_s[index].copy()
        started = t.copy()
        t += self._duration(np.full(index.size, c.robot_move_s))  # rack -> balance
        initial, humidity, t = self._dispense(index, batch, t)
        t += self._duration(c.mill_overhead_s + batch.milling_time * 3600.0)
        t += self._duration(np.full(index.size, c.press_s)) + self._duration(np.full(index.size, c.robot_move_s))
        furnace, start = self._take_furnace(index, t)
        wait = start - t
        sp, dt = recipe_firing_grids(batch.dwell_temperature, batch.ramp_rate, batch.dwell_time, batch.cooling_rate,
                                     c.furnace.tau_s, ROOM_TEMPERATURE)  # the programme of the twin's front-end
        offset = self._walk_offset(index, furnace, start)
        true_K, tc_K = simulate_firings(c.furnace, offset, self._drift_std[index], sp, dt, self.rng)
        t_end = np.cumsum(dt, axis=1)
        end = start + self._duration(np.full(index.size, c.furnace_load_s)) + t_end[:, -1]
        failed, end = self._breakdowns(index, furnace, end)
        self._idle_since[index, furnace] = np.where(failed, self._down_until[index, furnace], end)
        mean_K, std_K = _dwell_summary(tc_K, t_end, np.where(failed, end - start, np.inf))
        prev = np.concatenate([np.full((index.size, 1), c.furnace.ambient_K), true_K[:, :-1]], axis=1)
        fired = fire(self.system, batch, trace=TemperatureTrace(0.5 * (prev + true_K), dt), initial=initial,
                     worlds=self.worlds.take(index))
        t = end
        ok = ~failed
        n_ok = int(ok.sum())
        for mean_s in (c.robot_move_s, c.xrd_s, c.property_s):  # furnace -> XRD, the scan, the property
            t[ok] += self._duration(np.full(n_ok, mean_s))
        m = c.measurement
        xrd = m.xrd(fired.phase_fractions, self.rng.standard_normal(fired.phase_fractions.shape))
        perf = m.properties(fired.performance, self.rng.standard_normal(index.size))
        xrd[failed] = 0.0
        self.clock_s[index] = t
        nan = np.where(failed, np.nan, 1.0)
        return BatchedResult(perf * nan, xrd, failed, (t - started) / 3600.0, humidity, wait / 3600.0, mean_K, std_K,
                             fired.target_fraction * nan, fired.performance * nan)

    def _dispense(self, index: np.ndarray, batch: RecipeBatch, t: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weigh each route's precursors in turn: (B, P) mol per mol of target intended (dry,
        impurities included), the humidity at the first dispense, the clock after."""
        c, R, rng = self.config, self._routes, self.rng
        B = index.size
        route = R.offset[batch.target] + batch.precursor_set
        initial = np.zeros((B, len(self.solids)))
        humidity = np.full(B, np.nan)
        rows = np.arange(B)
        for k in range(R.precursor.shape[1]):
            p = R.precursor[route, k]
            on = p >= 0
            if not on.any():
                continue
            ix, r, pk = index[on], rows[on], p[on]
            t[on] += self._duration(np.full(ix.size, c.dispense_s))
            used_up = self._lot_uses[ix, pk] >= c.samples_per_lot
            if used_up.any():
                self._new_lots(ix[used_up], pk[used_up])
            self._lot_uses[ix, pk] += 1
            day = 2.0 * np.pi * (t[on] / DAY - 0.375)  # peak at 15:00
            h = np.clip(c.humidity_mean + c.humidity_amplitude * np.sin(day)
                        + c.humidity_sd * rng.standard_normal(ix.size), 0.02, 0.98)
            if k == 0:
                humidity[on] = h
            commanded = R.mass_g[route[on], k] * np.where(k == 0, 1.0 + batch.excess[on], 1.0)
            dispensed = commanded * (1.0 + c.dispense_rel_sd * rng.standard_normal(ix.size))
            dry = dispensed * (1.0 - self._lot_water[ix, pk] * h)
            purity = self._lot_purity[ix, pk]
            initial[r, R.precursor_col[pk]] += dry * purity * R.mol_per_g[route[on], k]
            imp = R.impurity_col[route[on], k]
            has = imp >= 0
            initial[r[has], imp[has]] += (dry * (1.0 - purity) * R.impurity_mol_per_g[route[on], k])[has]
        return initial, humidity, t

    def _take_furnace(self, index: np.ndarray, queued: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The furnace each load goes to and when its firing starts, s (as the twin's queue: the
        furnace idle longest among those not under repair, else the first repaired; a reference
        run first when one is due; a furnace that breaks down during it is repaired and the
        load goes back to the queue)."""
        c = self.config
        furnace = np.zeros(index.size, dtype=np.int64)
        start = np.zeros(index.size)
        todo = np.arange(index.size)
        queued = queued.copy()
        while todo.size:
            ix, q = index[todo], queued[todo]
            self._idle_breakdowns(ix, q)
            down = self._down_until[ix]
            up = down <= q[:, None]
            f = np.where(up.any(axis=1), np.argmin(np.where(up, self._idle_since[ix], np.inf), axis=1),
                         np.argmin(down, axis=1))
            begin = np.maximum(q, down[np.arange(ix.size), f])
            due = (self._since_reference[ix, f] >= c.reference_every) if c.reference_every else np.zeros(ix.size, bool)
            begin[due] += self._duration(np.full(int(due.sum()), c.furnace_load_s)) + self._reference_s
            nb = self._next_break[ix, f]
            broke = due & (nb < begin)  # broke down during the reference run: repaired, the load re-queued
            if broke.any():
                self._repair(ix[broke], f[broke], nb[broke])
                self._idle_since[ix[broke], f[broke]] = self._down_until[ix[broke], f[broke]]
                queued[todo[broke]] = nb[broke]
            done = ~broke
            self._since_reference[ix[done & due], f[done & due]] = 0
            self._since_reference[ix[done], f[done]] += 1
            furnace[todo[done]], start[todo[done]] = f[done], begin[done]
            todo = todo[broke]
        return furnace, start

    def _repair(self, ix: np.ndarray, furnace: np.ndarray, broke_s: np.ndarray) -> None:
        """Furnaces that broke down at ``broke_s`` s: repaired (gamma around ``repair_h``), the next failure drawn."""
        c = self.config
        repaired = broke_s + self._duration(np.full(ix.size, c.repair_h * 3600.0))
        self._down_until[ix, furnace] = repaired
        self._next_break[ix, furnace] = repaired + self.rng.exponential(c.mtbf_h * 3600.0, ix.size)

    def _idle_breakdowns(self, index: np.ndarray, until: np.ndarray) -> None:
        """Breakdowns of idle furnaces before ``until`` (B,) s: each repaired, then the next drawn."""
        while True:
            nb = self._next_break[index]
            hit = nb < until[:, None]
            if not hit.any():
                return
            r, f = np.nonzero(hit)
            self._repair(index[r], f, nb[r, f])
            self._idle_since[index[r], f] = self._down_until[index[r], f]

    def _breakdowns(self, index: np.ndarray, furnace: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which firings (ending at ``end`` (B,) s) their furnace broke down in, (B,) bool, and
        when (B,) s (the furnace is then repaired)."""
        nb = self._next_break[index, furnace]
        failed = nb < end
        if failed.any():
            self._repair(index[failed], furnace[failed], nb[failed])
        return failed, np.where(failed, nb, end)

    def _walk_offset(self, index: np.ndarray, furnace: np.ndarray, now: np.ndarray) -> np.ndarray:
        """Random-walk each furnace's offset up to ``now``; the offsets (B,) K."""
        days = (now - self._offset_time[index, furnace]) / DAY
        self._offset[index, furnace] += self._walk[index] * np.sqrt(np.maximum(days, 0.0)) * self.rng.standard_normal(
            index.size)
        self._offset_time[index, furnace] = now
        return self._offset[index, furnace]


def _relative(world: list[tuple[float, float]] | tuple[tuple[float, float], ...], nominal: np.ndarray) -> np.ndarray:
    """(K, 2) ln(A / A0) and (Ea - Ea0) / R, K, of K Arrhenius pairs (Ea J/mol, A) against ``nominal`` (K, 2)."""
    w = np.asarray(world, dtype=float).reshape(-1, 2)
    return np.stack([np.log(w[:, 1] / nominal[:, 1]), (w[:, 0] - nominal[:, 0]) / R_GAS], axis=1)


def _dwell_summary(tc_K: np.ndarray, t_end: np.ndarray, logged_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd, K, of the thermocouple (B, S) over each programme's dwell steps logged
    before ``logged_s`` (B,) s (a failed firing's log stops at the breakdown), as
    :meth:`~.records.FurnaceLog.summary` (all logged steps when none of the dwell's is)."""
    S = tc_K.shape[1]
    dwell = np.zeros(S, dtype=bool)
    dwell[RAMP_STEPS:RAMP_STEPS + DWELL_STEPS] = True
    logged = t_end <= logged_s[:, None]
    use = logged & dwell[None, :]
    use = np.where(use.any(axis=1, keepdims=True), use, logged)
    n = np.maximum(use.sum(axis=1), 1)
    mean = (tc_K * use).sum(axis=1) / n
    std = np.sqrt((((tc_K - mean[:, None]) * use) ** 2).sum(axis=1) / n)
    return mean, std

