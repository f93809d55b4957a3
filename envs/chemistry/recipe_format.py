"""The recipe file format, documented: a JSON Schema and a commented template per system.

A recipe file (YAML or JSON; :meth:`~.recipe.Recipe.from_file`) is a mapping of the fields
of :class:`~.recipe.Recipe`. ``target`` and ``precursors`` are required; every other
field has a default; units are those of :data:`~.limits.RECIPE_LIMITS`. Both documents
here are derived from that one table and from ``atmospheres.yaml``:

* :func:`recipe_schema` is a JSON Schema (draft 2020-12) of the format; with a system, its
  targets and precursor sets are enumerated. The package ships the system-free schema as
  ``data/recipe.schema.json`` (:data:`SCHEMA_FILE`) for editors (a test keeps it equal to
  :func:`recipe_schema`); ``synthgap recipe schema`` prints either.
* :func:`recipe_template` is a YAML recipe for a system with every field, its unit, range
  and meaning in comments (``synthgap recipe template SYSTEM``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .catalogue import ChemicalSystem, load_atmospheres
from .limits import RECIPE_LIMITS
from .recipe import Recipe

__all__ = ["SCHEMA_FILE", "recipe_schema", "recipe_template"]

SCHEMA_FILE = Path(__file__).with_name("data") / "recipe.schema.json"
_DEFAULTS = Recipe("X", ("Y",))


def recipe_schema(system: ChemicalSystem | None = None) -> dict[str, Any]:
    """The JSON Schema of a recipe file (of ``system``'s recipes when given)."""
    props: dict[str, Any] = {
        "target": {"type": "string", "description": "phase to make: a target of the system"},
        "precursors": {"description": "the precursor set: one of the target's allowed sets (phase names), "
                                      "a list or a comma-separated string",
                       "oneOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                                 {"type": "string"}]},
    }
    for name, b in RECIPE_LIMITS.items():
        props[name] = {"type": "number", "minimum": b.low, "maximum": b.high, "default": getattr(_DEFAULTS, name),
                       "description": f"{b.meaning}, {b.unit} ({b.describe()})"}
    props["atmosphere"] = {"type": "string", "enum": list(load_atmospheres()), "default": _DEFAULTS.atmosphere,
                           "description": "furnace atmosphere (atmospheres.yaml)"}
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://synthgap.invalid/recipe.schema.json",  # a name, never fetched
        "title": f"synthgap recipe{f' ({system.name})' if system else ''}",
        "description": "One solid-state synthesis recipe (synthgap.envs.chemistry.Recipe); units as in each "
                       "field's description.",
        "type": "object", "required": ["target", "precursors"], "additionalProperties": False,
        "properties": props,
    }
    if system is not None:
        props["target"]["enum"] = list(system.targets)
        schema["allOf"] = [
            {"if": {"properties": {"target": {"const": t}}},
             "then": {"properties": {"precursors": {"oneOf": [
                 {"type": "array", "enum": [list(s) for s in spec.precursor_sets]},
                 {"type": "string", "pattern": "|".join(_comma_pattern(s) for s in spec.precursor_sets)}]}}}}
            for t, spec in system.targets.items()]
    return schema


def _comma_pattern(precursors: tuple[str, ...]) -> str:
    """The comma-separated spelling of a precursor set that the loader accepts (spaces free)."""
    return r"^\s*" + r"\s*,\s*".join(re.escape(p) for p in precursors) + r"\s*$"


def recipe_template(system: ChemicalSystem, target: str | None = None) -> str:
    """A commented YAML recipe for ``system`` (default: its first buildable target, first
    precursor set, the default programme) that :meth:`Recipe.from_file` reads as is.

    Raises:
        ValueError: ``target`` is not a target of ``system``.
    """
    if target is None:
        target = next((t for t, s in system.targets.items() if not s.unobtainium), next(iter(system.targets)))
    if target not in system.targets:
        raise ValueError(f"{target!r} is not a target of {system.name} (targets: {', '.join(system.targets)})")
    spec = system.targets[target]
    lines = [f"# A synthgap recipe for {system.name} (YAML; JSON works too); its JSON Schema:",
             f"#   synthgap recipe schema --system {system.name}",
             "# Each field's unit is fixed (below, with its range); values outside the ranges are refused.",
             f"# targets of {system.name}: " + ", ".join(f"{t}{' (unobtainium)' if s.unobtainium else ''}"
                                                        for t, s in system.targets.items()),
             f"target: {target}",
             f"# allowed precursor sets for {target}: " + "; ".join(", ".join(s) for s in spec.precursor_sets),
             f"precursors: [{', '.join(spec.precursor_sets[0])}]"]
    for name, b in RECIPE_LIMITS.items():
        lines.append(f"# {b.meaning}: {b.describe()}")
        lines.append(f"{name}: {getattr(_DEFAULTS, name):g}")
    lines.append(f"# furnace atmosphere: one of {', '.join(load_atmospheres())}")
    lines.append(f"atmosphere: {_DEFAULTS.atmosphere}")
    return "\n".join(lines) + "\n"


def write_schema_file(path: Path = SCHEMA_FILE) -> Path:
    """Write the system-free schema (how ``data/recipe.schema.json`` is made)."""
    path.write_text(json.dumps(recipe_schema(), indent=1) + "\n")
    return path
