"""LabShield: the safety shield plus the lab's other state-changing commands (dose, tare, XRD scan).

Each command is checked and journaled like every shield command, and refused (journaled)
while the emergency stop is latched. Units: masses g.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .drivers import BalanceDriver, DosingRobot, XRDDriver
from .shield import SafetyShield
from .shield_values import DOSE_DECIMALS, DOSE_RESOLUTION_G, PRECURSOR_NAME, SAMPLE_ID

__all__ = ["LabShield"]


class LabShield(SafetyShield):
    """The safety shield plus the lab's other state-changing commands (dose, tare, XRD scan).

    Each is refused (journaled) while the emergency stop is latched, like every other
    state-changing command.
    """

    robot: DosingRobot | None

    def __init__(self, *args: Any, robot: DosingRobot | None = None, balance: BalanceDriver | None = None,
                 xrd: XRDDriver | None = None, **kwargs: Any) -> None:
        super().__init__(*args, robot=robot, **kwargs)
        self.balance = balance
        self.xrd = xrd

    def tare_balance(self) -> float | None:
        """Tare the balance (``T``); returns the tare weight, g (None in dry run)."""
        return self._send("balance.tare", self.balance.tare)

    def dose(self, precursor: str, mass_g: float) -> None:
        """Dose ``mass_g`` g of ``precursor`` into the vial on the balance.

        ``precursor`` is one formula word (``BaCO3``); ``mass_g`` must be in
        (0, max_mass_g] and representable by the ``DOSE`` command, which carries
        ``DOSE_DECIMALS`` decimals: a mass below ``DOSE_RESOLUTION_G`` (it would go out as
        ``0.00000``) or one that rounds above max_mass_g is refused, never sent. The wire
        text is journaled with the command.
        """
        name = self._name("dose.precursor", precursor, PRECURSOR_NAME,
                          "a precursor formula like 'BaCO3' (ASCII letters, digits, ()._-; at most 32)")
        mass = self._checked("dose.mass", mass_g)
        cap = self.limits.max_mass_g
        if not 0 < mass <= cap:
            raise self._refuse("dose.mass", mass, cap, "mass must be in (0, max_mass_g]")
        wire = f"{mass:.{DOSE_DECIMALS}f}"
        if mass < DOSE_RESOLUTION_G or float(wire) <= 0:
            raise self._refuse("dose.mass", mass, DOSE_RESOLUTION_G,
                               f"below the DOSE command's resolution {DOSE_RESOLUTION_G:g} g (would be sent as {wire})")
        if float(wire) > cap:
            raise self._refuse("dose.mass", mass, cap, f"goes out as {wire} g on the wire, above max_mass_g")
        robot = self._station("robot", self.robot)
        self._send("dose", lambda: robot.command("DOSE", name, wire), precursor=name, mass_g=mass, wire=wire)

    def xrd_scan(self, sample_id: str) -> str | None:
        """Request an XRD scan of ``sample_id`` (a file-name-safe id); returns the request id
        (None in dry run)."""
        sid = self._name("xrd.scan", sample_id, SAMPLE_ID,
                         "a sample id (ASCII letters, digits, ._-; at most 64 characters)")
        return self._send("xrd.scan", lambda: self.xrd.submit(sid), sample_id=sid)

    def read(self, name: str, func: Callable[[], Any]) -> Any:
        """Take a reading with ``func`` and journal it (before the caller uses it)."""
        with self._lock:  # one transaction on a port at a time (the watchdog thread sends too)
            value = func()
            self._record("reading", name=name, value=value)
        return value
