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
