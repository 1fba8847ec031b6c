"""The physics checks of the E spectrum and ISF (eqegs_repo.kernels.e_spectrum.checks): each fires
on a case built for it, none on a sound setup; widths and thresholds.

Noise-free expected counts of the simulator (spectral only), q = 12 nm^-1, f_q = 0.7."""
import numpy as np
import pytest

from eqegs_repo import simulate as fm
from eqegs_repo.errors import PHYSICS_WARNINGS, BadInput, PhysicsWarning
from eqegs_repo.kernels import e_spectrum as es
from eqegs_repo.kernels import physics

Q = 12.0
G = es.angle_factor(np.array([physics.two_theta_from_q(Q)]), kind="cos2theta")


def checked(n_frames, v_max, tau=100.0, *, frame_options=None, thresholds=None, **isf_options):
    """The checks by name (and the fit) of one noise-free E spectrum and ISF."""
    velocity = fm.drive_velocity(n_frames, "band_limited_triangle", v_max, phase0=0.37)
    mu_f, mu_q = fm.spectral_only_counts(velocity, Q, 0.7, tau)
    spectra = es.energy_spectra(mu_f, mu_f, mu_q[:, None], mu_q[:, None], np.array([Q]), G, velocity,
                                q_min=10.0, q_max=14.0, **(frame_options or {}))
    isf = es.isf_from_spectra(spectra, n_mc=30, seed=1, **isf_options)
    return {c.name: c for c in es.physics_checks(spectra, isf, **(thresholds or {}))}, isf.fit


def failed(checks):
    return sorted(name for name, check in checks.items() if check.failed)


def test_a_sound_setup_passes_every_check():
    checks, fit = checked(1024, 10.0)
    assert failed(checks) == []
    assert set(checks) == set(es.CHECK_NAMES) == set(PHYSICS_WARNINGS)
    assert "<=" in checks["energy_step"].message and "biased" not in checks["energy_step"].message
    assert abs(fit.tau_ns / 100.0 - 1) < 0.01  # the setup is unbiased indeed


def test_an_undersampled_spectrum_fails_the_energy_step_check():
    # the case: 128 frames over +-10 mm/s, a step of 16 neV, tau biased by several %
    checks, fit = checked(128, 10.0)
    step = checks["energy_step"]
    assert "energy_step" in failed(checks) and "f0_vs_f_q" not in failed(checks)
    assert step.value == pytest.approx(16.0, rel=0.05) and step.bound == "max"
    assert step.threshold == pytest.approx(min(0.3 * step.details["resolution_fwhm_nev"],
                                               step.details["line_fwhm_nev"]))
    assert "undersampled" in step.message and " > " in step.message


def test_a_slow_relaxation_binds_the_step_to_its_line_width():
    # tau = 300 ns: Gamma = 2 hbar / tau = 4.4 neV is narrower than 0.3 x the resolution
    checks, _ = checked(384, 10.0, tau=300.0)
    step = checks["energy_step"]
    assert step.failed and step.threshold == pytest.approx(step.details["line_fwhm_nev"])
    assert step.details["line_fwhm_nev"] == pytest.approx(2 * physics.HBAR_NEV_NS / 300.0, rel=0.05)
    assert "the line width binds" in step.message


def test_the_demo_window_fails_the_window_check_only():
    checks, _ = checked(512, 2.0)
    window = checks["window"]
    assert failed(checks) == ["window"]
    assert window.value == pytest.approx(window.details["half_width_nev"] / window.details["qe_fwhm_nev"])
    assert window.value < 5.0 == window.threshold and window.bound == "min"


def test_too_few_frames_left_after_the_cuts_fail_the_frames_check():
    checks, _ = checked(48, 4.0, frame_options={"start_cut_frames": 5})
    frames = checks["kept_frames"]
    assert frames.failed and frames.value == frames.details["kept_frames"] < 50
    # the same spectra pass with a lower threshold: the check compares, nothing else
    checks, _ = checked(48, 4.0, thresholds={"min_kept_frames": 20})
    assert not checks["kept_frames"].failed


def test_a_background_scale_moves_f0_away_from_f_q():
    checks, _ = checked(1024, 10.0, relax_bg_coeff=1.02)
    f0 = checks["f0_vs_f_q"]
    assert failed(checks) == ["f0_vs_f_q"]
    assert f0.value > 10 and f0.details["f0"] > f0.details["f0_expected"]


def test_f0_is_compared_with_f_q_times_the_share_of_the_line_areas_the_window_keeps():
    checks, _ = checked(1024, 10.0)
    d = checks["f0_vs_f_q"].details
    assert d["window_share"] < 1
    assert abs(d["f0"] - d["f0_expected"]) < 0.25 * abs(d["f0"] - d["f_q"])  # most of the offset explained


def test_without_a_fit_the_f0_check_is_not_made():
    checks, fit = checked(1024, 10.0, fit_model="none")
    assert fit is None and checks["f0_vs_f_q"].value is None and not checks["f0_vs_f_q"].failed
    assert checks["energy_step"].details["line_fwhm_nev"] is None  # the step is held to the resolution only


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True])
def test_a_threshold_must_be_a_positive_number(bad):
    with pytest.raises(BadInput, match="min_window_ratio must be a number > 0"):
        checked(256, 10.0, thresholds={"min_window_ratio": bad})


def test_line_fwhm_of_a_sampled_lorentzian():
    energy = np.linspace(-200, 200, 801)
    line = fm.lorentzian(energy, 17.0)
    assert es.line_fwhm(energy, line / line.max()) == pytest.approx(17.0, rel=0.01)
    assert np.isnan(es.line_fwhm(energy, -line))


def test_each_check_has_its_warning_class():
    for name, warning in PHYSICS_WARNINGS.items():
        assert issubclass(warning, PhysicsWarning) and warning.check == name
    assert len(set(PHYSICS_WARNINGS.values())) == len(es.CHECK_NAMES)
