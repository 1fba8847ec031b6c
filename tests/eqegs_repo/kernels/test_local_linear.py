"""The default energy resampling, ``binning: local_linear``: a local linear fit at each grid
centre to the kept frames within one grid step (docs/physics.md#energy-spectrum-and-isf)."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import e_spectrum as es


def operator(energy, binning, grid=es.SpectrumGrid(1.0, 8), keep=None):
    energy = np.asarray(energy, float)
    keep = np.ones(energy.size, bool) if keep is None else keep
    return es.resampling(energy, keep, np.zeros(energy.size, int), grid=grid, binning=binning, label="test")


def test_a_linear_spectrum_is_reproduced_exactly_whatever_the_spacing_of_the_frames():
    rng = np.random.default_rng(3)
    energy = np.sort(rng.uniform(-4.0, 4.0, 60))  # irregular: 0 to 5 frames per bin
    values = 100.0 + 7.5 * energy
    grid = es.SpectrumGrid(1.0, 8)
    exact = 100.0 + 7.5 * grid.centres
    local = operator(energy, "local_linear", grid).spectrum(values, values)
    assert np.allclose(local.y, exact, rtol=0, atol=1e-9)
    assert np.allclose(operator(energy, "local_linear", grid).matrix.sum(axis=1), 1.0)  # weights sum to 1
    average = operator(energy, "average", grid).spectrum(values, values)
    assert np.abs(average.y - exact).max() > 0.5  # the app's mean is pulled by where the frames sit


def test_every_kept_frame_counts_and_dense_frames_give_smaller_errors_than_interpolation():
    energy = np.linspace(-3.9, 3.9, 33)  # about 4 frames per grid step
    keep = np.ones(energy.size, bool)
    keep[0] = False  # a cut frame at the edge
    local, interpolated = (operator(energy, binning, keep=keep) for binning in ("local_linear", "interpolate"))
    used = lambda op: np.flatnonzero(np.asarray(abs(op.matrix).sum(axis=0)).ravel() > 0)  # noqa: E731
    assert np.array_equal(used(local), np.flatnonzero(keep))  # all kept frames, no cut one
    assert used(interpolated).size <= keep.sum() / 2  # only the two frames around each centre
    counts = np.full(energy.size, 400.0)
    sigma_local = local.spectrum(counts, counts).sigma
    sigma_interpolated = interpolated.spectrum(counts, counts).sigma
    assert sigma_local.mean() < 0.75 * sigma_interpolated.mean()


def test_a_window_with_one_energy_falls_back_to_the_mean_and_an_empty_bin_is_an_error():
    single = operator([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5], "local_linear")  # one frame per centre
    assert np.allclose(single.matrix.toarray(), np.eye(8))
    with pytest.raises(BadInput, match="test spectrum: 2 energy bins get no frame"):
        operator([-3.5, -2.5, -1.5, 1.5, 2.5, 3.5], "local_linear")
