"""Physics of the forward model (eqegs_repo.simulate) against independent calculations."""
import numpy as np
import pytest
from scipy import integrate, special

from eqegs_repo import simulate as fw
from eqegs_repo.kernels import physics

G0 = physics.GAMMA0_NEV


def direct_transmission(source, analyser, delta):
    """𝒯[ρ](δ) = ∫ρ(E) T_A(E − δ) dE by adaptive quadrature (1 − ∫ρ a, split at the lines)."""
    def integrand(e):
        return source.density(e) * analyser.absorption(e - delta)

    cuts = sorted({-np.inf, np.inf, delta, *source.positions_nev.tolist()})
    total = sum(integrate.quad(integrand, a, b, limit=400, epsabs=1e-12)[0] for a, b in zip(cuts[:-1], cuts[1:]))
    return 1.0 - total


def test_constants_match_physics_md():
    assert physics.KAPPA_NEV_PER_MM_S == 48.075
    assert physics.GAMMA0_NEV == 4.665
    assert physics.HBAR_NEV_NS == pytest.approx(658.2119569, rel=1e-9)
    assert physics.HBAR_NEV_NS / 141.1 == pytest.approx(G0, rel=1e-3)  # Γ₀ = ħ/τ_N
    assert physics.H_NEV_NS * 299792458 * 1e-12 / physics.ENERGY_KEV == pytest.approx(physics.WAVELENGTH_NM, rel=1e-5)  # λ = hc/E₀


@pytest.mark.parametrize("source", [fw.SourceSpectrum.single_line(), fw.SourceSpectrum.multi_line()], ids=["single", "multi"])
def test_transmission_functional_matches_direct_integral(source):
    analyser = fw.Analyser(3.0)
    deltas = np.array([-400.0, -30.0, -5.0, 0.0, 2.0, 7.5, 48.075 * 5.2, 100.0])
    fft = fw.transmission_functional(deltas, source, analyser)
    direct = [direct_transmission(source, analyser, d) for d in deltas]
    np.testing.assert_allclose(fft, direct, atol=2e-5)
    assert fft.min() < 0.95  # there is a real dip to match


def test_dip_area_is_the_saturated_absorber_area():
    # ∫(1 − 𝒯) dδ = ∫a(E) dE = (πΓ_A/2)·t·e^{−t/2}·[I0(t/2) + I1(t/2)] for any unit-area source.
    grid = fw.EnergyGrid()
    for t_a, source in [(0.5, fw.SourceSpectrum.single_line()), (3.0, fw.SourceSpectrum.multi_line())]:
        energies, curve = fw.transmission_curve(source.time_transform(grid.times_ns()), fw.Analyser(t_a), grid)
        area = np.sum(1.0 - curve) * grid.step_nev
        exact = np.pi * G0 / 2 * t_a * (special.i0e(t_a / 2) + special.i1e(t_a / 2))
        tail = 2 * t_a * (G0 / 2) ** 2 / grid.half_width_nev  # absorber tails outside the window
        assert area == pytest.approx(exact - tail, rel=2e-4)


@pytest.mark.parametrize("t_a", [1.0, 3.0])
def test_observed_width_follows_thin_absorber_rule(t_a):
    # Source and analyser of natural width: FWHM ≈ Γ₀ + Γ₀(1 + 0.27 t_A) = 2Γ₀(1 + 0.135 t_A).
    source = fw.SourceSpectrum.single_line(G0)
    grid = fw.EnergyGrid()
    energies, curve = fw.transmission_curve(source.time_transform(grid.times_ns()), fw.Analyser(t_a), grid)
    dip = 1.0 - curve
    fwhm = np.ptp(energies[dip >= dip.max() / 2])
    assert fwhm == pytest.approx(2 * G0 * (1 + 0.135 * t_a), rel=0.03)


