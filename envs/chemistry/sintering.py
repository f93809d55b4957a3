"""Sintering: the relative density a fired sample reaches from its thermal history.

A master sintering curve (Su & Johnson, J. Am. Ceram. Soc. 79, 3211 (1996)): for one
powder and green body, density is a single function of the work of sintering

    Theta(t, T) = integral of (1 / T) exp(-Q / (R T)) dt        (s/K)

whatever the path (ramp, dwell, cooling) that accumulates it, with Q the apparent
activation energy of densification. The curve itself is a sigmoid in ln Theta, the form
commonly fitted to measured master curves:

    rho = rho_0 + (rho_max - rho_0) / (1 + exp(-(ln Theta - ln Theta_half) / width))

from the green density rho_0 to the pressureless limit rho_max < 1 (closed pores stay).
Theta_half is set by an anchor: the dwell (temperature, time) that takes a green body
halfway. Everything is per sample and vectorised over the batch: (B,) arrays.

A system file's ``sintering:`` block (every number ``{value, source}``; a source that
starts with ``assumption`` must give its ``uncertainty``)::

    sintering:
      source: master sintering curve (Su & Johnson 1996), sigmoid in ln Theta
      activation_energy: {value: kJ/mol, uncertainty: kJ/mol, source: ...}
      green_density: {value: 0..1, uncertainty: ..., source: ...}
      max_density: {value: 0..1, uncertainty: ..., source: ...}
      half_density_at: {temperature: K, time: h, source: ...}   # an isothermal dwell
      width: {value: ln-Theta units, uncertainty: ..., source: ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numba
import numpy as np

from .tables import R_GAS

_KEYS = ("source", "activation_energy", "green_density", "max_density", "half_density_at", "width")


@dataclass(frozen=True)
class SinteringModel:
    """A system's master sintering curve.

    Attributes:
        activation_energy: Q, J/mol (apparent, of densification).
        green_density: rho_0, relative density of the pressed powder, 0 to 1.
        max_density: rho_max, the density the curve saturates at (< 1).
        log_theta_half: ln Theta (Theta in s/K) halfway from rho_0 to rho_max.
        width: the sigmoid's width in ln Theta.
        source: where the form and numbers come from.
    """

    activation_energy: float
    green_density: float
    max_density: float
    log_theta_half: float
    width: float
    source: str = ""

    def work_of_programmes(self, dwell_temperature: np.ndarray, ramp_rate: np.ndarray, dwell_time: np.ndarray,
                           cooling_rate: np.ndarray, room_temperature: float) -> np.ndarray:
        """(B,) Theta, s/K, of ideal programmes: linear ramp from ``room_temperature`` K at
        ``ramp_rate`` K/min, dwell at ``dwell_temperature`` K for ``dwell_time`` h, linear cooling.

        Summed over the same midpoint steps as the kinetics (:mod:`.discretisation`), so it
        equals :meth:`work_of_trace` of :func:`~.firing.programme_trace` (a ramp's exact
        integral, (E1(Q/RT1) - E1(Q/RT0)) / beta, differs from it by a few per cent).
        """
        q_r = self.activation_energy / R_GAS
        Td = np.asarray(dwell_temperature, dtype=float)
        from .discretisation import COOL_STEPS, RAMP_STEPS

        span = Td - room_temperature
        ramp = segment_sum(span, float(room_temperature), q_r, RAMP_STEPS)
        cool = segment_sum(span, float(room_temperature), q_r, COOL_STEPS)
        moving = span * 60.0 * (ramp / (ramp_rate * RAMP_STEPS) + cool / (cooling_rate * COOL_STEPS))
        return np.asarray(dwell_time) * 3600.0 * np.exp(-q_r / Td) / Td + moving

    def work_of_trace(self, temperature: np.ndarray, dt: np.ndarray) -> np.ndarray:
        """(B,) Theta, s/K, of temperature histories ``temperature`` (B, S) K over steps ``dt`` (B, S) s."""
        T = np.maximum(np.asarray(temperature, dtype=float), 1.0)
        return (np.asarray(dt) * np.exp(-self.activation_energy / (R_GAS * T)) / T).sum(axis=-1)

    def density(self, work: np.ndarray) -> np.ndarray:
        """(B,) relative density, 0 to 1, after a work of sintering ``work`` (B,) s/K."""
        log_theta = np.log(np.maximum(work, 1e-300))
        z = np.clip((log_theta - self.log_theta_half) / self.width, -60.0, 60.0)
        return self.green_density + (self.max_density - self.green_density) / (1.0 + np.exp(-z))


def read_sintering(reader: Any, spec: Any) -> SinteringModel:
    """The ``sintering:`` block of a system file, checked (``reader``: the file's
    :class:`~.system_reader.SystemReader`, which names the file in each refusal)."""
    where = "sintering"
    if not isinstance(spec, dict):
        reader.fail(where, f"must be a mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        reader.fail(f"{where}.{unknown[0]}", f"unknown key; known: {', '.join(_KEYS)}")
    reader.require(spec, "source", where, str)
    q = sourced_number(reader, spec, "activation_energy", where, positive=True) * 1e3
    rho0 = sourced_number(reader, spec, "green_density", where, positive=True)
    rho_max = sourced_number(reader, spec, "max_density", where, positive=True)
    if not 0 < rho0 < rho_max < 1:
        reader.fail(where, f"needs 0 < green_density < max_density < 1, got {rho0:g} and {rho_max:g}")
    width = sourced_number(reader, spec, "width", where, positive=True)
    anchor = reader.require(spec, "half_density_at", where, dict)
    aw = f"{where}.half_density_at"
    reader.require(anchor, "source", aw, str)
    T = reader.number(anchor, "temperature", aw, True)
    hours = reader.number(anchor, "time", aw, True)
    log_theta_half = float(np.log(hours * 3600.0 / T) - q / (R_GAS * T))
    return SinteringModel(q, rho0, rho_max, log_theta_half, width, " ".join(spec["source"].split()))


def sourced_number(reader: Any, spec: Any, key: str, where: str, positive: bool = False) -> float:
    """``spec[key]`` as ``{value, source[, uncertainty]}``: its value; a source that starts
    with "assumption" must give an uncertainty."""
    entry = reader.require(spec, key, where, dict)
    w = f"{where}.{key}"
    source = reader.require(entry, "source", w, str)
    value = reader.number(entry, "value", w, positive)
    if source.strip().lower().startswith("assumption") and "uncertainty" not in entry:
        reader.fail(f"{w}.uncertainty", "an assumption must state its uncertainty")
    if "uncertainty" in entry and not isinstance(entry["uncertainty"], str):
        reader.number(entry, "uncertainty", w)
    return value


SPAN_TABLE_K = (100.0, 2500.0)  # the spans segment_sum interpolates, K above room temperature
SPAN_STEP_K = 0.5  # its grid


def segment_sum(span: np.ndarray, room: float, q_r: float, steps: int) -> np.ndarray:
    """(B,) sum over a segment's ``steps`` midpoint steps (room + span (k + 1/2) / steps K,
    as the kinetics take them) of exp(-q_r / T) / T, 1/K, for spans ``span`` (B,) K.

    A cubic Hermite interpolation of ln(sum) and its exact slope on a 0.5 K grid of spans
    (relative error about 1e-10, far inside what the density can show): one exponential
    per sample instead of one per step, which would cost about 10 % of a batched firing.
    Spans outside the grid (dwells below 400 K or above 2800 K) are summed step by step.
    """
    value, slope = _span_table(room, q_r, steps)
    lo, hi = SPAN_TABLE_K
    x = (np.asarray(span, dtype=float) - lo) / SPAN_STEP_K
    inside = (x >= 0.0) & (x < value.size - 1)
    if not inside.all():
        x = np.where(inside, x, 0.0)  # interpolated at the grid's start, replaced below
    j = x.astype(np.int64)
    t = x - j
    slope = slope * SPAN_STEP_K  # per grid step
    t2 = t * t
    t3 = t2 * t
    log_sum = ((2 * t3 - 3 * t2 + 1) * value[j] + (t3 - 2 * t2 + t) * slope[j] + (3 * t2 - 2 * t3) * value[j + 1]
               + (t3 - t2) * slope[j + 1])
    out = np.exp(log_sum)
    if not inside.all():
        rows = np.flatnonzero(~inside)
        v, _ = _sums(np.ascontiguousarray(np.asarray(span, dtype=float)[rows]), room, q_r, steps)
        out[rows] = v
    return out


@lru_cache(maxsize=16)
def _span_table(room: float, q_r: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """ln(sum) and d ln(sum) / d span (1/K) on the grid of spans."""
    lo, hi = SPAN_TABLE_K
    grid = lo + SPAN_STEP_K * np.arange(round((hi - lo) / SPAN_STEP_K) + 1)
    value, slope = _sums(grid, room, q_r, steps)
    return np.log(value), slope / value


def _sums(span: np.ndarray, room: float, q_r: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    value, slope = np.empty(span.shape), np.empty(span.shape)
    _segment_sums(span, room, q_r, steps, value, slope)
    return value, slope


@numba.njit(cache=True, error_model="numpy")
def _segment_sums(span, room, q_r, steps, value, slope):  # pragma: no cover - compiled
    """Each span's sum of f(T) = exp(-q_r/T)/T over the midpoint steps, and its derivative
    with respect to the span (df/dT = f (q_r/T - 1)/T, dT/dspan = (k + 1/2)/steps)."""
    for b in range(span.shape[0]):
        s = 0.0
        d = 0.0
        for k in range(steps):
            u = (k + 0.5) / steps
            T = room + span[b] * u
            f = math.exp(-q_r / T) / T
            s += f
            d += f * (q_r / T - 1.0) / T * u
        value[b] = s
        slope[b] = d
