"""From energy spectra to the ISF with errors and its relaxation fit
(docs/physics.md#energy-spectrum-and-isf): wing background, absorption spectra, transforms,
the ratio F = ŝ_q/ŝ₀, Monte-Carlo errors and the fit f_q·exp(−(t/τ)^β).

Units: energy in neV, time t in ns, τ in ns.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.e_spectrum.spectra import EnergySpectra, FrameSeries, Spectrum

if TYPE_CHECKING:  # annotations only; scipy is imported on first use
    from scipy import sparse

MC_NOISE = ("poisson", "gaussian")
ISF_NORMALISATIONS = ("absolute", "unit")
FIT_MODELS = ("exp", "kww", "none")
DEFAULT_WING_POINTS = 30
"""Wing points per side of the default background (``bg_n_points`` null), at most K // 4."""


def wing_points(n_points: int | None, *, n_energies: int) -> int:
    """The wing points per side used for the background of a spectrum of ``n_energies`` points.

    ``n_points`` None (``bg_n_points`` null, the default) gives min(30, K // 4): 30 points, but
    never more than a quarter of the spectrum on each side, so the middle half (the dips) stays
    out of the background.  An explicit value is returned as it is (checked by
    :func:`wing_background`).
    """
    if n_points is not None:
        return int(n_points)
    chosen = min(DEFAULT_WING_POINTS, int(n_energies) // 4)
    if chosen < 2:
        raise BadInput(f"a spectrum of {n_energies} points is too short for a wing background "
                       "(the default takes a quarter of it per side, at least 2 points); lower rebin_factor")
    return chosen


def wing_background(energy: np.ndarray, y: np.ndarray, sigma: np.ndarray, *, n_points: int = 30,
                    fit_slope: bool = False) -> np.ndarray:
    """Background b(E) from the first and last ``n_points`` (``bg_n_points``) of a spectrum.

    ``fit_slope`` False (``bg_fit_enabled`` off): the weighted mean (weights 1/σ²) of the wings;
    True: a weighted straight-line fit b(E) = b₀ + b₁E.  ``energy`` and ``sigma`` (K,), ``y``
    (..., K) (e.g. many Monte-Carlo spectra at once).  Returns b with the shape of ``y``.
    """
    energy, sigma = np.asarray(energy, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    n_points = int(n_points)
    if n_points < 2 or 2 * n_points > energy.size:
        raise BadInput(f"bg_n_points must be in [2, {energy.size // 2}] for a spectrum of {energy.size} points, got {n_points}")
    wings = np.r_[0:n_points, energy.size - n_points:energy.size]
    if np.any(sigma[wings] <= 0):
        raise BadInput("the wing points used for the background have zero errors; cannot weight the background")
    w = 1.0 / sigma[wings] ** 2
    e = energy[wings]
    yw = np.asarray(y, dtype=np.float64)[..., wings]
    if not fit_slope:
        level = (yw * w).sum(axis=-1) / w.sum()
        return np.broadcast_to(level[..., None], np.shape(y)).copy()
    s0, s1, s2 = w.sum(), (w * e).sum(), (w * e * e).sum()
    t0, t1 = (yw * w).sum(axis=-1), (yw * w * e).sum(axis=-1)
    det = s0 * s2 - s1 * s1
    intercept = (s2 * t0 - s1 * t1) / det
    slope = (s0 * t1 - s1 * t0) / det
    return intercept[..., None] + slope[..., None] * energy


def convex_spectrum(y: np.ndarray, background: np.ndarray) -> np.ndarray:
    """s = 1 − a with the absorption spectrum a = y/b (the app's convex-upward spectrum)."""
    return 1.0 - np.asarray(y, dtype=np.float64) / background


def spectrum_transform(s: np.ndarray, *, step_nev: float) -> np.ndarray:
    """ŝ(t_m) = ΔE·Σ_k s_k e^{−2πikm/K} for m = 0…K//2 (times :attr:`SpectrumGrid.times_ns`);
    FFT along the last axis, complex (..., K//2 + 1)."""
    return float(step_nev) * np.fft.rfft(s, axis=-1)


def isf_ratio(qe_transform: np.ndarray, forward_transform: np.ndarray) -> np.ndarray:
    """F(t_m) = ŝ_q/ŝ₀ (complex; the grid-origin phase cancels): the absolute ISF, F(0) =
    A_q/A₀ ≈ f_q.  The ``unit`` normalisation divides it by one number, :func:`unit_scale`."""
    return qe_transform / forward_transform


def unit_scale(ratio: np.ndarray, *, normalisation: str = "absolute") -> float:
    """The number the ISF ``ratio`` (:func:`isf_ratio` of the data, (M,)) and every one of its
    Monte-Carlo copies are divided by: 1 for ``"absolute"``, Re F(0) of the data for ``"unit"``.

    One number for all copies: the noise of F(0) is common to every point of a copy, so
    dividing each copy by its own F*(0) would turn it into errors that look independent
    point by point, inflate σ_F and σ_τ and reweight the fit (docs/physics.md#energy-spectrum-and-isf).
    """
    if normalisation not in ISF_NORMALISATIONS:
        raise BadInput(f"isf_normalisation must be one of {ISF_NORMALISATIONS}, got {normalisation!r}")
    if normalisation == "absolute":
        return 1.0
    scale = float(np.real(ratio[0]))
    if not np.isfinite(scale) or scale <= 0:
        raise BadInput(f"isf_normalisation 'unit' divides by Re F(0), which is {scale:.4g} here (no quasi-elastic "
                       "dip in the transform at t = 0); use isf_normalisation 'absolute'")
    return scale


def monte_carlo_spectra(series: Sequence[FrameSeries], *, n_mc: int, noise: str,
                        rng: np.random.Generator) -> np.ndarray:
    """``n_mc`` Monte-Carlo copies, (n_mc, K), of the spectrum Σ_s W_s·x_s of the per-frame
    ``series`` (the forward series, or the q bins of the QE spectrum).

    The noise is drawn where it is independent, per frame and series, and carried through the
    same linear resampling W_s as the data, so the correlation that interpolation creates
    between neighbouring bins is in every copy.  ``"gaussian"``: exactly, through the covariance
    C = Σ_s W_s·diag(V_s)·W_sᵀ: y* = y + L·z with C = L·Lᵀ (Cholesky) and z ~ N(0, 1) (the same
    distribution as Gaussian noise on every frame, at the cost of one K × K factorisation).
    ``"poisson"``: every kept frame value x with variance V is redrawn as (V/x)·Poisson(x²/V), a
    Poisson count with the value's effective number of counts (Poisson(x) for raw counts); this
    needs x > 0 and V > 0 and costs frames × series × n_mc draws.
    """
    if noise not in MC_NOISE:
        raise BadInput(f"mc_noise must be one of {MC_NOISE}, got {noise!r}")
    n_mc = int(n_mc)
    y = sum(s.resampling.spectrum(s.values, s.variance).y for s in series)
    if noise == "gaussian":
        factor = _banded_cholesky(sum(s.resampling.covariance(s.variance) for s in series))
        return y + (factor @ rng.standard_normal((y.size, n_mc))).T
    copies = np.zeros((n_mc, y.size))
    for index, s in enumerate(series):
        frames = np.unique(s.resampling.matrix.indices)
        x, variance = s.values[frames], s.variance[frames]
        bad = np.flatnonzero(~((x > 0) & (variance > 0)))
        if bad.size:
            raise BadInput(f"mc_noise 'poisson' needs positive per-frame values with positive variances; "
                           f"series {index}, frame {frames[bad[0]]} has value {x[bad[0]]:.4g} and variance "
                           f"{variance[bad[0]]:.4g} ({bad.size} such frames); background-subtracted data that "
                           "reach zero need mc_noise 'gaussian'")
        draws = rng.poisson(x**2 / variance, size=(n_mc, frames.size)) * (variance / x)
        copies += (s.resampling.matrix[:, frames] @ draws.T).T
    return copies


def _banded_cholesky(covariance: sparse.csr_matrix) -> sparse.csr_matrix:
    """Lower Cholesky factor L (sparse) of a banded covariance C = L·Lᵀ, (K, K).

    The resampling touches only neighbouring bins, so C has a narrow band and the factorisation
    costs O(K·band²). A floor of 10⁻¹² of the largest variance on the diagonal keeps it defined
    for bins without noise; a covariance of zeros gives L = 0.
    """
    from scipy import linalg, sparse  # on first use: a listing imports no scipy
    size = covariance.shape[0]
    entries = covariance.tocoo()
    band = int(np.max(np.abs(entries.row - entries.col), initial=0))
    stored = np.zeros((band + 1, size))
    for offset in range(band + 1):
        stored[offset, : size - offset] = covariance.diagonal(-offset)
    scale = float(stored[0].max(initial=0.0))
    if scale <= 0:
        return sparse.csr_matrix((size, size))
    stored[0] += 1e-12 * scale
    lower = linalg.cholesky_banded(stored, lower=True)
    return sparse.diags([lower[offset, : size - offset] for offset in range(band + 1)],
                        [-offset for offset in range(band + 1)], format="csr")


@dataclass(frozen=True)
class RelaxationFit:
    """Weighted least-squares fit of F(t) = f_q·exp(−(t/τ)^β): values, 1σ errors, covariance
    (parameter order f_q, τ, β; β fixed at 1 for ``"exp"`` with zero error) and χ²_red."""

    model: str
    f_q: float
    tau_ns: float
    beta: float
    f_q_error: float
    tau_error_ns: float
    beta_error: float
    covariance: np.ndarray
    chi2_red: float
    n_points: int

    def as_dict(self) -> dict:
        """JSON-ready record of the fit."""
        return {"model": self.model, "f_q": self.f_q, "tau_ns": self.tau_ns, "beta": self.beta,
                "f_q_error": self.f_q_error, "tau_error_ns": self.tau_error_ns, "beta_error": self.beta_error,
                "covariance": self.covariance.tolist(), "chi2_red": self.chi2_red, "n_points": self.n_points}


def _stretched(t, f_q, tau, beta=1.0):
    return f_q * np.exp(-((t / tau) ** beta))


def fit_relaxation(t_ns: np.ndarray, isf: np.ndarray, sigma: np.ndarray, *, model: str = "exp") -> RelaxationFit | None:
    """Fit f_q·exp(−(t/τ)^β) to ISF points (t > 0 ns, errors σ > 0) by weighted least squares.

    ``model`` (``fit_model``): ``"exp"`` (β = 1), ``"kww"`` (β free in (0.05, 3]), ``"none"``
    (returns None).  Raises when fewer points than parameters + 1 are given.
    """
    from scipy import optimize  # on first use: a listing imports no scipy
    if model not in FIT_MODELS:
        raise BadInput(f"fit_model must be one of {FIT_MODELS}, got {model!r}")
    if model == "none":
        return None
    t, y, s = (np.asarray(a, dtype=np.float64) for a in (t_ns, isf, sigma))
    n_params = 2 if model == "exp" else 3
    if t.size < n_params + 1:
        raise BadInput(f"only {t.size} ISF points pass the error threshold; fit_model {model!r} needs at least "
                       f"{n_params + 1} (raise isf_error_threshold or set fit_model 'none')")
    f0 = float(np.clip(y[0] if y[0] > 0 else np.max(y), 1e-3, None))
    below = np.flatnonzero(y < f0 / np.e)
    tau0 = float(t[below[0]] if below.size else t[-1])
    start = [f0, max(tau0, 1e-3)] + ([1.0] if model == "kww" else [])
    lower = [-np.inf, 1e-6] + ([0.05] if model == "kww" else [])
    upper = [np.inf, np.inf] + ([3.0] if model == "kww" else [])
    try:
        values, covariance = optimize.curve_fit(_stretched, t, y, p0=start, sigma=s, absolute_sigma=True,
                                                bounds=(lower, upper), max_nfev=10000)
    except RuntimeError as error:
        raise BadInput(f"the {model!r} fit of the ISF did not converge: {error}") from None
    chi2 = float(np.sum(((y - _stretched(t, *values)) / s) ** 2))
    full = np.zeros((3, 3))
    full[:n_params, :n_params] = covariance
    errors = np.sqrt(np.clip(np.diag(full), 0, None))
    beta = float(values[2]) if model == "kww" else 1.0
    return RelaxationFit(model, float(values[0]), float(values[1]), beta, float(errors[0]), float(errors[1]),
                         float(errors[2]), full, chi2 / (t.size - n_params), int(t.size))


@dataclass(frozen=True)
class NormalisedSpectrum:
    """A spectrum with its background b, absorption spectrum a = y/b (error σ/b) and convex
    spectrum s = 1 − a, all (K,)."""

    spectrum: Spectrum
    background: np.ndarray
    absorption: np.ndarray
    absorption_error: np.ndarray
    convex: np.ndarray


@dataclass(frozen=True)
class IsfResult:
    """Output of :func:`isf_from_spectra`.

    ``t_ns`` (M,) with M = K//2 + 1; ``isf`` Re F, ``isf_imag`` Im F and ``isf_error`` (the
    Monte-Carlo std of Re F, ddof = 1), all (M,); ``accepted`` (M,) bool: t > 0 and σ ≤
    threshold; ``forward_transform``/``qe_transform`` ŝ₀, ŝ_q (complex, M); ``mc_isf``
    (n_mc, M) the resampled Re F; ``fit`` (None for ``fit_model`` none); ``seed`` used.
    """

    t_ns: np.ndarray
    isf: np.ndarray
    isf_imag: np.ndarray
    isf_error: np.ndarray
    accepted: np.ndarray
    forward: NormalisedSpectrum
    quasielastic: NormalisedSpectrum
    forward_transform: np.ndarray
    qe_transform: np.ndarray
    mc_isf: np.ndarray
    fit: RelaxationFit | None
    seed: int
    parameters: dict = field(default_factory=dict)


def isf_from_spectra(
    spectra: EnergySpectra,
    *,
    bg_fit_enabled: bool = False,
    bg_n_points: int | None = None,
    relax_bg_coeff: float = 1.0,
    isf_error_threshold: float = 0.05,
    n_mc: int = 500,
    mc_noise: str = "gaussian",
    seed: int = 0,
    isf_normalisation: str = "absolute",
    fit_model: str = "exp",
) -> IsfResult:
    """Background, normalisation, transforms, ratio, Monte-Carlo errors and fit
    (docs/physics.md#energy-spectrum-and-isf) on the output of :func:`energy_spectra`.

    Background from ``bg_n_points`` wing points on each side (None: :func:`wing_points`; flat,
    or sloped when ``bg_fit_enabled``), QE background multiplied by ``relax_bg_coeff`` (which
    scales F(t > 0) by 1/c and adds a t = 0 artefact), normalisation a = y/b, s = 1 − a, FFT,
    F = ŝ_q/ŝ₀ (``isf_normalisation``: ``unit`` divides the ISF and every copy by the data's
    Re F(0), :func:`unit_scale`), ``n_mc`` Monte-Carlo copies of both spectra drawn at the
    frame level (:func:`monte_carlo_spectra`, ``mc_noise``, PCG64 seeded with ``seed``) through
    the same steps, all at once, for σ_F; points with t > 0 and σ_F ≤ ``isf_error_threshold``
    are fitted with ``fit_model``.  ``parameters`` records the values used (``bg_n_points``,
    with ``bg_n_points_rule`` when the default rule chose it; ``isf_scale``, the divisor, 1 for
    ``absolute``, and ``isf_scale_error``, the Monte-Carlo spread of Re F(0), 0 for ``absolute``).
    """
    if not float(relax_bg_coeff) > 0:
        raise BadInput(f"relax_bg_coeff must be > 0, got {relax_bg_coeff!r}")
    if int(n_mc) < 2:
        raise BadInput(f"n_mc must be >= 2, got {n_mc!r}")
    if not float(isf_error_threshold) >= 0:
        raise BadInput(f"isf_error_threshold must be >= 0, got {isf_error_threshold!r}")
    if mc_noise not in MC_NOISE:
        raise BadInput(f"mc_noise must be one of {MC_NOISE}, got {mc_noise!r}")
    if isf_normalisation not in ISF_NORMALISATIONS:
        raise BadInput(f"isf_normalisation must be one of {ISF_NORMALISATIONS}, got {isf_normalisation!r}")
    if fit_model not in FIT_MODELS:
        raise BadInput(f"fit_model must be one of {FIT_MODELS}, got {fit_model!r}")
    grid = spectra.grid
    energy = grid.centres
    automatic = bg_n_points is None
    bg_n_points = wing_points(bg_n_points, n_energies=grid.n_points)

    def convex(y, sigma, coeff):
        background = wing_background(energy, y, sigma, n_points=bg_n_points, fit_slope=bg_fit_enabled)
        return convex_spectrum(y, coeff * background)

    fwd, qe = spectra.forward, spectra.quasielastic
    coeff = float(relax_bg_coeff)
    forward_transform = spectrum_transform(convex(fwd.y, fwd.sigma, 1.0), step_nev=grid.step_nev)
    qe_transform = spectrum_transform(convex(qe.y, qe.sigma, coeff), step_nev=grid.step_nev)
    absolute = isf_ratio(qe_transform, forward_transform)
    scale = unit_scale(absolute, normalisation=isf_normalisation)
    ratio = absolute / scale

    rng = np.random.Generator(np.random.PCG64(int(seed)))
    fwd_mc = monte_carlo_spectra((spectra.forward_series,), n_mc=n_mc, noise=mc_noise, rng=rng)
    qe_mc = monte_carlo_spectra(spectra.qe_series, n_mc=n_mc, noise=mc_noise, rng=rng)
    mc_absolute = isf_ratio(spectrum_transform(convex(qe_mc, qe.sigma, coeff), step_nev=grid.step_nev),
                            spectrum_transform(convex(fwd_mc, fwd.sigma, 1.0), step_nev=grid.step_nev))
    mc_isf = mc_absolute.real / scale
    error = mc_isf.std(axis=0, ddof=1)
    t = grid.times_ns
    accepted = (t > 0) & (error <= float(isf_error_threshold))
    fit = fit_relaxation(t[accepted], ratio.real[accepted], error[accepted], model=fit_model)
    parameters = {"bg_fit_enabled": bool(bg_fit_enabled), "bg_n_points": int(bg_n_points),
                  "relax_bg_coeff": coeff, "isf_error_threshold": float(isf_error_threshold),
                  "n_mc": int(n_mc), "mc_noise": mc_noise, "seed": int(seed),
                  "isf_normalisation": isf_normalisation, "isf_scale": scale,
                  "isf_scale_error": float(mc_absolute.real[:, 0].std(ddof=1)) if isf_normalisation == "unit" else 0.0,
                  "fit_model": fit_model, "binning": spectra.binning}
    if automatic:
        parameters["bg_n_points_rule"] = (f"default: min({DEFAULT_WING_POINTS}, K // 4) with K = {grid.n_points} "
                                          "energy points")
    return IsfResult(t, ratio.real, ratio.imag, error, accepted,
                     _normalised(fwd, energy, bg_n_points, bg_fit_enabled, 1.0),
                     _normalised(qe, energy, bg_n_points, bg_fit_enabled, coeff),
                     forward_transform, qe_transform, mc_isf, fit, int(seed), parameters)


def _normalised(spectrum: Spectrum, energy: np.ndarray, n_points: int, fit_slope: bool, coeff: float) -> NormalisedSpectrum:
    background = coeff * wing_background(energy, spectrum.y, spectrum.sigma, n_points=n_points, fit_slope=fit_slope)
    absorption = spectrum.y / background
    return NormalisedSpectrum(spectrum, background, absorption, spectrum.sigma / background, 1.0 - absorption)