def test_quasielastic_reduces_to_forward_and_to_broadened_source():
    v = fw.drive_velocity(512, v_max=3.0)
    t0 = fw.forward_transmission(v)
    # Γ_q → 0 with f_q = 1: T_q = T₀.
    np.testing.assert_allclose(fw.quasielastic_transmission(v, 1.0, 1e9), t0, atol=1e-6)
    # f_q = 0: nothing is absorbed.
    np.testing.assert_allclose(fw.quasielastic_transmission(v, 0.0, 50.0), 1.0)
    # Lorentzian ∗ Lorentzian: the same line set with width Γ_s + 2ħ/τ.
    tau = 40.0
    broad = fw.SourceSpectrum.single_line(2 * G0 + fw.linewidth_from_tau(tau))
    expected = 0.3 + 0.7 * fw.forward_transmission(v, broad)
    np.testing.assert_allclose(fw.quasielastic_transmission(v, 0.7, tau), expected, atol=1e-6)
    # KWW with β = 1 is the exponential; β = 0.5 keeps the dip area (S is unit-area) but changes the shape.
    np.testing.assert_allclose(fw.quasielastic_transmission(v, 0.7, tau, beta=1.0), expected, atol=1e-12)
    grid = fw.EnergyGrid()
    times = grid.times_ns()
    source_ft = fw.SourceSpectrum().time_transform(times)
    areas = [
        np.sum(1 - fw.transmission_curve(source_ft * fw.relaxation_isf(tau, beta)(times), fw.Analyser(), grid)[1])
        for beta in (1.0, 0.5)
    ]
    assert areas[1] == pytest.approx(areas[0], rel=1e-3)
    kww = fw.quasielastic_transmission(v, 0.7, tau, beta=0.5)
    assert np.max(np.abs(kww - expected)) > 1e-3


def test_several_q_nodes_and_doppler_factor():
    v = fw.drive_velocity(256, v_max=3.0)
    g = np.array([1.0, np.cos(np.deg2rad(20.0))])
    both = fw.quasielastic_transmission(v, [0.7, 0.6], [100.0, 30.0], doppler=g)
    assert both.shape == (256, 2)
    np.testing.assert_allclose(both[:, 1], fw.quasielastic_transmission(v * g[1], 0.6, 30.0), atol=1e-9)
    np.testing.assert_allclose(
        fw.forward_transmission(v, doppler=g)[:, 1], fw.forward_transmission(v * g[1]), atol=1e-12
    )
    # A longer path through the analyser absorbs more.
    deeper = fw.quasielastic_transmission(v, 0.7, 100.0, path_factor=1.2)
    assert deeper.min() < fw.quasielastic_transmission(v, 0.7, 100.0).min() - 1e-3


def test_ratio_of_fourier_transforms_is_the_true_isf():
    # PHYSICS.md §1.4: ŝ_q(t)/ŝ₀(t) = f_q·exp(−t/τ) — the relation the inverse step relies on.
    step_v = 0.005  # mm/s
    v = (np.arange(16384) - 8192) * step_v  # ±41 mm/s, uniform energy grid
    f_q, tau = 0.7, 80.0
    for source in (fw.SourceSpectrum.single_line(), fw.SourceSpectrum.multi_line()):
        s0 = 1.0 - fw.forward_transmission(v, source)
        sq = 1.0 - fw.quasielastic_transmission(v, f_q, tau, source=source)
        ratio = np.fft.rfft(sq) / np.fft.rfft(s0)
        times = np.arange(ratio.size) * physics.H_NEV_NS / (v.size * step_v * physics.KAPPA_NEV_PER_MM_S)
        pick = (times > 5) & (times < 150)
        pick &= np.abs(np.fft.rfft(s0)) > 0.05 * np.abs(np.fft.rfft(s0)[0])  # away from multi-line nodes
        np.testing.assert_allclose(ratio[pick].real, fw.isf_truth(times[pick], f_q, tau), atol=4e-3)
        assert np.max(np.abs(ratio[pick].imag)) < 4e-3


