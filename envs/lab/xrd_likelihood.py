"""What an XRD scan's weight fractions say about a predicted phase assemblage: the
likelihood the chemistry's calibration fits (:mod:`.kinetic_calibration`).

The lab's XRD (:meth:`.measurement.MeasurementModel.xrd`) adds N(0, sd) to each true weight
fraction, reports a phase below the detection limit as absent, and renormalises what it
detected to 1. So a phase reported absent says only that it was below the limit: a
censored value, of probability Phi((limit - predicted) / sd); and a detected phase is
compared with the prediction renormalised over the phases that scan detected. Read as
plain Gaussian residuals (as the fit did before), a phase predicted at 1.9 % and reported
absent counted as a 1.9-sd miss, and two such phases left the detected ones 4 % high.

Units: weight fractions 0-1; residuals in units of the sd.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from .measurement import XRD_DETECTION_LIMIT

__all__ = ["detected_misfit", "xrd_residuals"]


def _renormalised(pred: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """(..., n, P) predictions renormalised over each scan's detected phases."""
    total = np.sum(np.where(detected, pred, 0.0), axis=-1, keepdims=True)
    return pred / np.maximum(total, 1e-12)


def xrd_residuals(pred: np.ndarray, measured: np.ndarray, sd: float,
                  limit: float = XRD_DETECTION_LIMIT) -> np.ndarray:
    """(..., n, P) residuals of predicted weight fractions ``pred`` (..., n, P) against the
    scans ``measured`` (n, P), each in units of ``sd``: the log-likelihood is -1/2 their sum
    of squares. A detected phase: (renormalised prediction - measured) / sd. A phase reported
    absent: sqrt(-2 ln Phi((limit - pred) / sd)), about 0 when the prediction is well below
    the limit."""
    detected = measured > 0.0
    fitted = np.where(detected, (_renormalised(pred, detected) - measured) / sd, 0.0)
    censored = np.sqrt(np.maximum(-2.0 * log_ndtr((limit - pred) / sd), 0.0))
    return np.where(detected, fitted, censored)


def detected_misfit(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """(k,) weight-fraction misfits of the detected phases (renormalised prediction - measured):
    what the residual sd is estimated from."""
    detected = measured > 0.0
    return (_renormalised(pred, detected) - measured)[np.broadcast_to(detected, pred.shape)]
