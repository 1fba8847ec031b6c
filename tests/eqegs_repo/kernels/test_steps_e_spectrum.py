"""E-spectrum and ISF kernels checked against the forward model's known truth.

Spectral-only simulation (eqegs_repo.simulate.spectral_only_counts): 4092 frames, rounded
triangle of 10 mm/s, forward 2e5 and QE 2e4 counts per frame off resonance, q = 12 nm^-1,
tau = 100 ns, f_q = 0.7, Poisson noise.  Monte-Carlo errors use n_mc = 200 resamples in these
tests (500 in production) to keep the run time low.
"""
import numpy as np
import pytest

from eqegs_repo import simulate as fm
from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics

N_FRAMES = 4092
Q = 12.0
TAU, F_Q = 100.0, 0.7
N_MC = 200
TWO_THETA = physics.two_theta_from_q(Q)
G = es.angle_factor(np.array([TWO_THETA]), kind="cos2theta")


@pytest.fixture(scope="module")
def velocity():
    return fm.drive_velocity(N_FRAMES, "band_limited_triangle", 10.0)


@pytest.fixture(scope="module")
def expected(velocity):
    return fm.spectral_only_counts(velocity, Q, F_Q, TAU, forward_counts=2e5, qe_counts=2e4)


def draw(expected, seed):
    rng = np.random.default_rng(seed)
    mu_f, mu_q = expected
    return rng.poisson(mu_f).astype(np.float64), rng.poisson(mu_q).astype(np.float64)[:, None]


def run(velocity, forward, qe, *, qe_variance=None, spectra_kw=None, **isf_kw):
    spectra = es.energy_spectra(forward, forward, qe, qe if qe_variance is None else qe_variance, np.array([Q]), G,
                                velocity, q_min=10.0, q_max=14.0, **(spectra_kw or {}))
    isf_kw.setdefault("n_mc", N_MC)
    isf_kw.setdefault("isf_error_threshold", 0.03)
    return spectra, es.isf_from_spectra(spectra, **isf_kw)


def test_tau_and_f_recovered_within_two_sigma_in_nine_of_ten_seeds(velocity, expected):
    tau_hits = f_hits = 0
    for seed in range(10):
        forward, qe = draw(expected, seed)
        _, result = run(velocity, forward, qe, seed=seed)
        fit = result.fit
        tau_hits += abs(fit.tau_ns - TAU) <= 2 * fit.tau_error_ns
        f_hits += abs(fit.f_q - F_Q) <= 2 * fit.f_q_error
        assert fit.tau_error_ns < 5.0 and fit.f_q_error < 0.01  # §2.7: ±2 ns, ±0.004
        assert 0.3 < fit.chi2_red < 3.0
    assert tau_hits >= 9 and f_hits >= 9


def test_the_apps_averaging_also_recovers_the_truth_at_4092_frames(velocity, expected):
    forward, qe = draw(expected, 42)
    spectra, averaged = run(velocity, forward, qe, spectra_kw={"binning": "average"}, seed=1)
    interpolated_spectra, interpolated = run(velocity, forward, qe, spectra_kw={"binning": "interpolate"}, seed=1)
    assert abs(averaged.fit.tau_ns - TAU) < 3 * averaged.fit.tau_error_ns
    assert abs(averaged.fit.f_q - F_Q) < 3 * averaged.fit.f_q_error
    assert np.array_equal(np.unique(interpolated_spectra.forward.n), [2])  # two sweeps cover every grid point
    assert set(np.unique(spectra.forward.n)) <= {1, 2, 3, 4}  # the app's "number of points averaged"
    assert interpolated.parameters["binning"] == "interpolate" and averaged.parameters["binning"] == "average"
    assert not np.allclose(interpolated.isf, averaged.isf)


def test_unsubtracted_flat_background_scales_f_but_not_tau(velocity):
    mu = fm.spectral_only_counts(velocity, Q, F_Q, TAU, forward_counts=2e5, qe_counts=2e4, flat_background=0.1)
    forward, qe = draw(mu, 3)
    _, result = run(velocity, forward, qe, seed=3)
    fit = result.fit
    assert abs(fit.f_q - F_Q / 1.1) < 3 * fit.f_q_error  # 0.636
    assert abs(fit.f_q - F_Q) > 10 * fit.f_q_error
    assert abs(fit.tau_ns - TAU) < 3 * fit.tau_error_ns


