"""The benchmark's grid: its configuration, its cells (one campaign each) and how a cell runs.

A *cell* is one campaign (system, planner, seed, budget). :func:`run_cell` is a pure
function of its :class:`Cell` (every random draw comes from seeds derived from it), so
the same cell gives the same numbers in this process, a process pool or a Dask worker.
Its record (JSON-serialisable; lab hours in h, ask times in s, performance in the
target's property unit) carries :data:`CACHE_VERSION`, which :mod:`.benchmark` checks
before it reuses a cached cell. Running the grid and caching it is :mod:`.benchmark`'s job;
its tables, :mod:`.benchmark_tables`'.
"""

from __future__ import annotations

import hashlib
import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from synthgap.envs.buildable import buildable_performance
from synthgap.envs.campaign import WORLD_SPLITS
from synthgap.envs.chemistry import (
    CatalogueError,
    ChemicalSystem,
    Recipe,
    RecipeBatch,
    bundled_system_names,
    load_system,
)
from synthgap.envs.lab.world import World, draw_world

from .evaluator import EVALUATORS
from .oracle import compute_oracle
from .planners import PLANNERS, PlannerError, make_planner, planner_factory
from .space import RecipeSpace

DEFAULT_PLANNERS = ("random", "sobol", "tpe", "gp", "gp_feasible", "nsga2", "gp_mo", "thermo_only", "synthesis_aware")
EXECUTORS = ("local", "dask")
CACHE_VERSION = 3  # bump when a cell's meaning changes; old cell files are then ignored (3: nsga2 on lab hours)
ORACLE_VERSION = 2  # the same for an oracle's file (an oracle does not depend on the planners)


