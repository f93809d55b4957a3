"""``synthgap/FurnaceControl-v0``: steer one furnace load past a kinetic trap."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from .campaign import check_action
from .chemistry import Recipe, load_system
from .chemistry.limits import FURNACE_MAX_TEMPERATURE_K
from .chemistry.recipe import RECIPE_BOUNDS
from .heat_programmes import HeatProgrammeBest, best_heat_programme
from .lab.session_furnace import CONTROL_STEP_S
from .lab.world import DEFAULT_WORLD_SPREAD
from .lab_factories import DirectLabFactory, LabFactory

if TYPE_CHECKING:
    from .chemistry import ChemicalSystem
    from .lab.frontend import Lab
    from .lab.session import FurnaceSession

def _floats(values: np.ndarray | None) -> list[float]:
    return [] if values is None else np.asarray(values, dtype=float).tolist()


CONTROL_STEP = CONTROL_STEP_S  # s, resolution of the simulated furnace inside an interval
COOLING_RATE = 10.0  # K/min, natural cooling after the unload command
MAX_RAMP = 20.0  # K/min, the controller's setpoint rate limit
#: the reward's smallest scale, a fraction of the target's theoretical performance (a design
#: choice: a load whose budget cannot make its target pays against 1 % of it, so property noise
#: on a trace amount is not amplified into a large reward)
REWARD_SCALE_FLOOR = 0.01


class FurnaceControlEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """Program a furnace interval by interval for one load, then unload it.

    One crucible of precursors (by default BaCO3 + TiO2 for BaTiO3, milled 2 h), weighed,
    milled and pressed by the lab, sits in a furnace whose thermocouple is off by a hidden
    calibration offset and whose sample temperature drifts (Ornstein-Uhlenbeck) during
    dwells. Each step sets the setpoint for the next interval through the lab's furnace
    (``Lab.open_furnace``, :mod:`synthgap.envs.lab.session`); the controller ramps to it at
    most at 20 K/min. The agent sees what a thermogravimetric furnace shows (thermocouple,
    mass loss), not the phases. The lab is the direct backend by default; any lab whose
    furnace can be driven live serves (the twin, the hardware on the emulators).

    ## Action Space
    ``Box(-1, 1, (2,), float32)``:

    | index | field    | range / meaning                                                  |
    |-------|----------|------------------------------------------------------------------|
    | 0     | setpoint | 573 to 1773 K, linear: the setpoint for the next interval        |
    | 1     | unload   | > 0 unloads: the furnace cools at 10 K/min, the sample comes out |

    The setpoint range is the recipes' dwell-temperature range
    (:mod:`synthgap.envs.chemistry.limits`), capped at the furnace's maximum; the
    controller ramps to it at most at 20 K/min. Out-of-box or non-finite actions raise
    ``ValueError``.

    ## Observation Space
    ``Box(-10, 10, (6,), float32)``: thermocouple reading / 2000 K, setpoint / 2000 K,
    elapsed time / maximum time, mass lost / initial mass (TGA), mass-loss rate over the
    last interval (fraction per hour), thermocouple standard deviation over the last
    interval / 10 K. A lab whose furnace has no thermogravimetric balance (the hardware
    here) reports NaN mass loss, observed as 0.

    ## Rewards
    Each interval costs ``time_weight`` x interval hours. At unloading the lab measures the
    sample (XRD and property) and pays the measured performance over the best the lab
    believes possible for this load: the buildable performance of the best single-dwell
    programme within the load's time budget, rate limit and temperature range, on the
    nominal system (:meth:`programme_ceiling`, :mod:`synthgap.envs.heat_programmes`; at
    least 1 % of the theoretical performance, :meth:`reward_scale`). So 1 reads "as good as
    the best programme"; a trapped sample pays nearly nothing; over-firing
    coarsens grains and pays less; a furnace breakdown pays 0. The simulator's truth (offset,
    true performance and phases) is only in ``info["privileged"]``, for evaluation, which
    divides the true performance by the same ceiling in the lab's true world (the oracle).

    ## Starting State
    A fresh lab from ``lab_factory``; room temperature, fresh precursors, milled and pressed;
    the furnace's calibration offset hidden (the direct lab draws it from N(0, offset_sigma)).

    ## Episode End
    Terminates at unloading, or when the maximum number of intervals is reached (the
    load is then cooled and unloaded).

    ## Arguments
    system, target, precursors: what is fired (default BaTiO3 from BaCO3 + TiO2);
    interval: seconds per step (default 1800); max_intervals (default 24);
    offset_sigma: K (default 15; the default direct lab's); time_weight: reward per hour
    (default 0.005); lab_factory: callable ``(system, seed) -> Lab`` called at every reset
    (default :class:`~synthgap.envs.lab_factories.DirectLabFactory`); lab: one lab to use
    as is (e.g. a HardwareLab; the caller closes it); world_spread: the default lab's hidden
    world (default 1; 0: the nominal kinetics every episode).

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, system: str = "BaTiO3", target: str | None = None,
                 precursors: tuple[str, ...] | None = None, interval: float = 1800.0,
                 max_intervals: int = 24, offset_sigma: float = 15.0, time_weight: float = 0.005,
                 milling_time: float = 2.0, render_mode: str | None = None,
                 lab_factory: LabFactory | None = None, lab: Lab | None = None,
                 world_spread: float = DEFAULT_WORLD_SPREAD):
        self.system = load_system(system)
        self.target = target or next(t for t, v in self.system.targets.items() if not v.unobtainium)
        if self.target not in self.system.targets:
            raise ValueError(f"{self.target!r} is not a target of {self.system.name}")
        self.precursors = tuple(precursors or self.system.targets[self.target].precursor_sets[0])
        if not interval >= 4 * CONTROL_STEP:
            raise ValueError(f"interval must be >= {4 * CONTROL_STEP:g} s, got {interval!r}")
        if not (isinstance(max_intervals, int) and max_intervals >= 1):
            raise ValueError(f"max_intervals must be a positive int, got {max_intervals!r}")
        if lab_factory is not None and not callable(lab_factory):
            raise TypeError(f"lab_factory must be a callable (system, seed) -> Lab, got {lab_factory!r}")
        self.interval, self.max_intervals = float(interval), max_intervals
        self.offset_sigma, self.time_weight = float(offset_sigma), float(time_weight)
        self.render_mode = render_mode
        self.recipe = Recipe(self.target, self.precursors, milling_time=milling_time)
        self.lab_factory: LabFactory = (lab_factory if lab_factory is not None
                                        else DirectLabFactory(self.offset_sigma, world_spread))
        self._fixed_lab = lab
        self.t_min = RECIPE_BOUNDS["dwell_temperature"][0]
        self.t_max = min(RECIPE_BOUNDS["dwell_temperature"][1], FURNACE_MAX_TEMPERATURE_K)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(-10.0, 10.0, (6,), np.float32)
        self.lab: Lab | None = None
        self.session: FurnaceSession | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        if self._fixed_lab is not None:
            self.lab = self._fixed_lab
        else:
            self._close_own_lab()
            self.lab = self.lab_factory(self.system, int(self.np_random.integers(2**31 - 1)))
        lab = self.lab
        self.sample_id = sid = lab.new_sample(self.recipe)
        for p, m in lab.commanded_masses(self.recipe):
            lab.dispense(sid, p, m)
        lab.mill(sid, self.recipe.milling_time)
        lab.press(sid)
        self.session = lab.open_furnace([sid], self.recipe.atmosphere)
        self.ambient = self.setpoint = self.tc = self.session.setpoint_K
        self.tc_std, self.steps, self.mass_loss, self.loss_rate = 0.0, 0, 0.0, 0.0
        self.ramp = min(MAX_RAMP, lab.caps.max_ramp_rate_K_per_min)
        self.top = min(self.t_max, lab.caps.max_temperature_K)
        #: what the furnace logged: (session time s, setpoint K, thermocouple K), one per step
        self.trace: list[tuple[float, float, float]] = []
        truth = lab.truth.get(sid)
        return self._obs(), {"sample_id": sid, "lab": lab.kind,
                             "privileged": {"offset_K": truth.offset_K if truth is not None else math.nan}}

    def _obs(self) -> NDArray[np.float32]:
        total = self.max_intervals * self.interval
        elapsed = self.session.elapsed_s if self.session is not None else 0.0
        values = (self.tc / 2000.0, self.setpoint / 2000.0, elapsed / total, self.mass_loss, self.loss_rate,
                  self.tc_std / 10.0)
        return np.array([min(max(v, -10.0), 10.0) for v in values], dtype=np.float32)  # the box, +-10

    def _log(self, readings) -> None:
        self.trace.extend(zip(readings.time_s.tolist(), readings.setpoint_K.tolist(),
                              readings.thermocouple_K.tolist(), strict=True))

    def step(self, action: NDArray[np.float32]) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self.session is None or self.lab is None:
            raise RuntimeError("call reset() before step()")
        if not self.session.open:
            raise RuntimeError("the load is out of the furnace; call reset()")
        a = check_action(action, self.action_space)
        unload = a[1] > 0 or self.steps + 1 >= self.max_intervals
        target_sp = min(self.t_min + (a[0] + 1.0) / 2.0 * (self.t_max - self.t_min), self.top)
        readings = self.session.hold(float(target_sp), self.interval, self.ramp)
        self._log(readings)
        self.steps += 1
        before = self.mass_loss
        self.mass_loss = readings.mass_loss if math.isfinite(readings.mass_loss) else 0.0  # no TGA: 0
        self.loss_rate = (self.mass_loss - before) / (self.interval / 3600.0)
        self.setpoint = self.session.setpoint_K
        self.tc, self.tc_std = float(readings.thermocouple_K[-1]), float(readings.thermocouple_K.std())
        reward = -self.time_weight * self.interval / 3600.0
        info: dict[str, Any] = {"setpoint_K": self.setpoint, "elapsed_h": self.session.elapsed_s / 3600.0,
                                "sample_id": self.sample_id}
        if readings.status == "failed":  # a breakdown ended the firing: nothing to measure
            info.update(status="failed", performance=0.0)
            return self._obs(), float(reward), True, False, info
        if unload:
            log = self.session.unload(COOLING_RATE)
            self.trace = list(zip(log.time_s.tolist(), log.setpoint_K.tolist(), log.thermocouple_K.tolist(),
                                  strict=True))  # the whole firing, the cool included
            if log.status == "ok":
                ch = self.lab.characterise(self.sample_id)
                perf = float(ch.performance) if math.isfinite(ch.performance) else 0.0
                reward += perf / self.reward_scale()
                info.update(status="done", performance=perf, target_fraction=ch.phase_fractions.get(self.target, 0.0),
                            phase_fractions=dict(ch.phase_fractions))
            else:
                info.update(status="failed", performance=0.0)
            truth = self.lab.truth.get(self.sample_id)
            if truth is not None:
                info["privileged"] = {"performance": truth.performance, "target_fraction": truth.target_fraction,
                                      "grain_size_um": truth.grain_size_um, "offset_K": truth.offset_K,
                                      "trace_time_s": _floats(truth.trace_time_s), "trace_K": _floats(truth.trace_K)}
        return self._obs(), float(reward), bool(unload), False, info

    def programme_ceiling(self, system: ChemicalSystem | None = None) -> HeatProgrammeBest:
        """The best single-dwell programme for this load in ``system`` (default the lab's
        belief, the nominal system; a lab's true world gives the oracle, for evaluation): the
        load's recipe, ramps up to the controller's limit, setpoints in its range, ramp plus
        dwell within ``max_intervals`` x ``interval``, cooling at ``COOLING_RATE``, the
        expectation over N(0, ``offset_sigma``) furnace offsets. Cached per arguments.
        Call after :meth:`reset` (the lab sets the rate limit and the top setpoint)."""
        if self.lab is None:
            raise RuntimeError("call reset() before programme_ceiling() (the lab sets the furnace's limits)")
        return best_heat_programme(system if system is not None else self.system, self.recipe,
                                   (self.t_min, self.top), self.max_intervals * self.interval / 3600.0,
                                   self.ramp, COOLING_RATE, self.offset_sigma)

    def reward_scale(self) -> float:
        """What the measured performance is divided by at unloading, property unit: the
        believed :meth:`programme_ceiling`, at least ``REWARD_SCALE_FLOOR`` x the theoretical
        performance (also when the budget leaves no dwell at all)."""
        floor = REWARD_SCALE_FLOOR * self.system.targets[self.target].performance.theoretical
        try:
            return max(self.programme_ceiling().value, floor)
        except ValueError:  # the budget cannot even reach a dwell
            return floor

    def _close_own_lab(self) -> None:
        lab, self.lab, self.session = self.lab, None, None
        if lab is not None and lab is not self._fixed_lab:
            lab.close()

    def close(self) -> None:
        self._close_own_lab()
        super().close()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        elapsed = self.session.elapsed_s if self.session is not None else 0.0
        return (f"t={elapsed / 3600:.1f} h setpoint {self.setpoint:.0f} K thermocouple {self.tc:.0f} K "
                f"mass loss {100 * self.mass_loss:.1f} %")
