"""The power law of the relaxation time across q, τ(q) = τ₀·(q/q₀)^(−n)
(docs/physics.md#relaxation-time-across-q), fitted to the τ of several q ranges.

Units: q and q₀ in nm⁻¹, τ and τ₀ in ns; n is dimensionless.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqegs_repo.errors import BadInput


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