def test_multi_line_preset(velocity):
    v12 = fm.drive_velocity(N_FRAMES, "band_limited_triangle", 12.0)
    source = fm.SourceSpectrum.multi_line()
    mu = fm.spectral_only_counts(v12, Q, F_Q, TAU, forward_counts=2e5, qe_counts=2e4, source=source)
    forward, qe = draw(mu, 5)
    _, result = run(v12, forward, qe, seed=5)
    fit = result.fit
    assert abs(fit.tau_ns - TAU) < 3 * fit.tau_error_ns and fit.tau_error_ns < 15
    assert abs(fit.f_q - F_Q) < 0.05
    # quantum-beat nodes of the multi-line resolution: points inside the range are dropped
    early = (result.t_ns > 0) & (result.t_ns < 150)
    assert 0 < result.accepted[early].sum() < early.sum()


def test_transform_time_axis_matches_a_lorentzian():
    grid = es.SpectrumGrid(0.5, 4000)
    fwhm = 10.0
    s = fm.lorentzian(grid.centres, fwhm)
    transform = es.spectrum_transform(s, step_nev=grid.step_nev)
    t = grid.times_ns
    expected = np.exp(-0.5 * fwhm * t / physics.HBAR_NEV_NS)
    early = t < 150
    assert np.allclose(np.abs(transform[early]), expected[early], atol=4e-3)  # tails cut at ±1000 neV
    assert t[1] == pytest.approx(physics.H_NEV_NS / (4000 * 0.5))


def test_relax_bg_coefficient_scales_f_by_its_inverse_beyond_t0(velocity, expected):
    forward, qe = draw(expected, 7)
    _, plain = run(velocity, forward, qe, seed=7, fit_model="none")
    _, relaxed = run(velocity, forward, qe, seed=7, fit_model="none", relax_bg_coeff=1.05)
    assert np.allclose(relaxed.isf[1:] * 1.05, plain.isf[1:], rtol=1e-9, atol=1e-12)
    assert relaxed.isf[0] != pytest.approx(plain.isf[0] / 1.05, rel=1e-3)  # the t = 0 artefact
    assert np.allclose(relaxed.quasielastic.background, 1.05 * plain.quasielastic.background)
    assert np.allclose(relaxed.forward.background, plain.forward.background)
    assert plain.fit is None