def test_truth_isf_and_dynamics():
    assert fw.isf_truth(0.0, 0.7, 100.0) == pytest.approx(0.7)
    assert fw.isf_truth(100.0, 0.7, 100.0) == pytest.approx(0.7 / np.e)
    assert fw.isf_truth(400.0, 0.7, 100.0, beta=0.5) == pytest.approx(0.7 * np.exp(-2.0))
    dyn = fw.Dynamics(tau0_ns=100.0, q0=12.0, exponent=2.0, f_q=0.7)
    assert dyn.tau(24.0) == pytest.approx(25.0)
    np.testing.assert_allclose(dyn.isf(np.array([12.0, 24.0])[:, None], np.array([0.0, 25.0])),
                               [[0.7, 0.7 * np.exp(-0.25)], [0.7, 0.7 / np.e]])
    table = fw.Dynamics(tau_table=((10.0, 200.0), (20.0, 50.0)))
    assert table.tau(np.sqrt(200.0)) == pytest.approx(100.0)  # log-log interpolation
    assert fw.Dynamics(f_q=0.8, f_q_width=10.0).nonergodicity(10.0) == pytest.approx(0.8 * np.exp(-0.5))
    assert fw.linewidth_from_tau(100.0) == pytest.approx(13.164, rel=1e-4)  # Γ_q = 2ħ/τ (FWHM)


def test_drive_waveforms():
    v = fw.drive_velocity(400, "triangle", v_max=10.0)
    assert v.max() == pytest.approx(10.0, abs=0.06) and v.min() == pytest.approx(-10.0, abs=0.06)
    assert v[0] > 9.9 and abs(v[200]) > 9.9 and v[100] == pytest.approx(-0.05, abs=1e-9)  # +V at φ≈0, −V at φ≈½
    band = fw.drive_velocity(400, "band_limited_triangle", v_max=10.0, n_harmonics=12)
    assert np.max(np.abs(band - v)) < 0.4 and band.max() < v.max()  # rounded turn-arounds, same sign
    assert np.max(np.abs(band[80:120] - v[80:120])) < 0.02  # straight in the middle of a sweep
    sine = fw.drive_velocity(400, "sine", v_max=5.0, phase0=0.25)
    np.testing.assert_allclose(sine, 5.0 * np.cos(2 * np.pi * ((np.arange(400) + 0.5) / 400 + 0.25)))
    bent = fw.drive_velocity(400, "triangle", v_max=10.0, offset=0.3, nonlinearity=0.02)
    np.testing.assert_allclose(bent, v * (1 + 0.02 * v / 10.0) + 0.3)
    rng = np.random.default_rng(0)
    measured = fw.measured_waveform(v, gain=0.5, noise_sigma=0.01, rng=rng)
    assert np.std(measured - 0.5 * v) == pytest.approx(0.01, rel=0.2)
    with pytest.raises(ValueError, match="waveform must be one of"):
        fw.drive_velocity(10, "square")


