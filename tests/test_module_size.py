"""No module of the package above :data:`MAX_LINES` lines (issue 11's acceptance).

Every ``.py`` file under the folders of pyproject's ``package-dir`` mapping is counted
(lines as ``wc -l`` counts them, nothing imported); a failure lists each offender with its
line count, largest first, so the split to do next is the first one named.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 450  # lines per module, at most


def package_files(root: Path = ROOT) -> list[Path]:
    """Every module file of the package, from pyproject's ``package-dir`` mapping."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    folders = config["tool"]["setuptools"]["package-dir"].values()
    return sorted({path for folder in folders for path in (root / folder).rglob("*.py")})


def oversized(files: list[Path], root: Path = ROOT) -> list[tuple[str, int]]:
    """``(path relative to root, lines)`` of each file above :data:`MAX_LINES`, largest first."""
    sizes = [(path.relative_to(root).as_posix(), path.read_bytes().count(b"\n")) for path in files]
    return sorted(((p, n) for p, n in sizes if n > MAX_LINES), key=lambda pn: -pn[1])


def _report(offenders: list[tuple[str, int]]) -> str:
    return f"modules above {MAX_LINES} lines:\n" + "\n".join(f"  {p}: {n}" for p, n in offenders)


def test_the_walk_finds_the_package():
    names = {p.relative_to(ROOT).as_posix() for p in package_files()}
    assert {"envs/chemistry/catalogue.py", "agents/benchmark.py", "hardware/eurotherm.py",
            "experiments/cli.py"} <= names


def test_no_module_above_the_limit():
    offenders = oversized(package_files())
    assert not offenders, _report(offenders)