def test_background_slope_fit(velocity, expected):
    forward, qe = draw(expected, 8)
    energy = physics.KAPPA_NEV_PER_MM_S * velocity
    tilt = 1.0 + 0.1 * energy / energy.max()  # a 10 % linear tilt of the QE baseline
    _, flat = run(velocity, forward, qe * tilt[:, None], seed=8)
    spectra, sloped = run(velocity, forward, qe * tilt[:, None], seed=8, bg_fit_enabled=True)
    b = sloped.quasielastic.background
    slope = (b[-1] - b[0]) / (spectra.grid.centres[-1] - spectra.grid.centres[0])
    expected_slope = 0.1 * b[len(b) // 2] / (energy.max() * np.cos(TWO_THETA))
    assert slope == pytest.approx(expected_slope, rel=0.1)
    assert np.ptp(flat.quasielastic.background) == 0.0
    assert np.max(np.abs(sloped.isf_imag[1:30])) < np.max(np.abs(flat.isf_imag[1:30]))
    assert abs(sloped.fit.tau_ns - TAU) < 3 * sloped.fit.tau_error_ns
    # the wing fit itself: exact on a noiseless straight line
    e = np.linspace(-50, 50, 101)
    line = 3.0 + 0.02 * e
    assert np.allclose(es.wing_background(e, line, np.ones(101), n_points=10, fit_slope=True), line)
    assert np.allclose(es.wing_background(e, line, np.ones(101), n_points=10, fit_slope=False), 3.0)
    with pytest.raises(BadInput, match="bg_n_points"):
        es.wing_background(e, line, np.ones(101), n_points=60)


def test_rebin_threshold_normalisation_and_cuts_have_visible_effects(velocity, expected):
    forward, qe = draw(expected, 9)
    base_spectra, base = run(velocity, forward, qe, seed=9)
    rebinned_spectra, rebinned = run(velocity, forward, qe, seed=9, spectra_kw={"rebin_factor": 2})
    assert rebinned_spectra.grid.step_nev == pytest.approx(2 * base_spectra.grid.step_nev)
    assert abs(rebinned_spectra.grid.n_points - base_spectra.grid.n_points / 2) <= 1
    averaged, rebinned_average = (es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14,
                                                    binning="average", rebin_factor=r) for r in (1, 2))
    assert rebinned_average.forward.n.mean() == pytest.approx(2 * averaged.forward.n.mean(), rel=0.01)

    _, loose = run(velocity, forward, qe, seed=9, isf_error_threshold=0.1)
    _, strict = run(velocity, forward, qe, seed=9, isf_error_threshold=0.01)
    assert strict.accepted.sum() < base.accepted.sum() < loose.accepted.sum()
    assert not base.accepted[0] and np.all(base.isf_error[base.accepted] <= 0.03)

    # unit: the ISF and every Monte-Carlo copy divided by the one number Re F(0) of the data
    _, unit = run(velocity, forward, qe, seed=9, isf_normalisation="unit", fit_model="none")
    assert unit.isf[0] == pytest.approx(1.0)
    assert base.isf[0] == pytest.approx(F_Q, abs=0.1)
    assert np.allclose(unit.isf, base.isf / base.isf[0])
    np.testing.assert_allclose(unit.isf_error, base.isf_error / base.isf[0], rtol=1e-12)
    assert unit.parameters["isf_scale"] == pytest.approx(base.isf[0])
    assert 0 < unit.parameters["isf_scale_error"] and base.parameters["isf_scale"] == 1.0

    narrow_spectra, _ = run(velocity, forward, qe, seed=9, spectra_kw={"turnaround_cut_frac": 0.7})
    assert narrow_spectra.grid.n_points < 0.85 * base_spectra.grid.n_points  # window 0.7/0.9 of the base
    guarded = es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14,
                                turnaround_cut_frac=1.0, turnaround_guard_frames=100)
    turns = es.turning_points(velocity)
    assert not guarded.kept_frames[turns].any() and guarded.kept_frames.sum() < N_FRAMES - 300

    # start the record mid-sweep (v ~ 0) and make its first frames junk
    v_mid, fwd_mid, qe_mid = (np.roll(a, -1023, axis=0) for a in (velocity, forward, qe))
    corrupted = fwd_mid.copy()
    corrupted[:5] = 1e7
    _, clean = run(v_mid, fwd_mid, qe_mid, seed=9)
    _, cut = run(v_mid, corrupted, qe_mid, seed=9)
    _, uncut = run(v_mid, corrupted, qe_mid, seed=9, spectra_kw={"start_cut_frames": 0})
    assert np.array_equal(cut.isf, clean.isf)
    assert not np.allclose(uncut.isf, clean.isf, atol=1e-3)


