"""XRD by result files: the driver drops a request file, the instrument PC answers.

Exchange (both JSON, written atomically via a temporary name + ``os.replace``):

- request ``<inbox>/<request_id>.request.json``:
  ``{"request_id", "sample_id", "two_theta_min", "two_theta_max", "step"}`` (degrees)
- result ``<outbox>/<request_id>.result.json``:
  ``{"request_id", "phase_fractions": {"<phase>": fraction, ...}}`` with fractions in
  [0, 1] summing to 1 (within 0.02), or ``{"request_id", "error": "<text>"}``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from synthgap.envs.userfiles import load_user_file, one_line

from .errors import InstrumentError, InstrumentTimeout, ProtocolError

__all__ = ["XRDFolderDriver", "write_json_atomic"]

log = logging.getLogger(__name__)

SUM_TOLERANCE = 0.02  # allowed |sum(fractions) - 1|


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` so readers never see a partial file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class XRDFolderDriver:
    """Diffractometer reached through two shared folders.

    Args:
        inbox: folder the instrument watches for requests.
        outbox: folder the instrument writes results into.
        timeout_s: longest wait for a result, s.
        poll_s: folder polling period, s.
        sleep: injectable sleep (tests).
    """

    def __init__(self, inbox: str | Path, outbox: str | Path, timeout_s: float = 3600.0,
                 poll_s: float = 1.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.inbox = Path(inbox)
        self.outbox = Path(outbox)
        for folder in (self.inbox, self.outbox):
            if not folder.is_dir():
                raise InstrumentError(f"XRD folder {folder} does not exist")
        if not (timeout_s > 0 and poll_s > 0):
            raise ValueError("timeout_s and poll_s must be > 0")
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.sleep = sleep

    def submit(self, sample_id: str, two_theta: tuple[float, float] = (10.0, 80.0),
               step: float = 0.02) -> str:
        """Write a request; returns its ``request_id``. Angles in degrees 2-theta."""
        lo, hi = (float(v) for v in two_theta)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi <= 180):
            raise ValueError(f"two_theta {two_theta!r} must satisfy 0 <= min < max <= 180")
        if not (math.isfinite(step) and 0 < step <= hi - lo):
            raise ValueError(f"step {step!r} must be in (0, {hi - lo}]")
        if not sample_id or "/" in sample_id:
            raise ValueError(f"sample_id {sample_id!r} must be a non-empty name")
        request_id = f"{sample_id}-{uuid.uuid4().hex[:12]}"
        write_json_atomic(self.inbox / f"{request_id}.request.json", {
            "request_id": request_id, "sample_id": sample_id,
            "two_theta_min": lo, "two_theta_max": hi, "step": step})
        log.info("XRD request %s submitted", request_id)
        return request_id

    def wait(self, request_id: str) -> dict[str, float]:
        """Wait for the result of ``request_id``; returns phase name -> fraction."""
        path = self.outbox / f"{request_id}.result.json"
        deadline = time.monotonic() + self.timeout_s
        while not path.exists():
            if time.monotonic() >= deadline:
                raise InstrumentTimeout(f"XRD: no result for {request_id} in {self.timeout_s} s")
            self.sleep(self.poll_s)
        try:  # bounded: a runaway or corrupt result file cannot exhaust memory
            result = load_user_file(path)
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"XRD: unreadable result: {one_line(exc)}") from exc
        return self._validate(request_id, path, result)

    def measure(self, sample_id: str, two_theta: tuple[float, float] = (10.0, 80.0),
                step: float = 0.02) -> dict[str, float]:
        """Submit and wait; returns phase name -> weight fraction (sums to 1)."""
        return self.wait(self.submit(sample_id, two_theta, step))

    @staticmethod
    def _validate(request_id: str, path: Path, result: object) -> dict[str, float]:
        if not isinstance(result, dict) or result.get("request_id") != request_id:
            raise ProtocolError(f"XRD: {path} is not a result for {request_id}")
        if "error" in result:
            raise InstrumentError(f"XRD {request_id} failed: {result['error']}")
        fractions = result.get("phase_fractions")
        if not isinstance(fractions, dict) or not fractions:
            raise ProtocolError(f"XRD: {path} has no phase_fractions")
        out: dict[str, float] = {}
        for phase, value in fractions.items():
            if not (isinstance(value, int | float) and math.isfinite(value)
                    and 0.0 <= value <= 1.0):
                raise ProtocolError(f"XRD: {path}: fraction of {phase!r} = {value!r}")
            out[str(phase)] = float(value)
        if abs(sum(out.values()) - 1.0) > SUM_TOLERANCE:
            raise ProtocolError(f"XRD: {path}: fractions sum to {sum(out.values())}")
        return out
