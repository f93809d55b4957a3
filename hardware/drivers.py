"""What the safety shield and the hardware lab need from each driver: one Protocol per instrument.

The shield (:class:`~synthgap.hardware.shield.SafetyShield` and the lab's ``LabShield``) and
:class:`~synthgap.hardware.lab.HardwareLab` are written against these protocols, so the real
drivers, drivers on the pty emulators and test doubles are interchangeable. Each protocol
holds exactly the members its user calls, with the units of the drivers' API (K, K/min, rpm,
s, kN, g); ``tests/hardware/test_hw_drivers.py`` checks that the drivers in this package
satisfy them, by name and by call signature.

=========================  ===========================================  ==========================
protocol                   members                                      driver here
=========================  ===========================================  ==========================
:class:`FurnaceDriver`     ``temperature``, ``setpoint``, ``ramp_rate``,  ``EurothermController``
                           ``setpoint_high_limit``,
                           ``setpoint_low_limit``; optional
                           ``quantize`` (:class:`QuantizingFurnace`)
:class:`RobotDriver`       ``move``, ``stop``                           ``RobotArm``
:class:`DosingRobot`       a robot with ``command`` (``DOSE``)          ``RobotArm``
:class:`MillDriver`        ``mill``, ``stop``                           ``Mill``
:class:`PressDriver`       ``press``, ``stop``                          ``Press``
:class:`PolledStation`     ``status``                                   ``Mill``, ``Press``
:class:`BalanceDriver`     ``tare``                                     ``MTSICSBalance``
:class:`XRDDriver`         ``submit``                                   ``XRDFolderDriver``
=========================  ===========================================  ==========================

Only the standard library is imported here.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args

__all__ = [
    "STATION_STATUSES", "BalanceDriver", "DosingRobot", "FurnaceDriver", "MillDriver", "PolledStation",
    "PressDriver", "QuantizingFurnace", "RobotDriver", "StationDriver", "StationStatus", "XRDDriver",
]

#: What a line station answers to ``STATUS?``: idle, busy (a run in progress) or fault.
StationStatus = Literal["IDLE", "BUSY", "FAULT"]
STATION_STATUSES: tuple[StationStatus, ...] = get_args(StationStatus)


class FurnaceDriver(Protocol):
    """A furnace temperature controller, in K and K/min (e.g. ``EurothermController``).

    The shield reads ``temperature`` and ``setpoint``, writes ``setpoint`` and ``ramp_rate``,
    and programs the two setpoint limits on connect. A setter may raise ``ValueError`` for a
    value the controller cannot carry; a getter raises an ``InstrumentError`` when the value
    is unknown (timeout, lost port, implausible reading).
    """

    @property
    def temperature(self) -> float:
        """Measured thermocouple temperature (process value), K."""
        ...

    @property
    def setpoint(self) -> float:
        """Target setpoint, K."""
        ...

    @setpoint.setter
    def setpoint(self, value: float) -> None: ...

    @property
    def ramp_rate(self) -> float:
        """Setpoint ramp-rate limit, K/min; 0 means unlimited (the shield never sends 0)."""
        ...

    @ramp_rate.setter
    def ramp_rate(self, value: float) -> None: ...

    @property
    def setpoint_high_limit(self) -> float:
        """Highest setpoint the controller accepts, K."""
        ...

    @setpoint_high_limit.setter
    def setpoint_high_limit(self, value: float) -> None: ...

    @property
    def setpoint_low_limit(self) -> float:
        """Lowest setpoint the controller accepts, K."""
        ...

    @setpoint_low_limit.setter
    def setpoint_low_limit(self, value: float) -> None: ...


class QuantizingFurnace(FurnaceDriver, Protocol):
    """A furnace driver that can say what a write puts on the wire (used when present)."""

    def quantize(self, prop: str, value: float) -> float:
        """What ``driver.<prop> = value`` would send, in API units (K, K/min), sending
        nothing; ``ValueError`` if the write would be refused. ``prop`` is ``"setpoint"``,
        ``"ramp_rate"``, ``"setpoint_high_limit"`` or ``"setpoint_low_limit"``."""
        ...


class StationDriver(Protocol):
    """A station the emergency stop can halt."""

    def stop(self) -> None:
        """Stop any motion now."""
        ...


class RobotDriver(StationDriver, Protocol):
    """The crucible-handling robot arm (e.g. ``RobotArm``)."""

    def move(self, source: str, destination: str) -> None:
        """Carry the crucible at ``source`` to ``destination`` (location names such as
        ``FURNACE1``; the shield interlocks any location containing ``FURNACE``)."""
        ...


class DosingRobot(RobotDriver, Protocol):
    """A robot whose line also doses powder (``LabShield.dose`` sends ``DOSE <precursor> <g>``)."""

    def command(self, *words: object) -> str:
        """Send ``words`` joined by spaces as one line command; return the OK payload ('' if none)."""
        ...


class MillDriver(StationDriver, Protocol):
    """A ball mill (e.g. ``Mill``). Optional class constants ``MAX_RPM`` (rpm) and
    ``MAX_DURATION_S`` (s) tighten the shield's checks where the driver declares them."""

    def mill(self, rpm: float, duration_s: float) -> None:
        """Start milling at ``rpm`` rev/min for ``duration_s`` s (returns once accepted)."""
        ...


class PressDriver(StationDriver, Protocol):
    """A pellet press (e.g. ``Press``). Optional class constants ``MAX_FORCE_KN`` (kN) and
    ``MAX_HOLD_S`` (s) tighten the shield's checks where the driver declares them."""

    def press(self, force_kN: float, hold_s: float) -> None:
        """Press at ``force_kN`` kN for ``hold_s`` s."""
        ...


class PolledStation(Protocol):
    """A station the lab polls until its run is over (mill, press)."""

    def status(self) -> StationStatus:
        """The station's state: ``IDLE``, ``BUSY`` or ``FAULT``."""
        ...


class BalanceDriver(Protocol):
    """A balance the shield may tare (e.g. ``MTSICSBalance``)."""

    def tare(self) -> float:
        """Tare the current load; return the tare weight, g."""
        ...


class XRDDriver(Protocol):
    """An X-ray diffractometer that takes scan requests (e.g. ``XRDFolderDriver``)."""

    def submit(self, sample_id: str) -> str:
        """Request a scan of ``sample_id`` (default angle range); return the request id."""
        ...