def test_unit_normalisation_leaves_tau_and_its_error_as_the_absolute_fit_gives(velocity, expected):
    """F(0)'s noise is one number common to all points of a Monte-Carlo copy: dividing each copy
    by its own F*(0) made it look like independent point errors (sigma_tau grew by a quarter and
    tau moved); one divisor for all copies leaves tau, its error and the points' weights as they are."""
    forward, qe = draw(expected, 4)
    kw = {"seed": 4, "isf_error_threshold": np.inf}  # every t > 0 accepted in both normalisations
    _, absolute = run(velocity, forward, qe, **kw)
    _, unit = run(velocity, forward, qe, isf_normalisation="unit", **kw)
    np.testing.assert_array_equal(unit.accepted, absolute.accepted)
    assert unit.fit.tau_ns == pytest.approx(absolute.fit.tau_ns, rel=1e-6)
    assert unit.fit.tau_error_ns == pytest.approx(absolute.fit.tau_error_ns, rel=1e-6)
    scale = unit.parameters["isf_scale"]
    assert unit.fit.f_q == pytest.approx(absolute.fit.f_q / scale, rel=1e-6)
    # the spread of tau fitted to each copy is the same, and equals its quoted error
    accepted = absolute.accepted & (absolute.t_ns < 3 * TAU)
    taus = {name: np.array([es.fit_relaxation(result.t_ns[accepted], copy[accepted], result.isf_error[accepted]).tau_ns
                            for copy in result.mc_isf[:60]]) for name, result in (("absolute", absolute), ("unit", unit))}
    np.testing.assert_allclose(taus["unit"], taus["absolute"], rtol=1e-6)


def hand_series(values, energy, binning="average", variance=None):
    """One series on the grid with edges -2, -1, 0, 1, 2 neV, every frame kept, one sweep."""
    grid = es.SpectrumGrid(1.0, 4)
    keep = np.ones(len(energy), bool)
    operator = es.resampling(np.asarray(energy, float), keep, np.zeros(len(energy), int), grid=grid, binning=binning,
                             label="test")
    values = np.asarray(values, float)
    return es.FrameSeries(values, values if variance is None else np.asarray(variance, float), operator)


def test_monte_carlo_draws_frame_noise_through_the_resampling():
    rng = np.random.Generator(np.random.PCG64(0))

    def mc(series, n_mc, noise, generator):
        return es.monte_carlo_spectra(series, n_mc=n_mc, noise=noise, rng=generator)

    # interpolation: grid points 1 and 2 share the frame at 0.0 neV, so their copies are correlated
    series = hand_series([400.0, 400.0, 400.0, 400.0, 400.0], [-1.5, -1.0, 0.0, 1.0, 1.5], "interpolate")
    matrix = series.resampling.matrix.toarray()
    assert np.allclose(matrix[0], [1.0, 0.0, 0.0, 0.0, 0.0])  # E = -1.5 sits on a frame
    assert np.allclose(matrix[1], [0.0, 0.5, 0.5, 0.0, 0.0])  # E = -0.5 between -1.0 and 0.0
    assert np.allclose(matrix[2], [0.0, 0.0, 0.5, 0.5, 0.0])
    exact = matrix @ np.diag(series.variance) @ matrix.T
    gaussian = mc([series], 40000, "gaussian", rng)
    assert np.allclose(np.cov(gaussian.T), exact, atol=0.03 * exact.max())
    assert np.corrcoef(gaussian.T)[1, 2] == pytest.approx(0.5, abs=0.02)  # shared frame: 0.25 V / 0.5 V
    poisson = mc([series], 40000, "poisson", rng)
    assert np.allclose(np.cov(poisson.T), exact, atol=0.03 * exact.max())
    assert np.allclose(poisson.mean(axis=0), 400.0, rtol=1e-3)
    # raw counts on the average grid (one frame per bin): Poisson integers
    counts = mc([hand_series([3.0, 5.0, 7.0, 9.0], [-1.5, -0.5, 0.5, 1.5])], 1000, "poisson", rng)
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    # effective counts of a subtracted value: y = 100, V = 400 gives (400/100) Poisson(25)
    scaled = mc([hand_series([100.0] * 4, [-1.5, -0.5, 0.5, 1.5], variance=[400.0] * 4)],
                                    20000, "poisson", rng)
    assert np.allclose(scaled / 4, np.round(scaled / 4)) and scaled.var(axis=0).mean() == pytest.approx(400, rel=0.05)
    with pytest.raises(BadInput, match=r"mc_noise 'poisson' needs positive per-frame values.*series 0, frame 1"):
        mc([hand_series([1.0, -1.0, 1.0, 1.0], [-1.5, -0.5, 0.5, 1.5], variance=[1.0] * 4)], 3, "poisson", rng)
    with pytest.raises(BadInput, match="mc_noise must be one of"):
        mc([series], 3, "uniform", rng)
    same = [mc([series], 5, "gaussian", np.random.Generator(np.random.PCG64(7))) for _ in range(2)]
    assert np.array_equal(*same)


