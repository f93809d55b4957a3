"""Imports run one way: every module of the package is parsed (``ast``, nothing imported) and
its imports are checked against this layer table (bottom first):

===========  ===========================================================  ====================
layer        modules (and the third-party packages that belong to it)     may import
===========  ===========================================================  ====================
chemistry    ``synthgap.envs.userfiles``, ``synthgap.envs.chemistry``     --
lab          ``synthgap.envs.lab`` (protocol, records, twin); simpy       chemistry
hardware     ``synthgap.hardware`` (a lab backend beside the twin)        chemistry, lab
envs         the rest of ``synthgap.envs``; gymnasium, pettingzoo         chemistry, lab
agents       ``synthgap.agents``; stable_baselines3, sb3_contrib, torch,  chemistry, lab, envs
             optuna, mlflow (the registry reads policies from the store)
experiments  ``synthgap.experiments`` (CLI, deploy, all MLflow writing)   every layer
===========  ===========================================================  ====================

A layer also imports itself. So the twin may use SimPy, the hardware never imports
Gymnasium, an agent or MLflow, and the lab never imports the hardware. Checks:

- no import into a layer the importer may not import, at module level or inside a function;
- no cycle between modules through module-level imports, nor through function-level ones.

Each failure prints the offending edge as ``importer:line -> imported``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: (module prefix, layer): the longest matching prefix wins
LAYER_OF = (
    ("synthgap.envs.userfiles", "chemistry"),
    ("synthgap.envs.chemistry", "chemistry"),
    ("synthgap.envs.lab", "lab"),
    ("simpy", "lab"),
    ("synthgap.hardware", "hardware"),
    ("synthgap.envs", "envs"),
    ("gymnasium", "envs"),
    ("pettingzoo", "envs"),
    ("synthgap.agents", "agents"),
    ("stable_baselines3", "agents"),
    ("sb3_contrib", "agents"),
    ("torch", "agents"),
    ("optuna", "agents"),
    ("mlflow", "agents"),
    ("synthgap.experiments", "experiments"),
)
MAY_IMPORT = {
    "chemistry": set(),
    "lab": {"chemistry"},
    "hardware": {"chemistry", "lab"},
    "envs": {"chemistry", "lab"},
    "agents": {"chemistry", "lab", "envs"},
    "experiments": {"chemistry", "lab", "hardware", "envs", "agents"},
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    module_level: bool  # False: inside a function (runs only when it is called)

    def __str__(self) -> str:
        where = "module level" if self.module_level else "in a function"
        return f"{self.importer}:{self.line} -> {self.imported} ({where})"


def layer(module: str) -> str | None:
    """The layer of ``module``, or None for a module outside the table (stdlib, numpy...)."""
    best = None
    for prefix, name in LAYER_OF:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, name)
    return best[1] if best else None


def package_modules(root: Path = ROOT) -> dict[str, Path]:
    """``{module name: file}`` of every module, from pyproject's ``package-dir`` mapping."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    mods = {}
    for package, folder in config["tool"]["setuptools"]["package-dir"].items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join([package, *parts])] = path
    return mods


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """Every import statement of ``modules`` as edges; relative imports resolved, ``from P
    import m`` of a submodule ``m`` pointing at ``P.m``."""
    return [e for name, path in modules.items() for e in _edges_of(name, path, modules)]


