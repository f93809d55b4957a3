"""The lab interface: what the twin (:class:`~synthgap.envs.lab.simlab.SimLab`) and a
hardware backend both implement, so agents and environments run on either.

Units: lab clock in s, masses in g, milling in h, temperatures in K.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from synthgap.envs.chemistry import ChemicalSystem, Recipe

from .records import Characterisation, FurnaceLog, Programme, SampleRecord

__all__ = ["Lab", "LabInputError"]


class LabInputError(ValueError):
    """A request the lab refuses before doing anything; the message quotes the bad value."""


@runtime_checkable
class Lab(Protocol):
    """A self-driving lab for solid-state synthesis.

    ``run_recipe`` runs the whole chain for one sample (dispense and weigh each
    precursor, mill, press, fire, XRD, property measurement) and returns when it is done.
    ``submit``/``run`` let several agents share the lab: submitted samples advance
    together on the lab clock. The lower-level steps are there for agents that drive the
    instruments themselves. Bad input raises :class:`LabInputError` (a ``ValueError``)
    before anything happens.
    """

    system: ChemicalSystem

    @property
    def now(self) -> float:
        """Lab clock, s."""
        ...

    def run_recipe(self, recipe: Recipe) -> SampleRecord:
        """Make and measure one sample; advance the clock until it is finished."""
        ...

    def submit(self, recipe: Recipe, tag: str = "") -> str:
        """Queue a sample for the whole chain; return its sample id."""
        ...

    def submit_load(self, recipes: Sequence[Recipe], tags: Sequence[str] | None = None) -> list[str]:
        """Queue samples that share one furnace load (one programme); return their ids."""
        ...

    def run(self, until: float | None = None) -> list[SampleRecord]:
        """Advance until all submitted samples are finished (or lab time ``until``, s);
        return the records finished in this call, in finishing order."""
        ...

    def dispense(self, sample_id: str, precursor: str, mass_g: float) -> float:
        """Dispense ``mass_g`` g of a precursor into the sample's vial; return the weighed g."""
        ...

    def mill(self, sample_id: str, hours: float) -> None:
        """Ball-mill the sample for ``hours`` h."""
        ...

    def press(self, sample_id: str) -> None:
        """Press the milled powder into a pellet."""
        ...

    def fire(self, sample_ids: list[str], programme: Programme) -> FurnaceLog:
        """Fire a load of one or more crucibles with one setpoint programme."""
        ...

    def characterise(self, sample_id: str) -> Characterisation:
        """XRD phase fractions and the property measurement of a fired sample."""
        ...

    def telemetry(self, sample_id: str) -> dict:
        """The agent-visible record of a sample so far, as a flat dict."""
        ...
