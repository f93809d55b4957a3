"""The compiled kernels a step runs never call back into Python.

numba calls Python (``numba.core.serialize._numba_unpickle``) to box an array a kernel
returns. A Ctrl-C that lands in that callback surfaces as a ``SystemError`` instead of
``KeyboardInterrupt``: the training CLI then marks the run FAILED instead of KILLED, with
a traceback (seen in CI). Kernels fill arrays their caller allocated instead.
"""

from __future__ import annotations

import numba.core.serialize as numba_serialize
import numpy as np
import pytest

from synthgap.envs.chemistry import Recipe, fire, load_system, random_recipes
from synthgap.envs.lab.thermal import FurnaceParams, FurnaceThermalModel


@pytest.fixture
def python_callbacks(monkeypatch):
    calls = []
    original = numba_serialize._numba_unpickle

    def counting(*args):
        calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(numba_serialize, "_numba_unpickle", counting)
    return calls


def test_furnace_and_kinetics_kernels_stay_compiled(python_callbacks):
    system = load_system("BaTiO3")
    furnace = FurnaceThermalModel(FurnaceParams(), np.random.default_rng(0))
    recipe = Recipe("BaTiO3", ("BaCO3", "TiO2"))
    batch = random_recipes(system, 1100, np.random.default_rng(0))  # above the threaded size
    sp, dt = np.full(72, 1273.0), np.full(72, 60.0)
    furnace.simulate(sp, dt), fire(system, recipe), fire(system, batch)  # compile or load first
    python_callbacks.clear()
    for _ in range(20):
        furnace.simulate(sp, dt)
        fire(system, recipe)
    fire(system, batch)
    assert python_callbacks == []
