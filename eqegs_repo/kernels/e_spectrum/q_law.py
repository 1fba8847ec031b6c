"""The power law of the relaxation time across q, τ(q) = τ₀·(q/q₀)^(−n)
(docs/physics.md#relaxation-time-across-q), fitted to the τ of several q ranges, and the ISFs of
several q ranges fitted at once with one Kohlrausch β (shared or fixed).

Units: q and q₀ in nm⁻¹, τ and τ₀ in ns; n is dimensionless.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.isf import RelaxationFit, fit_relaxation


@dataclass(frozen=True)
class TauQLaw:
    """A fitted τ(q) = τ₀·(q/q₀)^(−n): ``tau0_ns`` at the reference ``q0_nm``, the exponent
    ``n``, their 1σ errors and covariance (2 × 2, order τ₀, n; absolute: from the errors of τ
    alone, not rescaled by χ²), the reduced χ² and the number of q ranges."""

    tau0_ns: float
    n: float
    q0_nm: float
    tau0_error_ns: float
    n_error: float
    covariance: np.ndarray
    chi2_red: float
    n_points: int

    def tau(self, q_nm: np.ndarray) -> np.ndarray:
        """τ(q) in ns of the fitted law at ``q_nm`` (nm⁻¹, any shape)."""
        return self.tau0_ns * (np.asarray(q_nm, dtype=np.float64) / self.q0_nm) ** (-self.n)

    def as_dict(self) -> dict:
        """JSON-ready record of the fit."""
        return {"tau0_ns": self.tau0_ns, "n": self.n, "q0_nm": self.q0_nm, "tau0_error_ns": self.tau0_error_ns,
                "n_error": self.n_error, "covariance": self.covariance.tolist(), "chi2_red": self.chi2_red,
                "n_points": self.n_points}


def fit_tau_q_law(*, q_nm: np.ndarray, tau_ns: np.ndarray, tau_error_ns: np.ndarray,
                  q0_nm: float | None = None) -> TauQLaw:
    """Weighted least squares of ln τ = ln τ₀ − n·ln(q/q₀) over the q ranges.

    ``q_nm``, ``tau_ns``, ``tau_error_ns`` (ranges,): the q of each range (nm⁻¹, e.g. its
    intensity-weighted mean), its τ and 1σ error (ns). The errors of ln τ are σ_τ/τ (first
    order, fine while σ_τ/τ is small). ``q0_nm`` None: the weighted geometric mean of q, where
    τ₀ and n are uncorrelated; a given q₀ moves only τ₀ and the covariance. Ranges whose τ or
    error is not finite and positive are refused, naming the first one; at least 3 ranges are
    needed (two parameters and one degree of freedom).
    """
    q, tau, error = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (q_nm, tau_ns, tau_error_ns))
    if not q.shape == tau.shape == error.shape or q.ndim != 1:
        raise BadInput(f"q_nm, tau_ns and tau_error_ns must be 1-D arrays of one length, got shapes "
                       f"{q.shape}, {tau.shape}, {error.shape}")
    bad = np.flatnonzero(~(np.isfinite(q) & (q > 0) & np.isfinite(tau) & (tau > 0) & np.isfinite(error) & (error > 0)))
    if bad.size:
        i = int(bad[0])
        raise BadInput(f"the tau(q) law needs q > 0, tau > 0 and a positive error in every q range; range {i} "
                       f"has q = {q[i]:.4g} nm^-1, tau = {tau[i]:.4g} ns, error {error[i]:.4g} ns "
                       f"({bad.size} such ranges)")
    if q.size < 3:
        raise BadInput(f"the tau(q) law needs at least 3 q ranges (2 parameters and one degree of freedom), "
                       f"got {q.size}")
    y, weight = np.log(tau), (tau / error) ** 2
    log_q = np.log(q)
    if q0_nm is None:
        q0_nm = float(np.exp(np.sum(weight * log_q) / np.sum(weight)))
    elif not float(q0_nm) > 0:
        raise BadInput(f"q0_nm must be > 0 nm^-1, got {q0_nm!r}")
    x = log_q - np.log(float(q0_nm))
    if np.ptp(x) == 0:
        raise BadInput("the tau(q) law needs q ranges at different q; every range has the same q")
    design = np.column_stack([np.ones_like(x), -x])  # parameters ln τ₀, n
    normal = design.T @ (design * weight[:, None])
    cov_log = np.linalg.inv(normal)
    log_tau0, n = cov_log @ (design.T @ (weight * y))
    chi2 = float(np.sum(weight * (y - design @ np.array([log_tau0, n])) ** 2))
    tau0 = float(np.exp(log_tau0))
    jacobian = np.diag([tau0, 1.0])  # d(τ₀, n)/d(ln τ₀, n)
    covariance = jacobian @ cov_log @ jacobian
    errors = np.sqrt(np.diag(covariance))
    return TauQLaw(tau0, float(n), float(q0_nm), float(errors[0]), float(errors[1]), covariance,
                   chi2 / (q.size - 2), int(q.size))


def check_beta(*, beta: float | str) -> None:
    """Refuse a ``beta`` of :func:`fit_relaxations` that is neither ``"shared"`` nor a number in
    [0.05, 3], naming it."""
    if isinstance(beta, str) and beta == "shared":
        return
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.number)) or not 0.05 <= float(beta) <= 3.0:
        raise BadInput(f"beta must be 'shared' or a number in [0.05, 3] (a fixed Kohlrausch exponent), got {beta!r}")


def fit_relaxations(*, t_ns: Sequence[np.ndarray], isf: Sequence[np.ndarray], sigma: Sequence[np.ndarray],
                    beta: float | str = "shared") -> list[RelaxationFit]:
    """Fit f_q,i·exp(−(t/τ_i)^β) to the ISF points of several q ranges at once, with one Kohlrausch
    β for all of them: ``beta`` ``"shared"`` (fitted, in [0.05, 3]) or a number (fixed).

    ``t_ns``, ``isf``, ``sigma``: one array per range (ns, dimensionless, dimensionless; the
    accepted points, t > 0, σ > 0). Weighted least squares with absolute errors over all points
    (2 × ranges + 1 parameters, or 2 × ranges with β fixed). Returns one
    :class:`~eqegs_repo.kernels.e_spectrum.isf.RelaxationFit` per range (``model`` ``"shared_beta"``
    or ``"fixed_beta"``; covariance of f_q, τ and the common β; β error 0 when fixed; χ²_red of the
    joint fit). Each range needs 3 points or more.
    """
    from scipy import optimize  # on first use: a listing imports no scipy
    check_beta(beta=beta)
    shared = beta == "shared"
    if not len(t_ns) == len(isf) == len(sigma) or len(t_ns) < 1:
        raise BadInput(f"t_ns, isf and sigma must hold one array per q range each, got {len(t_ns)}, {len(isf)}, "
                       f"{len(sigma)}")
    starts = []
    for index, (t, y, s) in enumerate(zip(t_ns, isf, sigma)):
        if np.size(t) < 3:
            raise BadInput(f"q range {index} has {np.size(t)} accepted ISF points; a joint fit needs 3 or more "
                           "per range (raise isf_error_threshold)")
        first = fit_relaxation(t, y, s, model="exp")
        starts += [first.f_q, first.tau_ns]
    label = np.concatenate([np.full(np.size(t), i) for i, t in enumerate(t_ns)])
    t, y, s = (np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays]) for arrays in (t_ns, isf, sigma))
    n_ranges = len(t_ns)

    def model(_, *p):
        exponent = p[-1] if shared else float(beta)
        f_q, tau = np.asarray(p[0:2 * n_ranges:2]), np.asarray(p[1:2 * n_ranges:2])
        return f_q[label] * np.exp(-((t / tau[label]) ** exponent))

    start = starts + ([1.0] if shared else [])
    lower = [-np.inf, 1e-6] * n_ranges + ([0.05] if shared else [])
    upper = [np.inf, np.inf] * n_ranges + ([3.0] if shared else [])
    try:
        values, covariance = optimize.curve_fit(model, t, y, p0=start, sigma=s, absolute_sigma=True,
                                                bounds=(lower, upper), max_nfev=20000)
    except RuntimeError as error:
        raise BadInput(f"the joint fit of the q ranges with beta {beta!r} did not converge: {error}") from None
    n_params = len(start)
    chi2_red = float(np.sum(((y - model(None, *values)) / s) ** 2)) / (t.size - n_params)
    exponent = float(values[-1]) if shared else float(beta)
    fits = []
    for i in range(n_ranges):
        index = [2 * i, 2 * i + 1] + ([n_params - 1] if shared else [])
        full = np.zeros((3, 3))
        full[np.ix_(range(len(index)), range(len(index)))] = covariance[np.ix_(index, index)]
        errors = np.sqrt(np.clip(np.diag(full), 0, None))
        fits.append(RelaxationFit("shared_beta" if shared else "fixed_beta", float(values[2 * i]),
                                  float(values[2 * i + 1]), exponent, float(errors[0]), float(errors[1]),
                                  float(errors[2]), full, chi2_red, int(np.size(t_ns[i]))))
    return fits
