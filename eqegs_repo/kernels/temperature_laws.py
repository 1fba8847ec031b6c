"""Fits of relaxation time against temperature, τ(T), across samples (docs/physics.md#relaxation-time-against-temperature).

Two laws, each fitted to τ (ns) with its one-sigma error (ns) at absolute temperatures T (K):

- Arrhenius: τ = τ∞·exp(E_a / (k_B·T)); a weighted straight line of ln τ against 1/T
  (:func:`fit_arrhenius`): slope E_a/k_B, intercept ln τ∞, the error of ln τ being σ_τ/τ.
- Vogel–Fulcher–Tammann: τ = τ₀·exp(B / (T − T₀)) with B = D·T₀ (D the strength index;
  :func:`fit_vft`), by weighted non-linear least squares (``scipy.optimize.curve_fit`` with
  ``absolute_sigma=True``) of ln τ, started from the Arrhenius fit.

Errors are absolute: the covariance comes from the errors of τ as given, not rescaled by χ²;
``chi2_red`` says whether the law and the errors agree (≈ 1). Numpy in, a dataclass out; no
files, no tables (the table front end is :mod:`eqegs_repo.temperature_fits`).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import optimize

from eqegs_repo.errors import BadInput

K_B_EV_PER_K = 8.617333262e-5
"""Boltzmann constant k_B in eV/K (CODATA 2018, exact)."""
EV_TO_KJ_PER_MOL = 96.48533212
"""1 eV per particle in kJ/mol (e·N_A / 1000)."""


@dataclasses.dataclass(frozen=True)
class TemperatureFit:
    """A fitted τ(T) law.

    ``law``: ``"arrhenius"`` or ``"vft"``; ``names``: the parameter names in the order of
    ``values`` and ``covariance`` (Arrhenius: ``ln_tau_inf`` (ln of ns), ``ea_ev`` (eV); VFT:
    ``ln_tau0`` (ln of ns), ``b_k`` (K), ``t0_k`` (K)); ``errors``: their one-sigma errors
    (square roots of the covariance diagonal); ``chi2_red``: χ² of ln τ per degree of freedom
    (NaN without degrees of freedom); ``n_points``: the (T, τ) points used.
    """

    law: str
    names: tuple
    values: np.ndarray
    covariance: np.ndarray
    chi2_red: float
    n_points: int

    @property
    def errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    def value(self, name: str) -> float:
        """The fitted value of parameter ``name``."""
        return float(self.values[self.names.index(name)])

    def error(self, name: str) -> float:
        """The one-sigma error of parameter ``name``."""
        return float(self.errors[self.names.index(name)])

    @property
    def ea_ev(self) -> float:
        """Arrhenius activation energy E_a, eV (VFT: the apparent E_a = k_B·B is not given)."""
        return self.value("ea_ev")

    @property
    def ea_error_ev(self) -> float:
        return self.error("ea_ev")

    @property
    def ea_kj_mol(self) -> float:
        """E_a in kJ/mol."""
        return self.ea_ev * EV_TO_KJ_PER_MOL

    @property
    def ea_error_kj_mol(self) -> float:
        return self.ea_error_ev * EV_TO_KJ_PER_MOL

    def tau_ns(self, temperature_k) -> np.ndarray:
        """τ of the fitted law at ``temperature_k`` (K, any shape), ns."""
        return tau_of_law(law=self.law, temperature_k=temperature_k, values=self.values)

    def to_dict(self) -> dict:
        """Plain numbers: each value and its error (``<name>``, ``<name>_error``), the law,
        χ²_red, the point count and, for Arrhenius, E_a in kJ/mol."""
        out = {"law": self.law, "n_points": self.n_points, "chi2_red": self.chi2_red}
        for name, value, error in zip(self.names, self.values, self.errors):
            out[name], out[f"{name}_error"] = float(value), float(error)
        if self.law == "arrhenius":
            out.update(ea_kj_mol=self.ea_kj_mol, ea_error_kj_mol=self.ea_error_kj_mol)
        return out


def arrhenius_tau(temperature_k, *, tau_inf_ns: float, ea_ev: float) -> np.ndarray:
    """τ = τ∞·exp(E_a/(k_B·T)), ns; ``temperature_k`` in K (any shape), ``ea_ev`` in eV."""
    return tau_inf_ns * np.exp(ea_ev / (K_B_EV_PER_K * np.asarray(temperature_k, dtype=np.float64)))


def vft_tau(temperature_k, *, tau0_ns: float, b_k: float, t0_k: float) -> np.ndarray:
    """τ = τ₀·exp(B/(T − T₀)), ns; T, B and T₀ in K (T > T₀)."""
    return tau0_ns * np.exp(b_k / (np.asarray(temperature_k, dtype=np.float64) - t0_k))


def _ln_arrhenius(temperature_k, ln_tau_inf, ea_ev):
    return ln_tau_inf + ea_ev / (K_B_EV_PER_K * temperature_k)


def _ln_vft(temperature_k, ln_tau0, b_k, t0_k):
    return ln_tau0 + b_k / (temperature_k - t0_k)


def tau_of_law(*, law: str, temperature_k, values) -> np.ndarray:
    """τ (ns) of ``law`` (``"arrhenius"`` or ``"vft"``) at ``temperature_k`` (K, any shape) for
    the fitted ``values`` (in the order of :attr:`TemperatureFit.names`)."""
    ln = {"arrhenius": _ln_arrhenius, "vft": _ln_vft}[law]
    return np.exp(ln(np.asarray(temperature_k, dtype=np.float64), *values))


def _points(temperature_k, tau_ns, tau_error_ns, minimum):
    """Checked float arrays (T, ln τ, σ of ln τ); BadInput naming the argument otherwise."""
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in (temperature_k, tau_ns, tau_error_ns)]
    names = ("temperature_k", "tau_ns", "tau_error_ns")
    if len({a.size for a in arrays}) != 1:
        raise BadInput("temperature_k, tau_ns and tau_error_ns must have one entry per point; found "
                       + ", ".join(f"{n} {a.size}" for n, a in zip(names, arrays)))
    for name, array in zip(names, arrays):
        bad = ~(np.isfinite(array) & (array > 0))
        if bad.any():
            raise BadInput(f"{name} must be finite and > 0 at every point (K or ns); found "
                           f"{array[bad][0]!r} at point {int(np.flatnonzero(bad)[0])}")
    if arrays[0].size < minimum:
        raise BadInput(f"a fit of this law needs at least {minimum} points (T, τ); found {arrays[0].size}")
    temperature, tau, error = arrays
    return temperature, np.log(tau), error / tau


def _chi2_red(residual, sigma, n_parameters):
    dof = residual.size - n_parameters
    return float(np.sum((residual / sigma) ** 2) / dof) if dof > 0 else float("nan")


def fit_arrhenius(*, temperature_k, tau_ns, tau_error_ns) -> TemperatureFit:
    """Weighted straight line of ln τ against 1/(k_B·T): slope E_a (eV), intercept ln τ∞.

    ``temperature_k`` (K), ``tau_ns`` and ``tau_error_ns`` (ns): one entry per sample, shape
    (n,), n >= 2, all finite and > 0. The weight of a point is (τ/σ_τ)² (the error of ln τ is
    σ_τ/τ); the covariance is that of weighted least squares with these absolute errors.
    """
    temperature, ln_tau, sigma = _points(temperature_k, tau_ns, tau_error_ns, 2)
    design = np.column_stack([np.ones_like(temperature), 1.0 / (K_B_EV_PER_K * temperature)])
    weighted = design / sigma[:, None]
    normal = weighted.T @ weighted
    try:
        covariance = np.linalg.inv(normal)
    except np.linalg.LinAlgError:
        raise BadInput("an Arrhenius fit needs at least two different temperatures") from None
    if not np.all(np.isfinite(covariance)) or np.ptp(temperature) == 0:
        raise BadInput("an Arrhenius fit needs at least two different temperatures")
    values = covariance @ (weighted.T @ (ln_tau / sigma))
    residual = ln_tau - design @ values
    return TemperatureFit("arrhenius", ("ln_tau_inf", "ea_ev"), values, covariance,
                          _chi2_red(residual, sigma, 2), temperature.size)


def fit_vft(*, temperature_k, tau_ns, tau_error_ns, t0_guess_k=None) -> TemperatureFit:
    """Vogel–Fulcher–Tammann τ = τ₀·exp(B/(T − T₀)) fitted to ln τ with absolute errors σ_τ/τ.

    ``temperature_k`` (K), ``tau_ns``, ``tau_error_ns`` (ns): shape (n,), n >= 3 (four or more
    leave a degree of freedom). ``t0_guess_k``: start of T₀ (K; default 0.8 × the lowest T).
    T₀ is kept below the lowest T. Returns ``ln_tau0`` (ln ns), ``b_k`` (K), ``t0_k`` (K);
    the fragility index D = B/T₀. BadInput when the fit does not converge.
    """
    temperature, ln_tau, sigma = _points(temperature_k, tau_ns, tau_error_ns, 3)
    lowest = float(temperature.min())
    t0 = 0.8 * lowest if t0_guess_k is None else float(t0_guess_k)
    if not 0 <= t0 < lowest:
        raise BadInput(f"t0_guess_k must lie in [0, {lowest:g}) K (below the lowest temperature); found {t0_guess_k!r}")
    slope = np.polyfit(1.0 / (temperature - t0), ln_tau, 1, w=1.0 / sigma)
    start = (slope[1], max(slope[0], 1e-6), t0)
    bounds = ([-np.inf, 0.0, 0.0], [np.inf, np.inf, lowest * (1 - 1e-9)])
    try:
        values, covariance = optimize.curve_fit(_ln_vft, temperature, ln_tau, p0=start, sigma=sigma,
                                                absolute_sigma=True, bounds=bounds, max_nfev=20_000)
    except (RuntimeError, ValueError) as exc:
        raise BadInput(f"the VFT fit did not converge on {temperature.size} points: {exc}") from None
    residual = ln_tau - _ln_vft(temperature, *values)
    return TemperatureFit("vft", ("ln_tau0", "b_k", "t0_k"), np.asarray(values), np.asarray(covariance),
                          _chi2_red(residual, sigma, 3), temperature.size)
