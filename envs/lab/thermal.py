"""Furnace thermal physics: the single source of truth for the twin and the emulators.

Model (all temperatures in K, times in s)::

    y          controlled thermocouple temperature (noise-free), regulated to the setpoint
    e = y - r  tracking error against the target r = max(setpoint, ambient + offset)
    e'' + 2 zeta omega e' + omega^2 e = 0        (second-order response, exact step)
    d' = -theta d + sigma xi(t)                   (Ornstein-Uhlenbeck drift, exact step)

    thermocouple_K = y + noise_K * N(0, 1)        (what the controller displays / regulates)
    true_K         = y - offset_K + d             (what the sample actually experiences)

Sign convention of the calibration offset: the thermocouple reads ``offset_K`` *above*
the sample. The controller regulates the thermocouple reading to the setpoint, so at
steady state the sample sits at ``setpoint - offset_K`` (plus the zero-mean drift).

The second-order parameters come from ``tau_s`` and ``overshoot``: the damping ratio
``zeta`` gives a step overshoot of ``overshoot`` (fraction of the step, 0 = critically
damped) and ``omega = 1 / (zeta * tau_s)`` makes ``tau_s`` the time constant of the
decaying envelope. A ramp of the setpoint produces a lag during the ramp and an
overshoot when the ramp stops.

The drift ``d`` is time-correlated: stationary standard deviation
``drift_sigma_K / sqrt(2 * drift_theta_per_s)``, correlation time ``1 / drift_theta_per_s``.
It models gradients the controller cannot see (it acts on the sample, not the
thermocouple). Both noise sources are drawn from the injected ``numpy.random.Generator``,
so the same seed gives identical arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from synthgap.envs.chemistry.limits import FURNACE_MAX_TEMPERATURE_K
from synthgap.envs.chemistry.recipe import ROOM_TEMPERATURE

__all__ = ["FURNACE_OFFSET_SD_K", "FurnaceParams", "FurnaceState", "FurnaceThermalModel", "simulate_firings"]

#: Spread (1 sigma, K) of furnace calibration offsets in a lab: between furnaces and as
#: thermocouples age. The twin draws offsets from it; the reward's process window and the
#: benchmark's oracle judge a recipe's robustness against it.
FURNACE_OFFSET_SD_K = 10.0


@dataclass(frozen=True)
class FurnaceParams:
    """Physical parameters of one furnace.

    Attributes:
        tau_s: envelope time constant of the thermal response, s (> 0).
        overshoot: fractional overshoot of a setpoint step, in [0, 1). 0 = no overshoot.
        offset_K: thermocouple calibration offset, K; the thermocouple reads this much
            above the sample. Steady-state sample temperature = setpoint - offset_K.
        drift_sigma_K: OU diffusion coefficient of the sample drift, K per sqrt(s)
            (stationary std is ``drift_sigma_K / sqrt(2 * drift_theta_per_s)``, K).
        drift_theta_per_s: OU mean-reversion rate, 1/s (> 0).
        noise_K: standard deviation of the thermocouple white noise, K (>= 0).
        max_temperature_K: highest setpoint the furnace can physically reach, K (default
            :data:`~synthgap.envs.chemistry.limits.FURNACE_MAX_TEMPERATURE_K`).
        ambient_K: ambient temperature, K; the furnace cannot cool below it.
    """

    tau_s: float = 60.0
    overshoot: float = 0.05
    offset_K: float = 3.0
    drift_sigma_K: float = 0.2
    drift_theta_per_s: float = 0.01
    noise_K: float = 0.3
    max_temperature_K: float = FURNACE_MAX_TEMPERATURE_K
    ambient_K: float = ROOM_TEMPERATURE

    def __post_init__(self) -> None:
        checks = {
            "tau_s": self.tau_s > 0,
            "overshoot": 0.0 <= self.overshoot < 1.0,
            "drift_sigma_K": self.drift_sigma_K >= 0,
            "drift_theta_per_s": self.drift_theta_per_s > 0,
            "noise_K": self.noise_K >= 0,
            "max_temperature_K": self.max_temperature_K > self.ambient_K,
            "ambient_K": self.ambient_K > 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not (ok and math.isfinite(value)):
                raise ValueError(f"FurnaceParams.{name}={value!r} is out of range")
        if not math.isfinite(self.offset_K):
            raise ValueError(f"FurnaceParams.offset_K={self.offset_K!r} is not finite")

    def with_offset(self, offset_K: float) -> FurnaceParams:
        """The same furnace with another calibration offset, K (a thermocouple that aged);
        only the new offset is checked."""
        if not math.isfinite(offset_K):
            raise ValueError(f"FurnaceParams.offset_K={offset_K!r} is not finite")
        new = object.__new__(FurnaceParams)
        new.__dict__.update(self.__dict__, offset_K=float(offset_K))  # frozen: no __setattr__
        return new

    @property
    def zeta(self) -> float:
        """Damping ratio giving the configured step overshoot (1.0 when overshoot == 0)."""
        if self.overshoot == 0.0:
            return 1.0
        log_os = math.log(self.overshoot)
        return -log_os / math.sqrt(math.pi**2 + log_os**2)

    @property
    def omega_per_s(self) -> float:
        """Natural angular frequency, rad/s: ``1 / (zeta * tau_s)``."""
        return 1.0 / (self.zeta * self.tau_s)

    @property
    def drift_std_K(self) -> float:
        """Stationary standard deviation of the OU drift, K."""
        return self.drift_sigma_K / math.sqrt(2.0 * self.drift_theta_per_s)


@dataclass
class FurnaceState:
    """Mutable state: controlled temperature y (K), its rate (K/s), drift d (K), time (s)."""

    controlled_K: float
    rate_K_per_s: float
    drift_K: float
    time_s: float


class FurnaceThermalModel:
    """Stateful furnace simulator (see module docstring for the equations).

    Args:
        params: physical parameters.
        rng: the random generator all noise is drawn from (inject a seeded one).
        initial_K: starting sample temperature, K (default: ambient). The furnace starts
            at rest (zero rate, zero drift).
    """

    def __init__(self, params: FurnaceParams, rng: np.random.Generator,
                 initial_K: float | None = None) -> None:
        self.params = params
        self.rng = rng
        self.state = FurnaceState(0.0, 0.0, 0.0, 0.0)
        self.reset(initial_K)

    def reset(self, initial_K: float | None = None) -> None:
        """Put the furnace at rest with the sample at ``initial_K`` (default ambient), K."""
        true_K = self.params.ambient_K if initial_K is None else float(initial_K)
        if not math.isfinite(true_K):
            raise ValueError(f"initial temperature {initial_K!r} is not finite")
        self.state = FurnaceState(true_K + self.params.offset_K, 0.0, 0.0, 0.0)

    @property
    def true_K(self) -> float:
        """Current noise-free sample temperature including drift, K."""
        return self.state.controlled_K - self.params.offset_K + self.state.drift_K

    def _check(self, setpoints_K: np.ndarray, dt_s: np.ndarray) -> None:
        if setpoints_K.shape != dt_s.shape or setpoints_K.ndim != 1:
            raise ValueError(
                f"setpoints_K and dt_s must be 1-D of equal shape, got "
                f"{setpoints_K.shape} and {dt_s.shape}")
        problem = _check_steps(setpoints_K, dt_s, self.params.max_temperature_K)
        if problem == 1:
            raise ValueError("setpoints_K contains NaN or inf")
        if problem == 2:
            raise ValueError(
                f"setpoint {float(setpoints_K.max())} K above the furnace maximum "
                f"{self.params.max_temperature_K} K")
        if problem == 3:
            raise ValueError("dt_s must be finite and > 0")

    def simulate(self, setpoints_K: np.ndarray, dt_s: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Advance S steps; step k holds ``setpoints_K[k]`` for ``dt_s[k]`` seconds.

        Args:
            setpoints_K: shape (S,), K, the (working) setpoint during each step.
            dt_s: shape (S,), s, duration of each step (> 0); steps may differ.

        Returns:
            ``(true_K, thermocouple_K)``, each shape (S,), K, the values at the *end* of
            each step. The discretisation is exact for piecewise-constant setpoints
            (matrix exponential of the second-order system, exact OU transition), so the
            result does not depend on how a constant-setpoint interval is split.
        """
        sp = np.asarray(setpoints_K, dtype=float)
        dt = np.asarray(dt_s, dtype=float)
        self._check(sp, dt)
        p = self.params
        n = sp.shape[0]
        drift_normal = self.rng.standard_normal(n)
        noise_normal = self.rng.standard_normal(n)
        true_K, tc_K = np.empty(n), np.empty(n)
        y, v, d = _simulate(
            sp, dt, p.ambient_K + p.offset_K, p.offset_K, p.zeta, p.omega_per_s, p.drift_theta_per_s,
            p.drift_std_K, p.noise_K, drift_normal, noise_normal,
            self.state.controlled_K, self.state.rate_K_per_s, self.state.drift_K, true_K, tc_K)
        self.state = FurnaceState(y, v, d, self.state.time_s + float(dt.sum()))
        return true_K, tc_K

    def step(self, setpoint_K: float, dt_s: float) -> tuple[float, float]:
        """Advance one step of ``dt_s`` s at ``setpoint_K`` K.

        Returns:
            ``(true_K, thermocouple_K)`` at the end of the step, K.
        """
        true_K, tc_K = self.simulate(np.array([setpoint_K], dtype=float),
                                     np.array([dt_s], dtype=float))
        return float(true_K[0]), float(tc_K[0])


