"""The XRD likelihood the calibration fits: what a scan says about a predicted assemblage.

The scan (``MeasurementModel.xrd``) reports a phase below the detection limit as absent and
renormalises the rest; the likelihood must read it that way, or a phase predicted just below
the limit and detected phases left high by the renormalisation count as misses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from synthgap.envs.lab.measurement import XRD_DETECTION_LIMIT, XRD_SD, lab_measurement
from synthgap.envs.lab.xrd_likelihood import detected_misfit, xrd_residuals

TRUE = np.array([[0.55, 0.41, 0.019, 0.015, 0.006, 0.0]])  # two phases just below the 2 % limit


def test_a_noise_free_scan_of_the_truth_fits_it_exactly_where_detected():
    scan = lab_measurement().xrd(TRUE, np.zeros_like(TRUE))  # no noise: only the limit and the renormalisation
    assert (scan[0, 2:] == 0).all() and scan[0, :2].sum() == pytest.approx(1.0)
    res = xrd_residuals(TRUE, scan, XRD_SD)
    np.testing.assert_allclose(res[0, :2], 0.0, atol=1e-12)  # the renormalised prediction is the scan
    assert detected_misfit(TRUE, scan) == pytest.approx(np.zeros(2), abs=1e-12)
    # plain residuals would call the first phase 2.3 sd off (0.55 renormalised to 0.573), the absent ones 1.9 sd
    assert abs(scan[0, 0] - TRUE[0, 0]) / XRD_SD > 1.0


def test_an_absent_phase_costs_the_probability_of_reading_below_the_limit():
    scan = lab_measurement().xrd(TRUE, np.zeros_like(TRUE))
    res = xrd_residuals(TRUE, scan, XRD_SD)
    for j in range(2, 6):
        expected = norm.logcdf((XRD_DETECTION_LIMIT - TRUE[0, j]) / XRD_SD)
        assert -0.5 * res[0, j] ** 2 == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # nothing there: a log-likelihood of ln Phi(2) = -0.023; 1.9 % reported absent: ln Phi(0.1) = -0.62
    assert -0.5 * res[0, 5] ** 2 > -0.03 and -0.5 * res[0, 2] ** 2 < -0.5
    hot = TRUE.copy()
    hot[0, 3] = 0.08  # predicted at 8 %, reported absent: 6 sd above the limit
    assert xrd_residuals(hot, scan, XRD_SD)[0, 3] > 5.0


def test_the_residuals_broadcast_over_a_batch_of_predictions():
    scan = lab_measurement().xrd(TRUE, np.zeros_like(TRUE))
    batch = np.stack([TRUE, TRUE * 0.5 + 0.5 * np.array([[0, 1, 0, 0, 0, 0]])])
    res = xrd_residuals(batch, scan, XRD_SD)
    assert res.shape == (2, 1, 6) and np.allclose(res[0], xrd_residuals(TRUE, scan, XRD_SD))
    assert np.sum(res[1] ** 2) > np.sum(res[0] ** 2)
