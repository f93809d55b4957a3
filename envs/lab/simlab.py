"""SimLab: the lab front-end over the SimPy twin (:class:`~synthgap.envs.lab.twin.TwinBackend`).

``SimLab(system, n_furnaces, seed, config)`` is ``Lab(TwinBackend(...))`` with the twin's
own views (its furnaces' true offsets, utilisation, logs). Everything a lab does (validation,
records, the chain) is :class:`~synthgap.envs.lab.frontend.Lab`'s; what the twin models is
:mod:`.twin`'s.

Randomness: ONE ``numpy.random.Generator`` (``np.random.default_rng(seed)``) for
everything; the same seed gives the same campaign record for record.
"""

from __future__ import annotations

import numpy as np

from synthgap.envs.chemistry import ChemicalSystem, Recipe, load_system

from .firing_grid import REFERENCE_STANDARDS, firing_grid, reference_grid, reference_programme
from .frontend import Lab
from .params import STATIONS, LabParams
from .twin import TwinBackend
from .world import World

__all__ = ["LabParams", "SimLab", "STATIONS", "REFERENCE_STANDARDS", "firing_grid",
           "reference_grid", "reference_programme", "random_lab_recipes"]


class SimLab(Lab):
    """The lab front-end over the SimPy twin.

    Args:
        system: a ChemicalSystem or a bundled system name.
        n_furnaces: number of furnaces (>= 1).
        seed: seed of the one random generator.
        config: all other parameters (:class:`LabParams`; default the world's, else the defaults).
        world: the lab's hidden truth (:func:`~synthgap.envs.lab.world.draw_world`); None: the
            nominal world. PRIVILEGED, like ``world`` the attribute.

    Attributes (the twin's, besides :class:`Lab`'s):
        config, n_furnaces, rng, env: the twin's parameters, furnaces, generator, SimPy environment.
        log: ``(event, lab time s)`` tuples when ``config.log_events``.
        firing_truth: the simulator truth of every firing (true offset K, drift sd K).
        usage: ``(station, instrument id, job, start s, end s)`` for every instrument use.
        queue_log: ``(time s, station, queue length)`` at every queue change.
        max_temperature_K: the furnaces' highest setpoint, K.

    Example:
        >>> lab = SimLab("BaTiO3", n_furnaces=2, seed=1)
        >>> rec = lab.run_recipe(Recipe("BaTiO3", ("BaCO3", "TiO2"), dwell_temperature=1473))
        >>> rec.status, rec.xrd_phase_fractions["BaTiO3"] > 0.5
        ('done', True)
    """

    backend: TwinBackend

    def __init__(self, system: ChemicalSystem | str, n_furnaces: int = 4, seed: int = 0,
                 config: LabParams | None = None, world: World | None = None) -> None:
        if isinstance(system, str):
            system = load_system(system)
        if world is not None and world.nominal is not system:
            raise ValueError(f"the world was drawn around {world.nominal.name}, not this lab's {system.name}")
        config = world.lab if world is not None and config is None else config
        super().__init__(TwinBackend(system, n_furnaces, seed, config,
                                     truth_system=world.system if world is not None else None))
        self.world = world
        b = self.backend
        self.config, self.n_furnaces, self.rng, self.env = b.config, b.n_furnaces, b.rng, b.env
        self.log, self.firing_truth, self.usage, self.queue_log = b.log, b.firing_truth, b.usage, b.queue_log
        self.max_temperature_K = b.caps.max_temperature_K

    def furnace_offsets(self) -> list[float]:
        """The furnaces' current TRUE offsets, K (simulator truth, for tests and plots)."""
        return self.backend.furnace_offsets()

    def utilisation(self) -> dict[str, float]:
        """Station -> busy fraction of (capacity x lab time so far); furnaces included."""
        return self.backend.utilisation()


def random_lab_recipes(system: ChemicalSystem, n: int, rng: np.random.Generator,
                       max_temperature_K: float) -> list[Recipe]:
    """``n`` random valid recipes whose dwell the furnaces can reach (rejection sampling)."""
    from synthgap.envs.chemistry import random_recipes

    out: list[Recipe] = []
    while len(out) < n:
        batch = random_recipes(system, max(2 * (n - len(out)), 8), rng)
        ok = np.flatnonzero(batch.dwell_temperature <= max_temperature_K)
        out.extend(batch.recipe(system, int(i)) for i in ok[: n - len(out)])
    return out