def simulate_firings(params: FurnaceParams, offset_K: np.ndarray, drift_std_K: np.ndarray, setpoints_K: np.ndarray,
                     dt_s: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """B firings at once, each in a furnace of ``params`` with its own calibration offset and
    drift, each starting at rest at ambient (as :meth:`FurnaceThermalModel.reset` then
    :meth:`~FurnaceThermalModel.simulate`; the steps are not re-checked: the caller's grid).

    Args:
        params: the furnaces' physics (its offset and drift are replaced per firing).
        offset_K: (B,) K, each firing's calibration offset; drift_std_K: (B,) K, its
            stationary drift sd (``drift_sigma_K / sqrt(2 theta)``).
        setpoints_K, dt_s: (B, S) K and s, each firing's working setpoints and step lengths.
        rng: draws (2, B, S) standard normals: the drift's, then the thermocouple's.

    Returns:
        ``(true_K, thermocouple_K)``, each (B, S), K, at the end of each step.
    """
    sp = np.ascontiguousarray(setpoints_K, dtype=float)
    dt = np.ascontiguousarray(dt_s, dtype=float)
    normals = rng.standard_normal((2, *sp.shape))
    true_K, tc_K = np.empty_like(sp), np.empty_like(sp)
    _simulate_rows(sp, dt, params.ambient_K, np.ascontiguousarray(offset_K, dtype=float), params.zeta,
                   params.omega_per_s, params.drift_theta_per_s, np.ascontiguousarray(drift_std_K, dtype=float),
                   params.noise_K, normals[0], normals[1], true_K, tc_K)
    return true_K, tc_K


@numba.njit(cache=True, error_model="numpy")
def _simulate_rows(sp, dt, ambient_K, offset_K, zeta, omega, theta, drift_std, noise_K, drift_normal, noise_normal,
                   true_K, tc_K):  # pragma: no cover - compiled
    for b in range(sp.shape[0]):
        _simulate(sp[b], dt[b], ambient_K + offset_K[b], offset_K[b], zeta, omega, theta, drift_std[b], noise_K,
                  drift_normal[b], noise_normal[b], ambient_K + offset_K[b], 0.0, 0.0, true_K[b], tc_K[b])


@numba.njit(cache=True)
def _check_steps(sp, dt, max_K):  # pragma: no cover - compiled
    """0 if the steps are valid, else the first problem: 1 NaN/inf setpoint, 2 above the
    maximum, 3 a step that is not finite and > 0 (checked in that order over all steps)."""
    worst = 0
    for k in range(sp.shape[0]):
        if not np.isfinite(sp[k]):
            return 1
        if sp[k] > max_K:
            worst = 2
        elif not (np.isfinite(dt[k]) and dt[k] > 0.0) and worst == 0:
            worst = 3
    return worst


@numba.njit(cache=True, error_model="numpy")
def _simulate(sp, dt, floor_K, offset_K, zeta, omega, theta, drift_std, noise_K, drift_normal, noise_normal,
              y, v, d, true_K, tc_K):  # pragma: no cover - compiled
    """:meth:`FurnaceThermalModel.simulate` step by step: exact transition of the damped
    second-order response over each step (sin(wd t)/wd kept exact as zeta -> 1), exact
    OU drift transition, thermocouple noise. Fills ``true_K`` and ``tc_K`` (S,) and
    returns the end state (y, v, d) as floats: returning arrays makes numba call back into
    Python (to box them), where a Ctrl-C surfaces as a SystemError instead of
    KeyboardInterrupt."""
    n = sp.shape[0]
    alpha = zeta * omega
    wd = omega * np.sqrt(max(0.0, 1.0 - zeta * zeta))
    for k in range(n):
        h = dt[k]
        target = max(sp[k], floor_K)
        env = np.exp(-alpha * h)
        z = wd * h
        cos_t = np.cos(z)
        sin_over_wd = h * (np.sin(z) / z if z != 0.0 else 1.0)
        e = y - target
        y, v = (target + env * (cos_t + alpha * sin_over_wd) * e + env * sin_over_wd * v,
                -env * omega * omega * sin_over_wd * e + env * (cos_t - alpha * sin_over_wd) * v)
        kick = drift_std * np.sqrt(-np.expm1(-2.0 * theta * h)) * drift_normal[k]
        d = np.exp(-theta * h) * d + kick
        true_K[k] = y - offset_K + d
        tc_K[k] = y + noise_K * noise_normal[k]
    return y, v, d