def test_pixel_geometry_conventions():
    geo = fw.pixel_geometry((728, 384), (190.3, 300.7), distance_mm=100.0)
    assert physics.radius_from_q(14.0, pixel_mm=physics.PIXEL_SIZE_MM, distance_mm=100.0) == pytest.approx(270, abs=3)
    ring = np.abs(geo.r_px - physics.radius_from_q(14.0, pixel_mm=physics.PIXEL_SIZE_MM, distance_mm=100.0)) < 0.5
    np.testing.assert_allclose(geo.q[ring], 14.0, atol=0.04)
    assert geo.q[300, 190] < 0.1 and geo.solid_angle[300, 190] == pytest.approx((0.0726 / 100) ** 2, rel=1e-6)
    assert geo.phi_deg[300, 250] == pytest.approx(np.rad2deg(np.arctan2(-0.7, 59.7)) % 360)  # +x ≈ 0° (359.3)
    assert geo.phi_deg[400, 190] == pytest.approx(90.0, abs=0.3)  # below the centre (row down) = 90°
    two_theta = np.deg2rad(30.0)
    assert physics.solid_angle(two_theta, pixel_mm=0.0726, distance_mm=100.0) == pytest.approx((0.0726 / 100) ** 2 * np.cos(two_theta) ** 3)
    assert fw.polarisation_factor(two_theta, 0.0, 0.0) == pytest.approx(1 - np.sin(two_theta) ** 2)
    assert fw.polarisation_factor(two_theta, 90.0, 0.0) == pytest.approx(1.0)
    assert fw.structure_factor(14.0) == pytest.approx(80.0) and fw.structure_factor(0.0) == pytest.approx(20.0, rel=1e-4)
    assert fw.air_scattering(2.0) == pytest.approx(1.0)
    beam = fw.direct_beam(geo.r_px, 100.0, 1.2)
    assert beam.sum() == pytest.approx(100.0, rel=1e-6)


