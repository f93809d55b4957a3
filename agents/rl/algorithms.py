"""The SB3 algorithms synthgap trains and loads, by name.

Standard library only (SB3 is imported when a class is asked for): this module is also
shipped inside every logged policy model (see :mod:`.pyfunc`), where synthgap is not
installed.
"""

from __future__ import annotations

ALGOS = ("ppo", "a2c", "sac")


def algo_class(algo: str):
    """The SB3 class of ``algo`` (``"ppo"``, ``"a2c"`` or ``"sac"``).

    Raises:
        KeyError: another name.
    """
    if algo not in ALGOS:
        raise KeyError(algo)
    import stable_baselines3

    return getattr(stable_baselines3, algo.upper())
