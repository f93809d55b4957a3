"""``synthgap recipe template|schema|check``: the recipe file format, documented and checked.

    synthgap recipe template BaTiO3 --out recipe.yaml   # a commented recipe to edit
    synthgap recipe schema --system BaTiO3 --out recipe.schema.json
    synthgap recipe check recipe.yaml --system BaTiO3   # every problem named, or "ok"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from synthgap.envs.userfiles import short


class RecipeCLIError(ValueError):
    """Bad ``synthgap recipe`` input; the message says what to fix."""


def add_parsers(sub) -> None:
    p = sub.add_parser("recipe", help="the recipe file format: a commented template, its JSON Schema, a check")
    rs = p.add_subparsers(dest="recipe_command", required=True)
    t = rs.add_parser("template", help="write a commented recipe for a system (every field, unit and range)")
    t.add_argument("system", help="catalogue name or system file")
    t.add_argument("--target", default=None, help="default: the system's first buildable target")
    t.add_argument("--out", default="-", help="file to write (default: standard output); never overwritten")
    t.set_defaults(func=cmd_template)
    s = rs.add_parser("schema", help="the JSON Schema of recipe files (for editors and validators)")
    s.add_argument("--system", default=None, help="enumerate this system's targets and precursor sets")
    s.add_argument("--out", default="-", help="file to write (default: standard output); never overwritten")
    s.set_defaults(func=cmd_schema)
    c = rs.add_parser("check", help="read a recipe file and check it against a system")
    c.add_argument("file")
    c.add_argument("--system", required=True)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)


def _write(text: str, out: str, what: str) -> None:
    if out == "-":
        sys.stdout.write(text)
        return
    path = Path(out)
    if not out.strip() or path.is_dir():
        raise RecipeCLIError(f"--out {short(out)}: give a file name, not a folder or an empty name")
    if path.exists():
        raise RecipeCLIError(f"--out {path}: the file exists; choose another name (it is never overwritten)")
    if not path.parent.is_dir():
        raise RecipeCLIError(f"--out {path}: folder {path.parent} does not exist")
    path.write_text(text)
    print(f"{what} written to {path}", file=sys.stderr)


def _system(name: str):
    from synthgap.envs.chemistry import CatalogueError, load_system

    try:
        return load_system(name)
    except CatalogueError as exc:
        raise RecipeCLIError(str(exc)) from None


def _run(fn, args) -> int:
    try:
        return fn(args)
    except (RecipeCLIError, ValueError) as exc:
        print(f"synthgap recipe {args.recipe_command}: {exc}", file=sys.stderr)
        return 2


def cmd_template(args: argparse.Namespace) -> int:
    from synthgap.envs.chemistry.recipe_format import recipe_template

    def go(a):
        _write(recipe_template(_system(a.system), a.target), a.out, "recipe template")
        return 0
    return _run(go, args)


def cmd_schema(args: argparse.Namespace) -> int:
    from synthgap.envs.chemistry.recipe_format import recipe_schema

    def go(a):
        system = _system(a.system) if a.system else None
        _write(json.dumps(recipe_schema(system), indent=1) + "\n", a.out, "schema")
        return 0
    return _run(go, args)


def cmd_check(args: argparse.Namespace) -> int:
    from synthgap.envs.chemistry import Recipe, validate_recipe

    def go(a):
        recipe = validate_recipe(_system(a.system), Recipe.from_file(a.file))
        if a.json:
            print(json.dumps({"ok": True, "recipe": recipe.to_dict()}))
        else:
            print(f"ok: {a.file} is a recipe of {a.system}")
        return 0
    return _run(go, args)