def _edges_of(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = []
    todo = [(node, True) for node in ast.iter_child_nodes(ast.parse(path.read_text(), filename=str(path)))]
    while todo:
        node, module_level = todo.pop()
        if isinstance(node, ast.Import):
            edges.extend(Edge(name, a.name, node.lineno, module_level) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                source = ".".join(parts[:len(parts) - (node.level - 1)] + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in modules]
            if len(subs) < len(node.names):  # names that are attributes of ``source``
                edges.append(Edge(name, source, node.lineno, module_level))
            edges.extend(Edge(name, s, node.lineno, module_level) for s in subs)
        inner = module_level and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        todo.extend((child, inner) for child in ast.iter_child_nodes(node))
    return sorted(edges, key=lambda e: e.line)


def upward(edges: Iterable[Edge]) -> list[str]:
    """Edges into a layer the importer may not import, with the rule they break."""
    bad = []
    for e in edges:
        src, dst = layer(e.importer), layer(e.imported)
        if src is not None and dst is not None and dst != src and dst not in MAY_IMPORT[src]:
            allowed = ", ".join(sorted(MAY_IMPORT[src])) or "nothing of ours"
            bad.append(f"{e}: layer {src} may import {allowed}, not {dst}")
    return bad


def cycles(edges: Iterable[Edge], modules: Iterable[str], module_level_only: bool = True) -> list[list[str]]:
    """Cycles among ``modules`` (one per strongly connected component, as a path that returns
    to its start), through module-level imports only or through every import."""
    names = set(modules)
    graph: dict[str, set[str]] = {m: set() for m in names}
    for e in edges:
        if (e.module_level or not module_level_only) and e.imported in names and e.imported != e.importer:
            graph[e.importer].add(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def strongconnect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_path_in(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return found


def _path_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first)."""
    start = min(component)
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"{sorted(component)} is not strongly connected")  # pragma: no cover


@pytest.fixture(scope="module")
def package():
    modules = package_modules()
    return modules, import_edges(modules)


def test_the_walk_sees_the_whole_package(package):
    modules, edges = package
    for name in ("synthgap.envs", "synthgap.envs.lab.protocol", "synthgap.hardware.lab",
                 "synthgap.agents.benchmark", "synthgap.experiments.cli", "synthgap.experiments.deploy"):
        assert name in modules
    seen = {(e.importer, e.imported, e.module_level) for e in edges}
    assert ("synthgap.hardware.lab", "synthgap.envs.lab.frontend", True) in seen  # absolute
    assert ("synthgap.envs.lab.simlab", "synthgap.envs.lab.frontend", True) in seen  # relative
    assert ("synthgap.experiments.cli", "synthgap.experiments.demo", False) in seen  # ``from . import demo``
    assert ("synthgap.experiments.deploy", "synthgap.agents.rl.registry", False) in seen  # in a function


def test_no_import_from_a_higher_layer(package):
    _, edges = package
    bad = upward(edges)
    assert not bad, "imports against the layer table (see this module's docstring):\n" + "\n".join(bad)


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "function-level-too"])
def test_no_import_cycle(package, module_level_only):
    """A module-level cycle breaks an import; one through a function's import is a circle of
    modules that need each other (the CLI, demo and train commands were one)."""
    modules, edges = package
    found = cycles(edges, modules, module_level_only)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_hardware_imports_neither_agents_nor_mlflow(package):
    _, edges = package
    banned = ("mlflow.", "synthgap.agents.", "synthgap.experiments.")
    bad = [str(e) for e in edges
           if e.importer.startswith("synthgap.hardware") and (e.imported + ".").startswith(banned)]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A made-up package with one upward import (function level) and one module-level cycle."""
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools]\npackage-dir = { "synthgap.hardware" = "hw", '
                                             '"synthgap.experiments" = "ex" }\n')
    (tmp_path / "hw").mkdir()
    (tmp_path / "ex").mkdir()
    (tmp_path / "hw" / "__init__.py").write_text("")
    (tmp_path / "hw" / "deploy.py").write_text("def run():\n    from synthgap.experiments.tracking import log\n"
                                               "    import mlflow\n")
    (tmp_path / "ex" / "__init__.py").write_text("")
    (tmp_path / "ex" / "a.py").write_text("from . import b\n")
    (tmp_path / "ex" / "b.py").write_text("from .a import x\n")
    (tmp_path / "ex" / "c.py").write_text("def f():\n    from . import d\n")
    (tmp_path / "ex" / "d.py").write_text("from synthgap.experiments import c\n")
    modules = package_modules(tmp_path)
    edges = import_edges(modules)
    assert upward(edges) == [
        "synthgap.hardware.deploy:2 -> synthgap.experiments.tracking (in a function): "
        "layer hardware may import chemistry, lab, not experiments",
        "synthgap.hardware.deploy:3 -> mlflow (in a function): layer hardware may import chemistry, lab, not agents"]
    ab = ["synthgap.experiments.a", "synthgap.experiments.b", "synthgap.experiments.a"]
    cd = ["synthgap.experiments.c", "synthgap.experiments.d", "synthgap.experiments.c"]
    assert cycles(edges, modules) == [ab]  # c -> d only when f() runs
    assert cycles(edges, modules, module_level_only=False) == [ab, cd]


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_lab_front_end_and_backend_protocol_load_without_the_simulator_or_gymnasium():
    proc = _fresh("import synthgap.envs.lab.protocol, synthgap.envs.lab.frontend, synthgap.envs.lab.backend, "
                  "synthgap.envs.lab.direct, sys; "
                  "print(sorted(m for m in ('simpy', 'gymnasium', 'mlflow', 'torch') if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("imports", ["import gymnasium, synthgap.envs", "import synthgap.envs, gymnasium",
                                     "import synthgap.envs.lab.protocol, synthgap.envs, gymnasium"])
def test_env_ids_are_registered_whatever_the_import_order(imports):
    proc = _fresh(f"{imports}; from synthgap.envs.lab import SimLab; import sys\n"
                  "for i in synthgap.envs.ENV_IDS: print(gymnasium.make(i).unwrapped.__class__.__name__)\n"
                  "print(gymnasium.__spec__.loader.__class__.__name__, SimLab.__name__, 'simpy' in sys.modules)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["CampaignEnv", "FurnaceControlEnv", "SourceFileLoader", "SimLab", "True"]


def test_the_cli_parser_loads_no_heavy_library():
    """``synthgap --help`` builds the whole parser: it must not import MLflow, SB3, torch or SimPy."""
    proc = _fresh("import sys; from synthgap.experiments.cli import build_parser; build_parser(); "
                  "print(sorted(m for m in ('mlflow', 'stable_baselines3', 'torch', 'simpy') if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
