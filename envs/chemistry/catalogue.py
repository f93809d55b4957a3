"""The catalogue of chemical systems: the bundled ones by name, a user's by file path.

A system file names its phases (with where their data comes from), its precursors, its
solid-state reactions with Arrhenius parameters, its grain-growth law and its targets
with the property each target is made for. The bundled systems live in
``data/systems/``; a user adds one by writing a file like them and passing its path
wherever a system name is accepted. Nothing here is chemistry code: the data decides.
The fields of a file are :mod:`.system_reader`'s docstring; what it becomes is
:mod:`.system_model` (both re-exported here).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from ..userfiles import UserFileError, load_user_file, short
from .phases import Phase, phase_from_tables
from .system_model import ChemicalSystem, PerformanceModel, ReactionSpec, Target
from .system_reader import CatalogueError, SystemReader

__all__ = [
    "SYSTEMS_PACKAGE", "CatalogueError", "ChemicalSystem", "PerformanceModel", "ReactionSpec", "Target",
    "bundled_system_names", "find_phase", "load_atmospheres", "load_system", "write_system_file",
]

SYSTEMS_PACKAGE = "synthgap.envs.chemistry"


def bundled_system_names() -> list[str]:
    """Names of the systems shipped with synthgap."""
    folder = resources.files(SYSTEMS_PACKAGE).joinpath("data/systems")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=32)
def load_atmospheres() -> dict[str, dict[str, float]]:
    """Atmosphere name -> partial pressures (atm) of O2, CO2, H2O."""
    text = resources.files(SYSTEMS_PACKAGE).joinpath("data/atmospheres.yaml").read_text()
    return {k: {g: float(p) for g, p in v.items()} for k, v in yaml.safe_load(text).items()}


def system_file_path(name: str) -> str:
    """The file of the bundled system ``name`` (for tools that copy and edit one)."""
    return str(resources.files(SYSTEMS_PACKAGE).joinpath(f"data/systems/{name}.yaml"))


def load_system(name_or_path: str | Path) -> ChemicalSystem:
    """Load a bundled system by name, or a user's system file by path.

    Raises:
        CatalogueError: the file is missing or malformed (names file, field, problem).
    """
    key = str(name_or_path)
    if key in bundled_system_names():
        path = system_file_path(key)
    else:
        path = key
    try:
        exists = Path(path).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        raise CatalogueError(short(key, 200), "(file)", "neither a bundled system nor a readable file path") from None
    return _load_system_file(str(Path(path).resolve()) if exists else path)


@lru_cache(maxsize=32)
def _load_system_file(path: str) -> ChemicalSystem:
    p = Path(path)
    if not p.exists():
        known = ", ".join(bundled_system_names())
        raise CatalogueError(path, "(file)", f"no such file or bundled system (bundled: {known})")
    try:  # the safe user-file loader: 1 MiB, nesting and alias-expansion limits, one-line errors
        data = load_user_file(p)
    except UserFileError as exc:
        raise CatalogueError(path, "(file)", exc.problem) from None
    return SystemReader(path, data).read()


def write_system_file(data: dict, out: str | Path, header: list[str] | tuple[str, ...] = ()) -> Path:
    """Write a system file's content (the loader's fields, in file order) as YAML, with
    ``header`` lines as comments on top. The one writer of system files (built, calibrated)."""
    out = Path(out)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    out.write_text(comments + body, encoding="utf-8")
    return out


def find_phase(formula: str, system: ChemicalSystem | None = None) -> Phase:
    """A phase by name or formula: ``system``'s own phases first (its estimates, its
    calorimetric values), then the catalogue, then the bundled tables.

    A phase ``system`` marks hypothetical is returned as it is (the file's author asked for
    it); the catalogue's hypothetical phases are skipped.

    Raises:
        MissingDataError: no table has the data (the message names the missing value).
        ValueError: the formula is not a formula.
    """
    from pymatgen.core import Composition

    comp = Composition(formula)
    if system is not None:
        for p in system.phases.values():
            if p.name == formula or Composition(p.formula).almost_equals(comp):
                return p
    for sys_name in bundled_system_names():
        for p in load_system(sys_name).phases.values():
            if p.name == formula or Composition(p.formula).almost_equals(comp):
                if not p.hypothetical:
                    return p
    return phase_from_tables(formula)