def test_same_seed_same_errors_and_forward_qe_share_the_grid(velocity, expected):
    forward, qe = draw(expected, 10)
    spectra, a = run(velocity, forward, qe, seed=123)
    _, b = run(velocity, forward, qe, seed=123)
    _, c = run(velocity, forward, qe, seed=124)
    assert np.array_equal(a.isf_error, b.isf_error) and not np.array_equal(a.isf_error, c.isf_error)
    assert spectra.forward.y.shape == spectra.quasielastic.y.shape == (spectra.grid.n_points,)
    assert np.all(spectra.forward.n >= 1) and np.all(spectra.per_q.n >= 1)
    assert np.allclose(spectra.grid.centres, -spectra.grid.centres[::-1])  # symmetric window
    assert a.mc_isf.shape == (N_MC, spectra.grid.n_points // 2 + 1)


def test_average_binning_statistics():
    grid = es.SpectrumGrid(1.0, 4)  # edges -2, -1, 0, 1, 2
    energy = np.array([-1.5, -1.2, -0.5, 0.5, 0.7, 0.9, 1.5, 5.0])
    values = np.array([1.0, 3.0, 5.0, 2.0, 4.0, 6.0, 7.0, 100.0])
    keep = np.ones(8, bool)
    sweeps = np.zeros(8, int)
    spectrum = es.resampling(energy, keep, sweeps, grid=grid, binning="average", label="test").spectrum(values, values)
    assert np.array_equal(spectrum.n, [2, 1, 3, 1])
    assert np.allclose(spectrum.y, [2.0, 5.0, 4.0, 7.0])
    assert np.allclose(spectrum.sigma, [2.0 / 2, np.sqrt(5.0), np.sqrt(12.0) / 3, np.sqrt(7.0)])
    keep[2] = False
    with pytest.raises(BadInput, match=r"test spectrum: 1 energy bins get no frame, first at E = -0.50 neV"):
        es.resampling(energy, keep, sweeps, grid=grid, binning="average", label="test")
    with pytest.raises(BadInput, match="binning must be one of"):
        es.resampling(energy, keep, sweeps, grid=grid, binning="nearest", label="test")


def test_velocity_calibrations(velocity):
    n = 4092
    triangle = es.calibrated_velocity(kind="triangle", n_frames=n, v_max=10.0)
    assert np.allclose(triangle, fm.drive_velocity(n, "triangle", 10.0))
    shifted = es.calibrated_velocity(kind="triangle", n_frames=n, v_max=10.0, phase_frames=100)
    assert np.allclose(shifted, fm.drive_velocity(n, "triangle", 10.0, phase0=-100 / n))
    assert np.allclose(es.calibrated_velocity(kind="sine", n_frames=n, v_max=3.0, period_frames=n / 2),
                       3.0 * np.cos(2 * np.pi * (np.arange(n) + 0.5) / (n / 2)))
    rng = np.random.default_rng(0)
    measured = fm.measured_waveform(velocity, 0.5, 0.0, rng)
    assert np.allclose(es.calibrated_velocity(measured, kind="poly", n_frames=n, poly_coeffs=[0.0, 2.0]), velocity)
    assert np.array_equal(es.calibrated_velocity(kind="table", n_frames=n, table_mm_s=velocity), velocity)
    with pytest.raises(BadInput, match="one velocity per frame"):
        es.calibrated_velocity(kind="table", n_frames=n, table_mm_s=velocity[:10])
    with pytest.raises(BadInput, match="poly_coeffs"):
        es.calibrated_velocity(measured, kind="poly", n_frames=n)
    with pytest.raises(BadInput, match="kind must be one of"):
        es.calibrated_velocity(kind="saw", n_frames=n)
    assert es.energy_from_velocity(np.array([1.0]), v0_offset=0.25)[0] == pytest.approx(0.75 * 48.075)
    assert es.energy_from_velocity(np.array([1.0, 2.0]), v0_offset=0.0, g=np.array([1.0, 0.5])).shape == (2, 2)
    assert es.angle_factor(np.array([0.3]), kind="cos2theta")[0] == pytest.approx(np.cos(0.3))
    assert es.angle_factor(np.array([0.3]), kind="none")[0] == 1.0
    assert es.angle_factor(np.radians([5.0]), kind="table", table=[[0, 1.0], [10, 0.9]])[0] == pytest.approx(0.95)
    # turning points of a noisy measured triangle: one per extremum, no false sweeps
    noisy = fm.measured_waveform(triangle, 1.0, 0.05, rng)
    noisy_turns, turns = es.turning_points(noisy), es.turning_points(triangle)
    assert noisy_turns.shape == turns.shape == (3,) and np.all(np.abs(noisy_turns - turns) <= 15)
    assert len(es.turning_points(triangle)) == 3 and es.sweep_labels(triangle).max() == 3


def test_bad_inputs_are_named(velocity, expected):
    forward, qe = draw(expected, 11)
    with pytest.raises(BadInput, match=r"q range \[20, 30\] nm\^-1 holds no q bin"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=20, q_max=30)
    with pytest.raises(BadInput, match="q_min < q_max"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=14, q_max=10)
    with pytest.raises(BadInput, match=r"qe_sums must have shape \(4092, 1\)"):
        es.energy_spectra(forward, forward, qe[:100], qe, np.array([Q]), G, velocity, q_min=10, q_max=14)
    with pytest.raises(BadInput, match="rebin_factor"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14, rebin_factor=0)
    with pytest.raises(BadInput, match="turnaround_cut_frac"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14,
                          turnaround_cut_frac=0)
    with pytest.raises(BadInput, match="start_cut_frames"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14, start_cut_frames=-1)
    broken = velocity.copy()
    broken[[7, 30]] = np.nan
    for bad, message in ((broken, r"velocity must be finite mm/s; frame 7 holds nan \(2 of 4092 values"),
                         (np.zeros_like(velocity), r"velocity must vary over the frames \(a sweep\); all 4092 "
                                                   r"values are 0 mm/s")):  # once an IndexError
        with pytest.raises(BadInput, match=message):
            es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, bad, q_min=10, q_max=14)
    gap = velocity.copy()
    gap[(gap > 1.0) & (gap < 1.5)] = 20.0  # frames lost between 1 and 1.5 mm/s
    with pytest.raises(BadInput, match="energy bins get no frame"):
        es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, gap, q_min=10, q_max=14, turnaround_cut_frac=0.45)
    spectra = es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14)
    with pytest.raises(BadInput, match="fit_model 'exp' needs at least 3"):
        es.isf_from_spectra(spectra, n_mc=20, isf_error_threshold=0.0)
    with pytest.raises(BadInput, match="relax_bg_coeff"):
        es.isf_from_spectra(spectra, relax_bg_coeff=0.0)
    with pytest.raises(BadInput, match="isf_normalisation"):
        es.isf_from_spectra(spectra, isf_normalisation="peak")


def test_v0_offset_centres_the_energy_axis(velocity):
    offset = 0.3  # the drive's zero is off by 0.3 mm/s: the dip sits at calibrated v = -0.3
    mu_f, mu_q = fm.spectral_only_counts(velocity + offset, Q, F_Q, TAU)
    forward, qe = draw((mu_f, mu_q), 12)
    centred = es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14,
                                v0_offset=-offset)
    shifted = es.energy_spectra(forward, forward, qe, qe, np.array([Q]), G, velocity, q_min=10, q_max=14)
    step = centred.grid.step_nev
    assert abs(centred.grid.centres[np.argmin(centred.forward.y)]) <= 3 * step
    assert abs(shifted.grid.centres[np.argmin(shifted.forward.y)] + offset * physics.KAPPA_NEV_PER_MM_S) <= 3 * step
    result = es.isf_from_spectra(centred, n_mc=N_MC, seed=12, isf_error_threshold=0.03)
    assert abs(result.fit.tau_ns - TAU) < 3 * result.fit.tau_error_ns