class BenchmarkError(ValueError):
    """Bad benchmark input (unknown planner or system, bad counts); the message says which."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """Everything a benchmark run depends on (logged as the parent run's params).

    Attributes:
        systems: bundled system names or paths of system data files.
        planners: planner specs: names of ``PLANNERS``, ``policy:models:/NAME@ALIAS`` (a trained
            Campaign-v0 policy) or ``module:Class`` (your own Planner subclass).
        seeds: campaigns per (system, planner); seeds are 0 .. seeds-1.
        budget: experiments per campaign.
        out: output folder (cells are cached here).
        executor: ``"local"`` (process pool) or ``"dask"``.
        scheduler: Dask scheduler address; none starts a loopback LocalCluster.
        workers: worker processes (default: CPU count for local, 2 for a LocalCluster).
        batch_size: suggestions asked per round (experiments in flight together).
        evaluator: ``"simple"`` (:class:`~.evaluator.Evaluator`) or ``"twin"`` (the SimPy
            lab twin through :class:`~.evaluator.LabTwinEvaluator`).
        oracle_samples: random recipes the oracle screens per system (and per world).
        progress: show a progress bar.
        world_spread: 0 (the nominal world, every campaign in the same lab), or each seed's
            campaign in a held-out world drawn with this spread (:mod:`synthgap.envs.lab.world`;
            world seeds from the envs' "test" range, never trained on), scored against that
            world's own oracle. Planners only ever see the nominal model.
    """

    systems: tuple[str, ...]
    planners: tuple[str, ...] = DEFAULT_PLANNERS
    seeds: int = 20
    budget: int = 30
    out: str = "synthgap-runs/benchmark"
    executor: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    batch_size: int = 1
    evaluator: str = "simple"
    oracle_samples: int = 200_000
    progress: bool = True
    world_spread: float = 0.0

    def validate(self) -> BenchmarkConfig:
        """Raise :class:`BenchmarkError` naming the first bad field; return self."""
        if not self.systems:
            raise BenchmarkError("--systems: give at least one system name or file")
        for s in self.systems:
            try:
                load_system(s)
            except CatalogueError as exc:
                raise BenchmarkError(f"--systems: cannot load {s!r}: {exc}") from None
        if not self.planners:
            raise BenchmarkError(f"--planners: none given; choose from {', '.join(PLANNERS)}")
        for p in self.planners:
            try:
                planner_factory(p)  # loads a policy, imports a user's class: fails here, not in a worker
            except PlannerError as exc:
                raise BenchmarkError(f"--planners: {exc}") from None
        for name in ("seeds", "budget", "batch_size", "oracle_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BenchmarkError(f"{name} must be a positive integer, got {v!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise BenchmarkError(f"workers must be a positive integer, got {self.workers!r}")
        if self.executor not in EXECUTORS:
            raise BenchmarkError(f"--executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.evaluator not in EVALUATORS:
            raise BenchmarkError(f"--evaluator must be one of {tuple(EVALUATORS)}, "
                                 f"got {self.evaluator!r}")
        if not (isinstance(self.world_spread, int | float) and math.isfinite(self.world_spread)
                and self.world_spread >= 0):
            raise BenchmarkError(f"--world-spread must be a finite number >= 0, got {self.world_spread!r}")
        if self.scheduler and self.executor != "dask":
            raise BenchmarkError("--scheduler needs --executor dask")
        return self


def system_key(system: str) -> str:
    """File-safe key of a system argument: the bundled name, or a file's stem + content hash."""
    if system in bundled_system_names():
        return system
    p = Path(system)
    digest = hashlib.sha1(p.read_bytes()).hexdigest()[:8] if p.exists() else "missing"
    return f"{p.stem}-{digest}"


def planner_key(planner: str) -> str:
    """File-safe key of a planner spec: the name, or (``policy:...``, ``module:Class``) its
    characters made safe plus a hash of the spec."""
    if planner in PLANNERS:
        return planner
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in planner)[-40:]
    return f"{safe}-{hashlib.sha1(planner.encode()).hexdigest()[:8]}"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class Cell:
    """One campaign of the benchmark grid."""

    system: str
    planner: str
    seed: int
    budget: int
    batch_size: int = 1
    evaluator: str = "simple"
    world_spread: float = 0.0

    @property
    def key(self) -> str:
        q = f"__q{self.batch_size}" if self.batch_size != 1 else ""
        e = f"__{self.evaluator}" if self.evaluator != "simple" else ""
        w = f"__w{self.world_spread:g}" if self.world_spread else ""
        return f"{system_key(self.system)}__{planner_key(self.planner)}__s{self.seed:03d}__b{self.budget}{q}{e}{w}"

    @property
    def world_seed(self) -> int | None:
        """The seed of this campaign's held-out world (None: the nominal world): the envs'
        "test" range, shared by every planner of the same seed."""
        return WORLD_SPLITS["test"][0] + self.seed if self.world_spread else None

    @property
    def oracle_key(self) -> str:
        """The key of the oracle this campaign is scored against."""
        return oracle_key(self.system, self.world_spread, self.world_seed)

    def world(self) -> World | None:
        """This campaign's hidden world (PRIVILEGED: for the lab and the scoring only)."""
        if not self.world_spread:
            return None
        return draw_world(load_system(self.system), self.world_seed, self.world_spread)


    def planner_seed(self) -> int:
        ss = np.random.SeedSequence([self.seed, _crc(system_key(self.system)), _crc(self.planner)])
        return int(ss.generate_state(1)[0])

    def evaluation_rng(self, i: int) -> np.random.Generator:
        """The lab noise of experiment ``i``: shared by every planner (common random numbers)."""
        return np.random.default_rng([self.seed, _crc(system_key(self.system)), i])


def oracle_key(system: str, world_spread: float = 0.0, world_seed: int | None = None) -> str:
    """Key of a system's oracle, or of one of its worlds'."""
    return system_key(system) + (f"__w{world_spread:g}s{world_seed}" if world_spread else "")


def grid(config: BenchmarkConfig) -> list[Cell]:
    return [Cell(s, p, seed, config.budget, config.batch_size, config.evaluator, config.world_spread)
            for s in config.systems for p in config.planners for seed in range(config.seeds)]


def oracle_tasks(config: BenchmarkConfig) -> list[tuple[str, float, int | None]]:
    """(system, world spread, world seed) of every oracle the grid is scored against."""
    if not config.world_spread:
        return [(s, 0.0, None) for s in config.systems]
    return [(s, config.world_spread, WORLD_SPLITS["test"][0] + seed) for s in config.systems
            for seed in range(config.seeds)]


def score_recipes(system: ChemicalSystem, recipes: Sequence[dict]) -> list[float]:
    """Buildable performance (property unit) of each recipe (``Recipe.to_dict()`` form), as
    the cells record it; reports divide it by the oracle (:func:`.metrics.campaign_metrics`)."""
    batch = RecipeBatch.from_recipes(system, [Recipe.from_dict(r) for r in recipes])
    return [float(b) for b in buildable_performance(system, batch)]


def run_cell(cell: Cell) -> dict:
    """Run one campaign; return its raw record (JSON-serialisable)."""
    if cell.planner == "gp":
        import torch

        torch.set_num_threads(1)  # one cell per core: threads would oversubscribe the machine
    system = load_system(cell.system)
    space = RecipeSpace(system)  # the planners' belief: the nominal model
    planner = make_planner(cell.planner, space, cell.budget, seed=cell.planner_seed())
    world = cell.world()
    evaluator = EVALUATORS[cell.evaluator](system, world=world)
    truth = world.system if world is not None else system
    experiments, ask_seconds = [], []
    while planner.remaining:
        n = min(cell.batch_size, planner.remaining)
        t0 = time.perf_counter()
        batch = planner.ask(n)
        ask_seconds.extend([(time.perf_counter() - t0) / n] * n)
        for s in batch:
            i = len(experiments)
            res = evaluator.evaluate(s.recipe, cell.evaluation_rng(i))
            planner.tell(s.id, res)
            experiments.append({"id": s.id, "recipe": s.recipe.to_dict(), **res.to_dict()})
    for e, b in zip(experiments, score_recipes(truth, [e["recipe"] for e in experiments]), strict=True):
        e["buildable"] = b  # in the lab's true world
    return {
        "version": CACHE_VERSION,
        "cell": {**asdict(cell), "key": cell.key, "system_key": system_key(cell.system)},
        "system_name": system.name,
        "experiments": experiments,
        "ask_seconds": ask_seconds,
        "chosen_target": getattr(planner, "target", None),
        "oracle_key": cell.oracle_key,
        "training_experiments": int(getattr(planner, "training_experiments", 0)),  # 0: no training
        "training_systems": list(getattr(planner, "training_systems", ())),  # (): a planner that does not train
    }


def run_oracle(system: str, n_random: int, world_spread: float = 0.0, world_seed: int | None = None) -> dict:
    """The oracle of one system (or of its world ``world_seed``) as a dict (see :func:`compute_oracle`)."""
    nominal = load_system(system)
    truth = draw_world(nominal, world_seed, world_spread).system if world_spread else nominal
    return {"version": ORACLE_VERSION, "n_random": n_random, "key": oracle_key(system, world_spread, world_seed),
            **compute_oracle(truth, n_random=n_random).to_dict()}
