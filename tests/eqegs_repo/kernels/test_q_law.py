"""The τ(q) law kernel (eqegs_repo.kernels.e_spectrum.q_law): exact on a noise-free law, honest
errors over noise realisations, bad input named."""
import numpy as np
import pytest

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.q_law import fit_tau_q_law

Q = np.array([9.0, 11.0, 13.0, 15.0, 17.0])


def law(q, tau0=100.0, q0=12.0, n=2.9):
    return tau0 * (q / q0) ** -n


def test_noise_free_law_is_exact_at_any_reference_q():
    fit = fit_tau_q_law(q_nm=Q, tau_ns=law(Q), tau_error_ns=0.05 * law(Q), q0_nm=12.0)
    assert fit.n == pytest.approx(2.9, rel=1e-12) and fit.tau0_ns == pytest.approx(100.0, rel=1e-12)
    assert fit.chi2_red == pytest.approx(0.0, abs=1e-20)
    free = fit_tau_q_law(q_nm=Q, tau_ns=law(Q), tau_error_ns=0.05 * law(Q))
    assert free.tau(12.0) == pytest.approx(100.0) and free.q0_nm != 12.0


def test_errors_match_the_spread_over_noise_realisations():
    rng = np.random.default_rng(3)
    sigma = 0.04 * law(Q)
    fits = [fit_tau_q_law(q_nm=Q, tau_ns=law(Q) + sigma * rng.standard_normal(Q.size), tau_error_ns=sigma)
            for _ in range(400)]
    n = np.array([f.n for f in fits])
    quoted = np.mean([f.n_error for f in fits])
    assert abs(n.mean() - 2.9) < 3 * n.std() / np.sqrt(n.size)
    assert 0.85 < n.std() / quoted < 1.15


@pytest.mark.parametrize("tau, error, words", [
    ([100, 80, -1, 50, 40], [1] * 5, "range 2"),
    ([100, 80, 60, 50, 40], [1, 1, 0, 1, 1], "range 2"),
    ([100, 80], [1, 1], "at least 3 q ranges"),
])
def test_bad_input_is_named(tau, error, words):
    q = Q[: len(tau)]
    with pytest.raises(BadInput) as caught:
        fit_tau_q_law(q_nm=q, tau_ns=np.array(tau, float), tau_error_ns=np.array(error, float))
    assert words in str(caught.value)


def kww_points(rng, taus, beta=0.7, f_q=0.7, error=0.01):
    t = np.linspace(5.0, 300.0, 30)
    return ([t] * len(taus), [f_q * np.exp(-((t / tau) ** beta)) + error * rng.standard_normal(t.size) for tau in taus],
            [np.full(t.size, error)] * len(taus))


def test_shared_beta_is_recovered_and_fixed_beta_one_is_the_exponential_fit():
    from eqegs_repo.kernels.e_spectrum.isf import fit_relaxation
    from eqegs_repo.kernels.e_spectrum.q_law import fit_relaxations

    rng = np.random.default_rng(5)
    taus = [150.0, 90.0, 60.0, 40.0]
    t, y, s = kww_points(rng, taus)
    fits = fit_relaxations(t_ns=t, isf=y, sigma=s, beta="shared")
    assert len({f.beta for f in fits}) == 1 and fits[0].model == "shared_beta"
    assert abs(fits[0].beta - 0.7) < 3 * fits[0].beta_error and fits[0].beta_error < 0.05
    assert all(abs(f.tau_ns - tau) < 3 * f.tau_error_ns for f, tau in zip(fits, taus))
    fixed = fit_relaxations(t_ns=t[:1], isf=y[:1], sigma=s[:1], beta=1.0)[0]
    single = fit_relaxation(t[0], y[0], s[0], model="exp")
    assert fixed.tau_ns == pytest.approx(single.tau_ns, rel=1e-5) and fixed.beta_error == 0.0
    for bad in ("free", 5.0, True):
        with pytest.raises(BadInput, match="beta must be 'shared' or a number"):
            fit_relaxations(t_ns=t, isf=y, sigma=s, beta=bad)
    with pytest.raises(BadInput, match="q range 1 has 2 accepted ISF points"):
        fit_relaxations(t_ns=[t[0], t[1][:2]], isf=[y[0], y[1][:2]], sigma=[s[0], s[1][:2]])
