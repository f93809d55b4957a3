"""Instrument emulators answering the real protocols on pseudo-terminals."""

from .balance import BalanceEmulator
from .base import Fault, PtyEmulator
from .furnace import FurnaceEmulator, crc16
from .stations import StationEmulator

__all__ = ["BalanceEmulator", "Fault", "FurnaceEmulator", "PtyEmulator", "StationEmulator",
           "crc16"]
