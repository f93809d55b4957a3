"""Calibrating the chemistry: a lab's Arrhenius parameters from its own records, with their posterior.

A lab's reactions run at rates of their own (:mod:`.world`: each reaction's activation
energy and prefactor drawn around the catalogue's). What the lab can measure is the XRD of
what it fired. This module fits, for every reaction, the standard-normal coordinates of
the world prior (``world_prior.yaml``), at spread 1,

    Ea = Ea_nominal * (1 + ea_rel_sd * z_Ea),    ln A = ln A_nominal + ln_a_sd * z_A,

to the measured weight fractions: the maximum a posteriori point of the XRD's likelihood
(:mod:`.xrd_likelihood`: Gaussian on the detected phases, renormalised as the scan is; a
phase reported absent is censored at the detection limit; sd estimated from the fit and
never below the XRD's own) times the prior N(0, 1), found by Levenberg-Marquardt
(``scipy.optimize.least_squares``, four starts) with a Jacobian from one batched firing
per step (every parameter's finite difference fired together). The Laplace approximation
there (Gauss-Newton inverse Hessian) starts Metropolis chains that sample the posterior
(:mod:`.posterior_chains`), all chains fired in one batched call per step: the 95 %
intervals are the sample's quantiles. What
the records cannot tell apart stays at the prior, with the prior's width.

Assumed, and said in :attr:`KineticPosterior.assumptions`: each record fired its recipe's
programmed profile (or, given them, its firing's logged thermocouple trace) shifted by its
furnace's offset (fitted beside the rates; drift left in the residual) from the exact
recipe amounts (impurities and moisture left in the residual); grain growth and
evaporation keep their nominal rates. ``synthgap calibrate DIR --kinetics`` uses the logged
traces when ``DIR`` has them (``traces.csv``).

Units: Ea J/mol, A 1/s, weight fractions 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, Recipe
from synthgap.envs.chemistry.firing import TemperatureTrace, fire, register_world
from synthgap.envs.chemistry.system_model import ReactionSpec
from synthgap.envs.chemistry.tables import R_GAS
from synthgap.envs.chemistry.world_rates import WorldKinetics

from .measurement import XRD_SD
from .params import FURNACE_OFFSET_SD_K
from .posterior_chains import CHAIN_STEPS, CHAINS, posterior_intervals
from .world import WorldPrior, world_prior
from .xrd_likelihood import detected_misfit, xrd_residuals

__all__ = ["KineticParameter", "KineticPosterior", "fit_kinetics", "records_from_table", "traces_from_table",
           "write_belief", "CalibrationError"]

FD_STEP = 1e-2  # finite-difference step in the prior's standard-normal coordinates
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
N_STARTS = 4  # optimiser starts: the nominal point and three prior draws
STARTS_SEED = 20261202


class CalibrationError(ValueError):
    """Records that cannot calibrate the chemistry (none usable, another system)."""


@dataclass(frozen=True)
class KineticParameter:
    """One fitted Arrhenius parameter, in physical units.

    Attributes:
        reaction: the reaction's equation.
        name: ``"activation_energy"`` (J/mol) or ``"prefactor"`` (1/s).
        nominal: the catalogue's value (the prior's centre).
        estimate: the posterior's maximum.
        low, high: the 95 % interval (Laplace; for the prefactor, log-normal).
        prior_low, prior_high: the prior's 95 % interval, to compare.
    """

    reaction: str
    name: str
    nominal: float
    estimate: float
    low: float
    high: float
    prior_low: float
    prior_high: float

    @property
    def learned(self) -> float:
        """How much narrower than the prior the posterior is: 1 - width / prior width (0: nothing learned)."""
        if self.name == "prefactor":
            return 1.0 - math.log(self.high / self.low) / math.log(self.prior_high / self.prior_low)
        return 1.0 - (self.high - self.low) / (self.prior_high - self.prior_low)


@dataclass(frozen=True)
class KineticPosterior:
    """The posterior of a lab's reaction rates (maximum, Laplace covariance, sampled intervals).

    Attributes:
        nominal: the system calibrated (its reactions, in order, are the parameters').
        z: (2R,) posterior maximum in the prior's standard-normal coordinates, per reaction
            (z_Ea, z_A).
        covariance: (2R, 2R) their covariance.
        residual_sd: the XRD residual sd the fit found (weight fraction).
        n_records: records used.
        prior: the world prior the coordinates refer to.
        assumptions: what the fit assumed about what the records do not hold.
        furnace_offsets_K: furnace index -> its fitted calibration offset, K (thermocouple high).
    """

    nominal: ChemicalSystem
    z: np.ndarray
    covariance: np.ndarray
    residual_sd: float
    n_records: int
    prior: WorldPrior
    assumptions: tuple[str, ...] = field(default=())
    furnace_offsets_K: dict[int, float] = field(default_factory=dict)  # the nuisance parameters' maximum
    z_low: np.ndarray | None = None  # (2R,) 95 % interval in the prior's coordinates (Markov chains)
    z_high: np.ndarray | None = None
    acceptance: float = math.nan  # the chains' acceptance rate (0.2-0.4 is a chain that moves)

    def _physical(self, z_ea: float, z_a: float, r: ReactionSpec) -> tuple[float, float]:
        return (r.activation_energy * max(1.0 + self.prior.ea_rel_sd * z_ea, 0.5),
                r.prefactor * math.exp(self.prior.ln_a_sd * z_a))

    @property
    def parameters(self) -> tuple[KineticParameter, ...]:
        """Every reaction's activation energy and prefactor with its interval."""
        out = []
        sd = np.sqrt(np.diag(self.covariance))
        z_low = self.z_low if self.z_low is not None else self.z - Z95 * sd
        z_high = self.z_high if self.z_high is not None else self.z + Z95 * sd
        for i, r in enumerate(self.nominal.reactions):
            eq = r.reaction.equation
            for j, name in enumerate(("activation_energy", "prefactor")):
                k = 2 * i + j
                lo, hi, mid = z_low[k], z_high[k], self.z[k]
                vals = [self._physical(v if j == 0 else 0.0, v if j == 1 else 0.0, r)[j]
                        for v in (mid, lo, hi, -Z95, Z95)]
                out.append(KineticParameter(eq, name, (r.activation_energy, r.prefactor)[j], *vals))
        return tuple(out)

    def belief(self) -> ChemicalSystem:
        """The calibrated model: the nominal system with the posterior's most probable rates."""
        rates = (self._physical(self.z[2 * i], self.z[2 * i + 1], r) for i, r in enumerate(self.nominal.reactions))
        reactions = tuple(replace(r, activation_energy=Ea, prefactor=A)  # the rate law stays the nominal's
                          for r, (Ea, A) in zip(self.nominal.reactions, rates, strict=True))
        belief = self.nominal.with_rates(reactions, self.nominal.grain_growth, dict(self.nominal.volatiles))
        register_world(belief, self.nominal)  # fired through the nominal's compiled network
        return belief

    def to_dict(self) -> dict:
        """Plain data (JSON): the parameters with their intervals, the fit's figures and assumptions."""
        return {"system": self.nominal.name, "records": self.n_records, "residual_sd": self.residual_sd,
                "assumptions": list(self.assumptions),
                "parameters": [{"reaction": p.reaction, "parameter": p.name, "unit": "J/mol"
                                if p.name == "activation_energy" else "1/s", "nominal": p.nominal,
                                "estimate": p.estimate, "low_95": p.low, "high_95": p.high,
                                "prior_low_95": p.prior_low, "prior_high_95": p.prior_high,
                                "learned": p.learned} for p in self.parameters]}


def write_belief(posterior: KineticPosterior, system_file: str, out) -> Path:
    """Write the calibrated model as a system file: ``system_file`` (the nominal's YAML, or a
    bundled system's name) with each reaction's most probable Ea (kJ/mol) and A (1/s) and a
    ``source`` naming the calibration and the 95 % intervals. Every command, env and planner
    that takes a system takes the file (``--system FILE``).

    Raises:
        CalibrationError: ``system_file`` is not the posterior's system (other reactions).
    """
    from synthgap.envs.chemistry.catalogue import bundled_system_names, system_file_path, write_system_file
    from synthgap.envs.userfiles import load_user_file

    src = system_file_path(system_file) if system_file in bundled_system_names() else system_file
    data = load_user_file(src)
    reactions = data.get("reactions") if isinstance(data, dict) else None
    if not isinstance(reactions, list) or len(reactions) != len(posterior.nominal.reactions):
        raise CalibrationError(f"{system_file}: not the system calibrated ({posterior.nominal.name}, "
                               f"{len(posterior.nominal.reactions)} reactions)")
    belief = posterior.belief()
    params = posterior.parameters
    for i, (entry, r) in enumerate(zip(reactions, belief.reactions, strict=True)):
        ea, a = params[2 * i], params[2 * i + 1]
        entry["activation_energy"] = round(float(r.activation_energy) / 1e3, 3)
        entry["prefactor"] = float(f"{float(r.prefactor):.4g}")
        entry["source"] = (f"calibrated from {posterior.n_records} records (synthgap calibrate --kinetics): "
                           f"95 % interval Ea {ea.low / 1e3:.1f}-{ea.high / 1e3:.1f} kJ/mol, "
                           f"A {a.low:.3g}-{a.high:.3g} 1/s; "
                           f"nominal {ea.nominal / 1e3:.1f} kJ/mol, {a.nominal:.3g} 1/s")
    data["description"] = (f"Calibrated belief of {posterior.nominal.name} from {posterior.n_records} lab records "
                           f"(reaction rates fitted; XRD residual sd {posterior.residual_sd:.4f}). "
                           + str(data.get("description", "")))
    return write_system_file(data, out)


def records_from_table(path) -> list:
    """The records ``fit_kinetics`` needs (recipe, XRD weight fractions, furnace) from a
    ``samples.csv`` that ``synthgap lab run --out DIR`` (or a real lab's export in that
    format) writes; samples without an XRD result are skipped.

    Raises:
        CalibrationError: a table without the recipe, furnace or ``xrd.*`` columns.
    """
    from types import SimpleNamespace

    import pandas as pd

    from synthgap.envs.chemistry.recipe import CONTINUOUS_FIELDS

    df = pd.read_csv(path)
    need = ["target", "precursors", "atmosphere", "furnace", *(f"cmd.{k}" for k in CONTINUOUS_FIELDS)]
    missing = [c for c in need if c not in df.columns]
    xrd = [c for c in df.columns if c.startswith("xrd.")]
    if missing or not xrd:
        raise CalibrationError(f"{path}: not a samples table of lab records (missing "
                               f"{', '.join(missing) or 'xrd.* columns'})")
    out = []
    for _, row in df.iterrows():
        fractions = {c[4:]: float(row[c]) for c in xrd if pd.notna(row[c])}
        if not fractions or not sum(fractions.values()) > 0:
            continue
        recipe = Recipe(row["target"], tuple(str(row["precursors"]).split("+")), atmosphere=row["atmosphere"],
                        **{k: float(row[f"cmd.{k}"]) for k in CONTINUOUS_FIELDS})
        out.append(SimpleNamespace(recipe=recipe, xrd_phase_fractions=fractions, furnace=int(row["furnace"]),
                                   firing_id=str(row["firing_id"]) if "firing_id" in df.columns else ""))
    return out


def traces_from_table(path, records: Sequence) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Each record's logged thermocouple trace, (time s, K at the end of each step), from a
    ``traces.csv`` (long format: firing_id, step, time_s, thermocouple_K; what ``synthgap lab
    run --out DIR`` writes beside ``samples.csv``); None if the table is absent or lacks a
    record's firing (the fit then uses the programmes)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    if not {"firing_id", "step", "time_s", "thermocouple_K"} <= set(df.columns):
        raise CalibrationError(f"{path}: not a traces table (needs firing_id, step, time_s, thermocouple_K)")
    logs = {str(f): (g["time_s"].to_numpy(float), g["thermocouple_K"].to_numpy(float))
            for f, g in df.sort_values(["firing_id", "step"]).groupby("firing_id")}
    usable = [r for r in records if getattr(r, "xrd_phase_fractions", None) and r.recipe is not None]
    if not usable or any(getattr(r, "firing_id", "") not in logs for r in usable):
        return None
    return [logs[r.firing_id] for r in usable]


def _worlds(system: ChemicalSystem, zs: np.ndarray, prior: WorldPrior, batch: int) -> WorldKinetics:
    """(K, 2R) parameter vectors -> WorldKinetics for K x ``batch`` samples (each vector repeated)."""
    ea0 = np.array([r.activation_energy for r in system.reactions])
    z = zs.reshape(len(zs), len(system.reactions), 2)
    ln_a = prior.ln_a_sd * z[..., 1]
    dea_k = ea0 * (np.maximum(1.0 + prior.ea_rel_sd * z[..., 0], 0.5) - 1.0) / R_GAS
    rel = np.repeat(np.stack([ln_a, dea_k], axis=-1), batch, axis=0)
    return WorldKinetics(rel, np.zeros((len(rel), len(system.volatiles), 2)), np.zeros((len(rel), 2)))


def _usable(system: ChemicalSystem, records: Sequence) -> tuple[list[Recipe], np.ndarray, tuple[str, ...], list[int]]:
    rows = [r for r in records if getattr(r, "xrd_phase_fractions", None) and r.recipe is not None]
    if not rows:
        raise CalibrationError("no record with an XRD result to calibrate the chemistry from")
    if any(r.recipe.target not in system.targets for r in rows):
        raise CalibrationError(f"records of another system: targets {sorted({r.recipe.target for r in rows})}, "
                               f"{system.name} makes {sorted(system.targets)}")
    phases = tuple(system.solids)
    measured = np.array([[r.xrd_phase_fractions.get(p, 0.0) for p in phases] for r in rows])
    return [r.recipe for r in rows], measured, phases, [int(r.furnace) for r in rows]


def _padded_trace(traces: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(time s at the end of each step, K at the end of each step) per record -> (n, S)
    temperature of each step and step durations, shorter ones padded with steps of zero
    duration. A step's temperature is the mean of its two ends (the first step's start is
    its end): a log holds end-of-step readings, and a slow cool falls 50 K in one step, so
    reading the end as the step's temperature biases every rate there (the twin fires its
    chemistry on the same step means)."""
    width = max(len(t) for t, _ in traces)
    temp, dt = np.zeros((len(traces), width)), np.zeros((len(traces), width))
    for i, (t, k) in enumerate(traces):
        t, k = np.asarray(t, dtype=float), np.asarray(k, dtype=float)
        mean = 0.5 * (np.concatenate([k[:1], k[:-1]]) + k)
        temp[i, :len(k)], temp[i, len(k):] = mean, k[-1]
        dt[i, :len(t)] = np.diff(t, prepend=0.0)
    return temp, dt


def fit_kinetics(system: ChemicalSystem, records: Sequence, prior: WorldPrior | None = None,
                 offset_sd_K: float = FURNACE_OFFSET_SD_K,
                 traces: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 initial: np.ndarray | None = None, chains: int = CHAINS, steps: int = CHAIN_STEPS
                 ) -> KineticPosterior:
    """The posterior of ``system``'s reaction rates given ``records`` (SampleRecords with XRD): its
    maximum, the Laplace covariance there, and 95 % intervals from Metropolis chains.

    Each furnace's calibration offset (the thermocouple reads it high, so the sample sits
    that much below the setpoint) is fitted beside the rates, a nuisance parameter with the
    prior N(0, ``offset_sd_K``) and marginalised in the Laplace covariance. ``traces`` (one
    per record: the logged thermocouple's time s and K) replace the programmed profiles: the
    furnace's own response (lag, overshoot) then is not left in the residual; ``initial``
    ((n, P) mol, the solids' order of the system's network) replaces the recipes' exact
    amounts. ``chains`` x ``steps`` Metropolis steps give the intervals (about 5 s for 60
    records of BaTiO3 on one core).

    Raises:
        CalibrationError: no usable record, or records of another system.
    """
    from dataclasses import replace

    from scipy.optimize import least_squares

    from synthgap.envs.chemistry.recipe import RecipeBatch

    prior = prior if prior is not None else world_prior()
    recipes, measured, phases, furnaces = _usable(system, records)
    n, n_rates = len(recipes), 2 * len(system.reactions)
    f_index = {f: i for i, f in enumerate(sorted(set(furnaces)))}
    which = np.array([f_index[f] for f in furnaces])
    n_par = n_rates + len(f_index)
    dwell = np.array([r.dwell_temperature for r in recipes])
    batches: dict[int, RecipeBatch] = {}

    logged = _padded_trace(traces) if traces is not None else None
    if logged is not None and len(logged[0]) != n:
        raise CalibrationError(f"{len(logged[0])} traces for {n} records with XRD")

    def start(k: int) -> np.ndarray | None:
        return None if initial is None else np.tile(np.asarray(initial, dtype=float), (k, 1))

    def predict(vs: np.ndarray) -> np.ndarray:
        """(K, n_par) -> (K, n, P) predicted weight fractions, in one batched firing."""
        k = len(vs)
        batch = batches.get(k)
        if batch is None:
            batch = batches[k] = RecipeBatch.from_recipes(system, recipes * k, validate=False)
        offsets = offset_sd_K * vs[:, n_rates:][:, which]  # (K, n) K, thermocouple reads high
        worlds = _worlds(system, vs[:, :n_rates], prior, n)
        if logged is None:
            batch = replace(batch, dwell_temperature=(dwell[None, :] - offsets).ravel())
            fired = fire(system, batch, worlds=worlds, initial=start(k))
        else:
            temp = (logged[0][None] - offsets[..., None]).reshape(k * n, -1)
            trace = TemperatureTrace(temp, np.tile(logged[1], (k, 1)))
            fired = fire(system, batch, trace=trace, worlds=worlds, initial=start(k))
        order = [fired.phases.index(p) for p in phases]
        return fired.phase_fractions[:, order].reshape(k, n, len(phases))

    def jacobian_data(v: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        res = xrd_residuals(predict(np.vstack([v, v + FD_STEP * np.eye(n_par)])), measured, s)
        jac = (res[1:] - res[0]) / FD_STEP  # (n_par, n, P)
        return res[0].ravel(), jac.reshape(n_par, -1).T

    cache: dict[tuple[bytes, float], tuple[np.ndarray, np.ndarray]] = {}

    def data(v: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Residuals (in sd ``s``, :func:`.xrd_likelihood.xrd_residuals`) at ``v`` and their Jacobian."""
        key = (v.tobytes(), s)
        if key not in cache:
            cache.clear()
            cache[key] = jacobian_data(v, s)
        return cache[key]

    def fit(start: np.ndarray, s: float):
        return least_squares(lambda x: np.concatenate([data(x, s)[0], x]), start,
                             jac=lambda x: np.vstack([data(x, s)[1], np.eye(n_par)]), method="lm")

    sd = max(2 * XRD_SD, 0.02)
    # several starts (the nominal and draws of the prior, seeded): the posterior can have more
    # than one mode where a trap reaction and the target's reaction trade places
    starts = [np.zeros(n_par), *np.random.default_rng(STARTS_SEED).standard_normal((N_STARTS - 1, n_par))]
    v = min((fit(x0, sd) for x0 in starts), key=lambda res: res.cost).x
    for _ in range(2):  # estimate the residual sd from the detected phases, refit with it
        misfit = detected_misfit(predict(v[None])[0], measured)
        sd = max(float(np.sqrt(misfit @ misfit / max(misfit.size - n_par, 1))), XRD_SD)
        v = fit(v, sd).x
    j = data(v, sd)[1]
    laplace = np.linalg.inv(j.T @ j + np.eye(n_par))

    def log_post(x: np.ndarray) -> np.ndarray:
        return -0.5 * np.sum(xrd_residuals(predict(x), measured, sd) ** 2, axis=(1, 2)) - 0.5 * np.sum(x**2, axis=1)

    low, high, acceptance, v = posterior_intervals(v, laplace, log_post, chains, steps)
    offsets = {f: float(offset_sd_K * v[n_rates + i]) for f, i in f_index.items()}
    fired_on = (("each record fired its firing's logged thermocouple trace (the means of its end-of-step "
                 "readings), shifted by its furnace's fitted offset (drift within a step left in the residual)")
                if traces is not None else
                ("each record fired its recipe's programmed profile, shifted by its furnace's fitted offset "
                 "(the furnace's lag and drift left in the residual)"))
    return KineticPosterior(system, v[:n_rates], laplace[:n_rates, :n_rates], sd, n, prior, (
        fired_on,
        "starting amounts: the recipe's exact amounts (impurities and moisture left in the residual)",
        "grain growth and evaporation at their nominal rates",
        f"prior: world_prior.yaml at spread 1 (Ea relative sd {prior.ea_rel_sd:g}, ln A sd {prior.ln_a_sd:g}); "
        f"furnace offsets N(0, {offset_sd_K:g} K)"), offsets, low[:n_rates], high[:n_rates], acceptance)
