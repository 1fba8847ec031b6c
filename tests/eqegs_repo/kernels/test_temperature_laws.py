"""Arrhenius and Vogel-Fulcher-Tammann fits of tau(T) (kernels.temperature_laws)."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.temperature_laws import (
    EV_TO_KJ_PER_MOL,
    K_B_EV_PER_K,
    arrhenius_tau,
    fit_arrhenius,
    fit_vft,
    vft_tau,
)

T = np.array([260.0, 280.0, 300.0, 320.0, 340.0])


def test_arrhenius_on_exact_values_returns_the_law_and_its_units():
    tau = arrhenius_tau(T, tau_inf_ns=0.3, ea_ev=0.15)
    fit = fit_arrhenius(temperature_k=T, tau_ns=tau, tau_error_ns=0.02 * tau)
    assert fit.ea_ev == pytest.approx(0.15, rel=1e-10)
    assert np.exp(fit.value("ln_tau_inf")) == pytest.approx(0.3, rel=1e-9)
    assert fit.ea_kj_mol == pytest.approx(0.15 * EV_TO_KJ_PER_MOL, rel=1e-10)
    assert fit.ea_kj_mol == pytest.approx(14.473, rel=1e-4)          # 0.15 eV per particle in kJ/mol
    assert fit.tau_ns(310.0) == pytest.approx(0.3 * np.exp(0.15 / (K_B_EV_PER_K * 310.0)))
    assert fit.chi2_red == pytest.approx(0.0, abs=1e-18) and fit.n_points == 5
    assert fit.covariance.shape == (2, 2) and fit.covariance[0, 1] < 0   # intercept and slope anticorrelate
    assert set(fit.to_dict()) >= {"ea_ev", "ea_ev_error", "ea_kj_mol", "ea_error_kj_mol", "chi2_red"}


def test_arrhenius_errors_are_the_spread_of_fits_to_noisy_values():
    """The stated error of E_a matches the scatter over noisy draws (absolute sigma, not
    rescaled by chi2), and the pulls are centred. Each draw states a relative error of its own
    tau, as a fit of the ISF does."""
    rng = np.random.default_rng(3)
    tau = arrhenius_tau(T, tau_inf_ns=0.3, ea_ev=0.15)
    relative = np.array([0.08, 0.05, 0.04, 0.03, 0.03])
    error = relative * tau
    draws = (tau * np.exp(rng.normal(0, relative)) for _ in range(2000))
    fits = [fit_arrhenius(temperature_k=T, tau_ns=drawn, tau_error_ns=relative * drawn) for drawn in draws]
    pulls = np.array([(f.ea_ev - 0.15) / f.ea_error_ev for f in fits])
    assert abs(pulls.mean()) < 0.1 and 0.93 < pulls.std() < 1.07
    assert np.std([f.ea_ev for f in fits]) == pytest.approx(fits[0].ea_error_ev, rel=0.07)
    # errors of tau ten times smaller give an error of E_a ten times smaller
    sharper = fit_arrhenius(temperature_k=T, tau_ns=tau, tau_error_ns=error / 10).ea_error_ev
    assert sharper == pytest.approx(fit_arrhenius(temperature_k=T, tau_ns=tau, tau_error_ns=error).ea_error_ev / 10)


def test_vft_recovers_its_parameters_from_exact_values():
    tau = vft_tau(T, tau0_ns=0.01, b_k=1200.0, t0_k=180.0)
    fit = fit_vft(temperature_k=T, tau_ns=tau, tau_error_ns=0.01 * tau)
    assert fit.value("b_k") == pytest.approx(1200.0, rel=1e-5)
    assert fit.value("t0_k") == pytest.approx(180.0, rel=1e-5)
    assert np.exp(fit.value("ln_tau0")) == pytest.approx(0.01, rel=1e-4)
    assert fit.covariance.shape == (3, 3) and np.all(fit.errors > 0)
    assert fit.tau_ns(T) == pytest.approx(tau, rel=1e-6)
    # an Arrhenius fit of the same curved data is poor: chi2 tells
    assert fit_arrhenius(temperature_k=T, tau_ns=tau, tau_error_ns=0.01 * tau).chi2_red > 10


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature_k": [300, -5], "tau_ns": [1, 2], "tau_error_ns": [0.1, 0.1]}, "temperature_k must be .* > 0.*-5"),
    ({"temperature_k": [300, 310], "tau_ns": [1, 2], "tau_error_ns": [0.1]}, "one entry per point"),
    ({"temperature_k": [300, 300], "tau_ns": [1, 2], "tau_error_ns": [0.1, 0.1]}, "two different temperatures"),
    ({"temperature_k": [300], "tau_ns": [1], "tau_error_ns": [0.1]}, "at least 2 points"),
    ({"temperature_k": [300, 310], "tau_ns": [1, np.nan], "tau_error_ns": [0.1, 0.1]}, "tau_ns must be finite"),
])
def test_bad_points_are_refused_naming_the_argument(kwargs, message):
    with pytest.raises(BadInput, match=message):
        fit_arrhenius(**kwargs)


def test_vft_needs_three_points_and_a_t0_start_below_the_lowest_temperature():
    with pytest.raises(BadInput, match="at least 3 points"):
        fit_vft(temperature_k=[300, 310], tau_ns=[2, 1], tau_error_ns=[0.1, 0.1])
    with pytest.raises(BadInput, match="t0_guess_k must lie in"):
        fit_vft(temperature_k=T, tau_ns=T, tau_error_ns=T / 10, t0_guess_k=300.0)
