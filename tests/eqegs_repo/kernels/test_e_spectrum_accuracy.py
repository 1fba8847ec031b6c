"""Correct by default, at the spectral level: no binning bias, honest errors, fitting defaults.

Spectral-only simulation (eqegs_repo.simulate.spectral_only_counts, no images): 512 frames of a
rounded triangle of 10 mm/s, forward 1.6e6 and QE 1.6e5 counts per frame off resonance (the
counts of 4092 frames of 2e5 and 2e4 gathered into 512), q = 12 nm^-1, tau = 100 ns, f_q = 0.7.
"""
import numpy as np
import pytest

from eqegs_repo import simulate as fm
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics

N_FRAMES = 512
Q, TAU, F_Q = 12.0, 100.0, 0.7
FORWARD, QE = 2e5 * 4092 / N_FRAMES, 2e4 * 4092 / N_FRAMES
G = es.angle_factor(np.array([physics.two_theta_from_q(Q)]), kind="cos2theta")
REALISATIONS = 200


def expected_counts(phase0):
    velocity = fm.drive_velocity(N_FRAMES, "band_limited_triangle", 10.0, phase0=phase0)
    mu_f, mu_q = fm.spectral_only_counts(velocity, Q, F_Q, TAU, forward_counts=FORWARD, qe_counts=QE)
    return velocity, mu_f, mu_q[:, None]


def fit(velocity, forward, qe, binning="local_linear", **isf_kw):
    spectra = es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10.0, q_max=14.0, binning=binning)
    return es.isf_from_spectra(spectra, **isf_kw)


@pytest.mark.parametrize("binning", es.BINNING_MODES)
@pytest.mark.parametrize("noise", es.MC_NOISE)
def test_quoted_errors_match_the_scatter_over_noise_realisations(binning, noise):
    velocity, mu_f, mu_q = expected_counts(0.013)
    rng = np.random.default_rng(2024)
    rows = []
    for realisation in range(REALISATIONS):
        forward, qe = rng.poisson(mu_f).astype(float), rng.poisson(mu_q).astype(float)
        result = fit(velocity, forward, qe, binning, n_mc=200, mc_noise=noise, seed=realisation).fit
        rows.append((result.tau_ns, result.tau_error_ns, result.f_q, result.f_q_error))
    tau, tau_error, f_q, f_q_error = np.array(rows).T
    tau_ratio = tau.std(ddof=1) / tau_error.mean()
    f_ratio = f_q.std(ddof=1) / f_q_error.mean()
    assert 0.85 <= tau_ratio <= 1.15 and 0.85 <= f_ratio <= 1.15, (tau_ratio, f_ratio)


def test_interpolated_spectra_are_unbiased_at_512_frames_for_every_drive_phase():
    biases = {}
    for phase0 in (0.0, 0.27 / N_FRAMES, 0.41 / N_FRAMES, 0.13, 0.52, 0.77 + 0.5 / N_FRAMES):
        velocity, mu_f, mu_q = expected_counts(phase0)
        results = {binning: fit(velocity, mu_f, mu_q, binning, n_mc=50).fit for binning in es.BINNING_MODES}
        biases[phase0] = {b: (r.tau_ns / TAU - 1, r.f_q - F_Q) for b, r in results.items()}
    for phase0, by_binning in biases.items():
        for binning in ("local_linear", "interpolate"):
            tau_bias, f_bias = by_binning[binning]
            assert abs(tau_bias) < 0.005 and abs(f_bias) < 0.005, (phase0, binning, tau_bias, f_bias)
    # the app's averaging is biased at this frame count, by an amount that follows the phase
    averaged = np.array([by_binning["average"] for by_binning in biases.values()])
    assert np.abs(averaged[:, 0]).max() > 0.01 and np.abs(averaged[:, 1]).max() > 0.01


def test_default_wing_points_adapt_to_a_short_spectrum_and_explicit_ones_do_not():
    assert es.wing_points(None, n_energies=1639) == 30 and es.wing_points(None, n_energies=25) == 6
    assert es.wing_points(12, n_energies=25) == 12
    with pytest.raises(BadInput, match="too short for a wing background"):
        es.wing_points(None, n_energies=7)
    velocity = fm.drive_velocity(64, "band_limited_triangle", 10.0)
    mu_f, mu_q = fm.spectral_only_counts(velocity, Q, F_Q, TAU, forward_counts=FORWARD, qe_counts=QE)
    spectra = es.energy_spectra(mu_f, mu_f, mu_q[:, None], mu_q[:, None], np.array([Q]), G, velocity, q_min=10.0, q_max=14.0)
    assert spectra.grid.n_points == 25
    result = es.isf_from_spectra(spectra, n_mc=20, fit_model="none")
    assert result.parameters["bg_n_points"] == 6
    assert result.parameters["bg_n_points_rule"] == "default: min(30, K // 4) with K = 25 energy points"
    with pytest.raises(BadInput, match=r"bg_n_points must be in \[2, 12\] for a spectrum of 25 points, got 30"):
        es.isf_from_spectra(spectra, n_mc=20, bg_n_points=30)
    assert "bg_n_points_rule" not in es.isf_from_spectra(spectra, n_mc=20, bg_n_points=4, fit_model="none").parameters


def test_interpolation_never_bridges_a_gap_of_cut_frames():
    velocity, mu_f, mu_q = expected_counts(0.0)
    gap = velocity.copy()
    gap[(gap > 1.0) & (gap < 1.5)] = 20.0  # frames lost between 1 and 1.5 mm/s are cut
    with pytest.raises(BadInput, match=r"forward spectrum: \d+ energy bins get no frame"):
        es.energy_spectra(mu_f, mu_f, mu_q, mu_q, np.array([Q]), G, gap, q_min=10, q_max=14, turnaround_cut_frac=0.45)
