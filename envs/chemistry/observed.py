"""Observed firings: real experiments with their XRD weight fractions, read from a CSV.

The format is the ARROWS3 campaign table (``data/arrows-ybco/experiments.csv``, Szymanski
et al., Nat. Commun. 14, 6956 (2023); see that folder's README for the attribution): one
row per firing with the columns

- ``experiment``: its position in the campaign (an integer, unique);
- ``temperature_C``: the firing temperature, degC (in air);
- ``precursors``: the precursor set, ``A + B + C``;
- ``products``: the phases XRD identified, ``A + B``;
- ``weight_fractions``: their refined weight fractions in the same order, ``0.88 + 0.12``.

Fractions are kept as reported: rounded to two decimals they may sum to 1 +- 0.03 (five
phases, 0.005 each), and a row further off is refused. What the table does not hold
(ramp, hold, cooling, milling) a model must state as its assumed protocol.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from synthgap.envs.userfiles import UserFileError, read_user_text, short

__all__ = ["ObservedFiring", "read_firings", "ARROWS_YBCO", "ARROWS_YBCO_TARGET", "FRACTION_SUM_TOLERANCE"]

COLUMNS = ("experiment", "temperature_C", "precursors", "products", "weight_fractions")
FRACTION_SUM_TOLERANCE = 0.03  # |sum - 1| allowed: two-decimal rounding of up to five phases
MAX_ROWS = 100_000
ARROWS_YBCO_TARGET = "Ba2YCu3O7"  # YBa2Cu3O6.5, as the campaign's data writes it
CELSIUS = 273.15  # K at 0 degC


def _packaged(name: str) -> Path:
    return Path(str(resources.files("synthgap.envs.chemistry").joinpath(f"data/arrows-ybco/{name}")))


ARROWS_YBCO = _packaged("experiments.csv")  # the campaign's firings shipped with synthgap


@dataclass(frozen=True)
class ObservedFiring:
    """One real firing and what XRD found.

    Attributes:
        experiment: position in its campaign.
        temperature_K: firing temperature, K.
        precursors: the precursor set, as written (order kept).
        phases: phase -> measured weight fraction (0-1), as reported.
    """

    experiment: int
    temperature_K: float
    precursors: tuple[str, ...]
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def precursor_set(self) -> frozenset[str]:
        """The set of precursors (the group of leave-one-set-out cross-validation)."""
        return frozenset(self.precursors)

    def fraction(self, phase: str) -> float:
        """Measured weight fraction of ``phase`` (0 if XRD did not find it)."""
        return self.phases.get(phase, 0.0)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split("+")]


def _row(path: str | Path, line: int, row: dict[str, str]) -> ObservedFiring:
    def bad(col: str, problem: str) -> UserFileError:
        return UserFileError(path, f"line {line}, column {col}: {problem}")

    try:
        experiment = int(row["experiment"])
    except ValueError:
        raise bad("experiment", f"expected an integer, got {short(row['experiment'])}") from None
    try:
        celsius = float(row["temperature_C"])
    except ValueError:
        raise bad("temperature_C", f"expected a number (degC), got {short(row['temperature_C'])}") from None
    if not (math.isfinite(celsius) and -CELSIUS < celsius <= 3000.0):
        raise bad("temperature_C", f"{celsius:g} degC is not a furnace temperature (above -273.15, at most 3000)")
    precursors = _split(row["precursors"])
    products = _split(row["products"])
    if not all(precursors):
        raise bad("precursors", f"an empty name in {short(row['precursors'])} (write A + B + C)")
    if not all(products):
        raise bad("products", f"an empty name in {short(row['products'])} (write A + B)")
    try:
        fractions = [float(x) for x in _split(row["weight_fractions"])]
    except ValueError:
        raise bad("weight_fractions", f"expected numbers as 0.8 + 0.2, got {short(row['weight_fractions'])}") from None
    if len(fractions) != len(products):
        raise bad("weight_fractions", f"{len(fractions)} fraction(s) for {len(products)} product(s)")
    if len(set(products)) != len(products):
        raise bad("products", f"a phase listed twice in {short(row['products'])}")
    if not all(math.isfinite(f) and 0.0 <= f <= 1.0 for f in fractions):
        raise bad("weight_fractions", f"each fraction must be in 0..1, got {short(row['weight_fractions'])}")
    if abs(sum(fractions) - 1.0) > FRACTION_SUM_TOLERANCE:
        raise bad("weight_fractions", f"they sum to {sum(fractions):.3f}, not 1 (+- {FRACTION_SUM_TOLERANCE})")
    return ObservedFiring(experiment, celsius + CELSIUS, tuple(precursors), dict(zip(products, fractions, strict=True)))


def read_firings(path: str | Path = ARROWS_YBCO) -> list[ObservedFiring]:
    """The firings of a CSV in the ARROWS3 format (default: the campaign shipped with synthgap).

    Raises:
        UserFileError: unreadable, a missing column, or a bad row (naming the line and column).
    """
    text = read_user_text(path)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UserFileError(path, f"missing column(s) {', '.join(missing)}; the header must hold {', '.join(COLUMNS)}")
    out: list[ObservedFiring] = []
    seen: dict[int, int] = {}
    for row in reader:
        line = reader.line_num
        if len(out) >= MAX_ROWS:
            raise UserFileError(path, f"more than {MAX_ROWS:,} rows")
        if None in row or any(row[c] is None for c in COLUMNS):
            raise UserFileError(path, f"line {line}: expected {len(COLUMNS)} fields ({', '.join(COLUMNS)})")
        firing = _row(path, line, row)
        if firing.experiment in seen:
            raise UserFileError(path, f"line {line}: experiment {firing.experiment} already on line "
                                      f"{seen[firing.experiment]}")
        seen[firing.experiment] = line
        out.append(firing)
    if not out:
        raise UserFileError(path, "no firings (a header and no rows)")
    return out
