"""The lab's seam: the error every lab raises for bad input, and where the lab lives.

The lab is one concrete front-end, :class:`~synthgap.envs.lab.frontend.Lab`, over a
:class:`~synthgap.envs.lab.backend.LabBackend` (the SimPy twin, the direct backend, the
hardware). ``from synthgap.envs.lab.protocol import Lab`` still works and gives the
front-end (loaded on first use); importing this module imports neither SimPy nor gymnasium.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LabInputError"]  # and Lab, loaded on first use


class LabInputError(ValueError):
    """A request the lab refuses before doing anything; the message quotes the bad value."""


def __getattr__(name: str) -> Any:
    if name == "Lab":  # the front-end imports this module: load it on first use, not here
        return importlib.import_module(".frontend", __package__).Lab
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