def test_image_model_terms():
    v = fw.drive_velocity(8, v_max=2.0)
    geo = fw.pixel_geometry((14, 18), (9.8, 6.3), distance_mm=4.0)
    sample = fw.ImageModel(v, geo, n_q_nodes=64, flux=100.0, dark=0.25, sample_transmission=0.8,
                           background_model="unattenuated")
    background = fw.ImageModel(v, geo, run="background", n_q_nodes=64, flux=100.0, dark=0.25)
    mu_s, mu_b = sample.expected(), background.expected()
    # the default, cell_attenuated: the air/cell scattering of the sample run passes the sample too
    attenuated = fw.ImageModel(v, geo, n_q_nodes=64, flux=100.0, dark=0.25, sample_transmission=0.8).expected()
    assert mu_s.shape == (8, 14, 18) and mu_b.shape == (8, 14, 18)
    # Background: direct beam + air (elastic, dip with g = cos 2θ) + dark, no ring.
    air = 100.0 * geo.solid_angle * fw.air_scattering(geo.q)
    direct = 100.0 * fw.direct_beam(geo.r_px, 20.0, 1.2)
    g = np.cos(geo.two_theta)
    for f in (0, 3):
        t0_pixel = fw.forward_transmission(np.full(1, v[f]), doppler=g.ravel())[0].reshape(geo.q.shape)
        expected_b = direct * sample.t0[f] + air * t0_pixel + 0.25
        np.testing.assert_allclose(mu_b[f], expected_b, rtol=2e-4)
        # Sample minus background: τ_s on the beam, plus ΔΩ S(q) T_q.
        tq_pixel = fw.quasielastic_transmission(np.full(1, v[f]), 0.7, fw.tau_power_law(geo.q.ravel()), doppler=g.ravel())
        scatter = 100.0 * geo.solid_angle * fw.structure_factor(geo.q) * tq_pixel[0].reshape(geo.q.shape)
        np.testing.assert_allclose(mu_s[f] - mu_b[f], scatter - 0.2 * direct * sample.t0[f], rtol=2e-3, atol=1e-6)
        # cell_attenuated: sample minus 0.8 x background leaves the scattering and 0.2 of the dark
        np.testing.assert_allclose(attenuated[f] - 0.8 * mu_b[f], scatter + 0.2 * 0.25, rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(sample.expected(2, 5), mu_s[2:5])
    with pytest.raises(ValueError, match="frame range"):
        sample.expected(5, 20)
    with pytest.raises(ValueError, match="background_model must be one of"):
        fw.ImageModel(v, geo, n_q_nodes=64, background_model="attenuated")


def test_poisson_mean_matches_expected_counts():
    rng = np.random.default_rng(42)
    mu = np.array([[0.3, 2.0], [50.0, 1000.0]])
    draws = np.stack([fw.detector_counts(mu, rng) for _ in range(4000)])
    assert np.all(np.abs(draws.mean(0) - mu) < 5 * np.sqrt(mu / 4000))
    np.testing.assert_allclose(draws.var(0), mu, rtol=0.1)
    noisy = fw.detector_counts(np.full(40000, 30.0), rng, read_noise=1.0, n_trains=4)
    assert noisy.min() >= 0 and np.all(noisy == np.rint(noisy))
    assert noisy.var() == pytest.approx(30.0 + 4.0 + 1 / 12, rel=0.05)  # Poisson + σ²·n_trains + rounding


def test_spectral_only_counts():
    v = fw.drive_velocity(256, v_max=3.0)
    fwd, qe = fw.spectral_only_counts(v, 12.0, forward_counts=2e5, qe_counts=2e4, flat_background=0.1)
    np.testing.assert_allclose(fwd, 2e5 * fw.forward_transmission(v))
    g = np.cos(physics.two_theta_from_q(12.0))
    np.testing.assert_allclose(qe, 2e4 * (fw.quasielastic_transmission(v, 0.7, 100.0, doppler=g) + 0.1))
    _, several = fw.spectral_only_counts(v, np.array([10.0, 14.0]), tau_ns=fw.tau_power_law(np.array([10.0, 14.0])))
    assert several.shape == (256, 2)


def test_bad_parameters_are_refused_with_names():
    with pytest.raises(ValueError, match="thickness"):
        fw.Analyser(-1.0)
    with pytest.raises(ValueError, match="lines"):
        fw.SourceSpectrum(())
    with pytest.raises(ValueError, match="exceed the energy grid window"):
        fw.forward_transmission(np.array([100.0]))
    with pytest.raises(ValueError, match="tau_ns must be > 0"):
        fw.quasielastic_transmission(np.zeros(3), 0.7, 0.0)
    with pytest.raises(ValueError, match="f_q must lie"):
        fw.quasielastic_transmission(np.zeros(3), 1.5, 10.0)
    with pytest.raises(ValueError, match="doppler_angle_model"):
        fw.doppler_factor(0.1, "sin")
    with pytest.raises(ValueError, match="tau_table"):
        fw.Dynamics(tau_table=((10.0, 1.0),))
    with pytest.raises(ValueError, match="source preset"):
        fw.source_preset("triple")
    with pytest.raises(ValueError, match="density_sorted"):
        fw.spectrum_transform_from_samples(np.zeros(10), fw.EnergyGrid())


def test_sampled_spectrum_gives_the_same_functional_as_the_closed_form():
    grid = fw.EnergyGrid(step_nev=0.1, n_points=2**15)
    source = fw.SourceSpectrum.multi_line()
    sampled = fw.spectrum_transform_from_samples(source.density(grid.energies_sorted()), grid)
    _, from_samples = fw.transmission_curve(sampled, fw.Analyser(), grid)
    _, closed = fw.transmission_curve(source.time_transform(grid.times_ns()), fw.Analyser(), grid)
    # They differ only by the source tails outside the ±1638 neV window (≈ Γ_s/π/1638 in area).
    np.testing.assert_allclose(from_samples, closed, atol=5e-5)


def test_analyser_transmission_is_exp_minus_thickness_times_the_line():
    analyser = fw.Analyser(thickness=3.0, fwhm_nev=G0)
    energy = np.array([0.0, 0.5 * G0, 1e4 * G0])
    t = analyser.transmission(energy)
    # docs/physics.md: T_A(E) = exp(-t_A l(E)), l peak-normalised with half maximum at Γ_A/2
    np.testing.assert_allclose(t, np.exp(-3.0 * np.array([1.0, 0.5, 0.0])), atol=1e-7)
    np.testing.assert_allclose(t + analyser.absorption(energy), 1.0, rtol=1e-14)
    np.testing.assert_allclose(analyser.with_path_factor(2.0).transmission(energy), t ** 2, rtol=1e-12)
