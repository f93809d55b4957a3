"""The ``synthgap`` command: one argparse tree, subcommands registered by their modules.

Every handler returns an exit status. User errors (bad input, missing data, malformed
files, unreadable paths, a bad flag) end with status 2 and one line on stderr of at most
:data:`synthgap.envs.userfiles.MAX_LINE_CHARS` characters, never a traceback. Files are read
through :mod:`synthgap.envs.userfiles` (size, nesting and alias-expansion limits) and numbers
are checked by ``argparse`` types (finite, in range), so the line names the file or the flag.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .cli_common import interrupted

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


def _register(subparsers, bench) -> None:
    """Each module adds its own subcommands; a module that is missing is skipped."""
    from . import chemistry_cli, demo

    chemistry_cli.add_parsers(subparsers, bench)
    demo.add_parsers(subparsers)
    optional: list[tuple[str, str, bool]] = [
        ("synthgap.experiments.lab_cli", "add_lab_parsers", True),
        ("synthgap.experiments.env_cli", "add_parsers", True),
        ("synthgap.experiments.train_cli", "add_parsers", False),
        ("synthgap.experiments.benchmark_cli", "add_benchmark_parser", False),
        ("synthgap.hardware.emulators.cli", "add_emulate_parser", False),
        ("synthgap.experiments.deploy_cli", "add_parsers", False),
        ("synthgap.experiments.recipe_cli", "add_parsers", False),
        ("synthgap.experiments.validate_cli", "add_parsers", False),
        ("synthgap.experiments.system_cli", "add_parsers", False),
    ]
    import importlib

    for module, func, takes_bench in optional:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("synthgap"):
                continue
            raise
        add: Callable = getattr(mod, func)
        add(subparsers, bench) if takes_bench else add(subparsers)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block); subparsers inherit it."""

    def error(self, message: str):
        from synthgap.envs.userfiles import one_line

        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="synthgap",
        description="A self-driving-lab simulator and controller for solid-state synthesis.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    bench_parser = sub.add_parser("bench", help="measure throughput (prints figures and ratios)")
    bench = bench_parser.add_subparsers(dest="bench_command", metavar="WHAT")
    bench.required = True
    _register(sub, bench)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user asked for something wrong (exit 2, one line)."""
    from synthgap.envs.chemistry import CatalogueError, MissingDataError, RecipeError, ThermoError

    errors: tuple[type[BaseException], ...] = (CatalogueError, MissingDataError, RecipeError, ThermoError,
                                               ValueError, KeyError, OSError)
    mlflow_errors = sys.modules.get("mlflow.exceptions")  # only if MLflow was imported (about 1 s)
    if mlflow_errors is not None:
        errors += (mlflow_errors.MlflowException,)
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except user_errors() as exc:
        if interrupted(exc):
            print("synthgap: interrupted; finished results are kept", file=sys.stderr)
            return 130
        from synthgap.envs.userfiles import one_line

        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"synthgap: error: {one_line(msg) or type(exc).__name__}", file=sys.stderr)
        return 2
    except BaseException as exc:
        if not interrupted(exc):
            raise
        print("synthgap: interrupted; finished results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
