"""The q of a q range's result (eqegs_repo.kernels.e_spectrum.range_q): counts-weighted mean of
the bins' pixel q, the extreme q of their pixels, the requested range; negative counts weigh
nothing, a range without positive counts falls back to the pixel mean, and bad arrays are named."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.range_q import RangeQ, range_q

Q_MEAN = np.array([10.0, 10.5, 11.0, 11.5, 12.0])
NPIX = np.array([0.0, 40.0, 50.0, 60.0, 70.0])
LOW, HIGH = Q_MEAN - 0.26, Q_MEAN + 0.27


def of(bins, counts, npix=NPIX):
    return range_q(bins=np.array(bins), counts=np.asarray(counts, float), q_mean=Q_MEAN, npix=npix,
                   q_pixel_min=LOW, q_pixel_max=HIGH, q_min=10.4, q_max=11.6)


def test_the_weighted_q_is_the_counts_weighted_mean_of_the_bins_used():
    rq = of([1, 2, 3], [5.0, 100.0, 300.0, 200.0, 7.0])
    assert rq.q_weighted == pytest.approx((100 * 10.5 + 300 * 11.0 + 200 * 11.5) / 600)
    assert (rq.q_pixel_min, rq.q_pixel_max) == (LOW[1], HIGH[3])
    assert (rq.q_min, rq.q_max, rq.weighted_by) == (10.4, 11.6, "counts")
    assert rq.values() == {"q_weighted": rq.q_weighted, "q_pixel_min": LOW[1], "q_pixel_max": HIGH[3],
                           "q_min": 10.4, "q_max": 11.6}
    assert set(RangeQ.LONG_NAMES) == set(RangeQ.NAMES)


def test_a_bin_with_negative_counts_weighs_nothing_and_no_positive_counts_give_the_pixel_mean():
    assert of([1, 2, 3], [0.0, -50.0, 300.0, 100.0, 0.0]).q_weighted == pytest.approx((300 * 11.0 + 100 * 11.5) / 400)
    rq = of([1, 2, 3], [0.0, -5.0, 0.0, -1.0, 0.0])
    assert rq.weighted_by == "pixels"
    assert rq.q_weighted == pytest.approx((40 * 10.5 + 50 * 11.0 + 60 * 11.5) / 150)


@pytest.mark.parametrize("bins, counts, words", [
    ([], np.ones(5), "non-empty 1-D array of bin indices"),
    ([1, 7], np.ones(5), "holding every bin index"),
    ([1, 2], np.ones(4), "one length"),
])
def test_bad_arrays_are_named(bins, counts, words):
    with pytest.raises(BadInput, match=words):
        of(bins, counts)
