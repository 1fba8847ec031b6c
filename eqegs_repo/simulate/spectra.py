"""Energy spectra of the synthetic measurement: source lines, analyser, transmission functional, quasi-elastic
broadening by the ISF, and the spectral-only count model (docs/physics.md#forward-model).

Pure functions, numpy in, numpy out. Energy and δ in neV, velocity in mm/s, time in ns, q in nm⁻¹.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from eqegs_repo.kernels.physics import (
    GAMMA0_NEV,
    H_NEV_NS,
    HBAR_NEV_NS,
    KAPPA_NEV_PER_MM_S,
    WAVELENGTH_NM,
    two_theta_from_q,
)


# --------------------------------------------------------------------------------------------
# Lineshapes, source, analyser (docs/physics.md#forward-model)
# --------------------------------------------------------------------------------------------
def lorentzian(energy: np.ndarray, fwhm: float, centre: float = 0.0) -> np.ndarray:
    """Unit-area Lorentzian 𝓛(E − centre; Γ) = (Γ/2π)/((E − centre)² + (Γ/2)²), 1/neV."""
    half = 0.5 * float(fwhm)
    return (half / np.pi) / ((np.asarray(energy, dtype=np.float64) - centre) ** 2 + half**2)


@dataclass(frozen=True)
class SourceSpectrum:
    """NBM source spectrum ρ_src(E) = Σ_j w_j 𝓛(E − κu_j; Γ_s), unit area
    (docs/physics.md#forward-model).

    ``lines``: tuple of (u_j in mm/s, relative weight w_j); weights are normalised to sum 1.
    ``fwhm_nev``: Γ_s, the FWHM of every line in neV.
    """

    lines: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    fwhm_nev: float = 2.0 * GAMMA0_NEV

    def __post_init__(self):
        lines = tuple((float(u), float(w)) for u, w in self.lines)
        if not lines:
            raise ValueError("SourceSpectrum.lines must hold at least one (u_mm_s, weight) pair")
        if any(w < 0 for _, w in lines) or sum(w for _, w in lines) <= 0:
            raise ValueError(f"SourceSpectrum.lines weights must be >= 0 with a positive sum, got {lines}")
        if not self.fwhm_nev > 0:
            raise ValueError(f"SourceSpectrum.fwhm_nev must be > 0 neV, got {self.fwhm_nev!r}")
        object.__setattr__(self, "lines", lines)

    @classmethod
    def single_line(cls, fwhm_nev: float = 2.0 * GAMMA0_NEV) -> "SourceSpectrum":
        """Default source: one line at u = 0 with Γ_s = 2Γ₀."""
        return cls(((0.0, 1.0),), fwhm_nev)

    @classmethod
    def multi_line(cls, fwhm_nev: float = 1.5 * GAMMA0_NEV) -> "SourceSpectrum":
        """Hematite-like preset [I, approximate]: u = (−8.2, −4.6, −1.0, 1.6, 5.2, 8.6) mm/s,
        weights 3:2:1:1:2:3, Γ_s = 1.5Γ₀."""
        u = (-8.2, -4.6, -1.0, 1.6, 5.2, 8.6)
        w = (3.0, 2.0, 1.0, 1.0, 2.0, 3.0)
        return cls(tuple(zip(u, w)), fwhm_nev)

    @property
    def positions_mm_s(self) -> np.ndarray:
        """Line positions u_j, mm/s, shape (n_lines,)."""
        return np.array([u for u, _ in self.lines])

    @property
    def positions_nev(self) -> np.ndarray:
        """Line positions E_j = κu_j, neV, shape (n_lines,)."""
        return KAPPA_NEV_PER_MM_S * self.positions_mm_s

    @property
    def weights(self) -> np.ndarray:
        """Normalised weights w_j (sum 1), shape (n_lines,)."""
        w = np.array([w for _, w in self.lines])
        return w / w.sum()

    def density(self, energy: np.ndarray) -> np.ndarray:
        """ρ_src(E), 1/neV, same shape as ``energy``."""
        energy = np.asarray(energy, dtype=np.float64)
        out = np.zeros_like(energy)
        for e_j, w_j in zip(self.positions_nev, self.weights):
            out += w_j * lorentzian(energy, self.fwhm_nev, e_j)
        return out

    def time_transform(self, t_ns: np.ndarray) -> np.ndarray:
        """ρ̂(t) = ∫ρ(E)·e^{−iEt/ħ} dE = Σ_j w_j e^{−iE_j t/ħ} e^{−Γ_s|t|/2ħ} (complex, dimensionless)."""
        t = np.asarray(t_ns, dtype=np.float64)
        phase = np.zeros(t.shape, dtype=np.complex128)
        for e_j, w_j in zip(self.positions_nev, self.weights):
            phase += w_j * np.exp(-1j * e_j * t / HBAR_NEV_NS)
        return phase * np.exp(-0.5 * self.fwhm_nev * np.abs(t) / HBAR_NEV_NS)

    def to_mapping(self) -> dict:
        """JSON-friendly description: lines (u mm/s, normalised weight) and fwhm_nev."""
        return {
            "lines": [[float(u), float(w)] for u, w in zip(self.positions_mm_s, self.weights)],
            "fwhm_nev": float(self.fwhm_nev),
        }


SOURCE_PRESETS = ("single", "multi")


def source_preset(name: str) -> SourceSpectrum:
    """``"single"`` → :meth:`SourceSpectrum.single_line`, ``"multi"`` → :meth:`SourceSpectrum.multi_line`."""
    if name == "single":
        return SourceSpectrum.single_line()
    if name == "multi":
        return SourceSpectrum.multi_line()
    raise ValueError(f"source preset must be one of {SOURCE_PRESETS}, got {name!r}")


@dataclass(frozen=True)
class Analyser:
    """Single-line 57Fe analyser (docs/physics.md#forward-model): T_A(E) = exp(−t_A·ℓ(E)), ℓ
    peak-normalised Lorentzian.

    ``thickness``: effective thickness t_A (dimensionless, ≥ 0); ``fwhm_nev``: Γ_A in neV.
    """

    thickness: float = 3.0
    fwhm_nev: float = GAMMA0_NEV

    def __post_init__(self):
        if not self.thickness >= 0:
            raise ValueError(f"Analyser.thickness (t_A) must be >= 0, got {self.thickness!r}")
        if not self.fwhm_nev > 0:
            raise ValueError(f"Analyser.fwhm_nev (Γ_A) must be > 0 neV, got {self.fwhm_nev!r}")

    def line(self, energy: np.ndarray) -> np.ndarray:
        """Peak-normalised ℓ(E) = (Γ_A/2)²/(E² + (Γ_A/2)²)."""
        half2 = (0.5 * self.fwhm_nev) ** 2
        return half2 / (np.asarray(energy, dtype=np.float64) ** 2 + half2)

    def transmission(self, energy: np.ndarray) -> np.ndarray:
        """T_A(E) = exp(−t_A ℓ(E))."""
        return np.exp(-self.thickness * self.line(energy))

    def absorption(self, energy: np.ndarray) -> np.ndarray:
        """a(E) = 1 − T_A(E), computed without cancellation (−expm1)."""
        return -np.expm1(-self.thickness * self.line(energy))

    def with_path_factor(self, factor: float) -> "Analyser":
        """The analyser seen along a path ``factor`` times longer (t_A → t_A·factor, e.g. 1/cos 2θ)."""
        return Analyser(self.thickness * float(factor), self.fwhm_nev)


@dataclass(frozen=True)
class EnergyGrid:
    """Fine periodic energy grid used for the FFT correlation of the analyser
    (docs/physics.md#forward-model).

    ``step_nev``: grid step (default 0.05 neV); ``n_points``: number of points (even; default
    2¹⁷, i.e. ±3277 neV).  Values are held in FFT order: E_n = n·step for n < N/2 and
    (n − N)·step above.  The matching times of a real FFT are t_j = j·h/(N·step), j = 0…N/2.
    """

    step_nev: float = 0.05
    n_points: int = 2**17

    def __post_init__(self):
        if not self.step_nev > 0:
            raise ValueError(f"EnergyGrid.step_nev must be > 0, got {self.step_nev!r}")
        if self.n_points < 16 or self.n_points % 2:
            raise ValueError(f"EnergyGrid.n_points must be an even number >= 16, got {self.n_points!r}")

    @property
    def half_width_nev(self) -> float:
        """Largest |δ| at which the functional can be evaluated, neV."""
        return 0.5 * self.n_points * self.step_nev

    def energies_fft_order(self) -> np.ndarray:
        """E_n in FFT order, shape (N,)."""
        return np.fft.fftfreq(self.n_points, d=1.0 / (self.n_points * self.step_nev))

    def energies_sorted(self) -> np.ndarray:
        """E_n ascending (−N/2…N/2−1 steps), shape (N,)."""
        return (np.arange(self.n_points) - self.n_points // 2) * self.step_nev

    def times_ns(self) -> np.ndarray:
        """Real-FFT times t_j = j·h/(N·step), ns, shape (N/2 + 1,)."""
        return np.arange(self.n_points // 2 + 1) * H_NEV_NS / (self.n_points * self.step_nev)


def _absorption_rfft(analyser: Analyser, grid: EnergyGrid) -> np.ndarray:
    """Real FFT of the analyser absorption a(E_n) sampled in FFT order, shape (N/2 + 1,)."""
    return np.fft.rfft(analyser.absorption(grid.energies_fft_order()))


def _curve_from_transform(spectrum_ft: np.ndarray, absorption_ft: np.ndarray) -> np.ndarray:
    """𝒯 on the sorted grid from ρ̂(t_j) and rfft(a): 𝒯 = 1 − irfft(ρ̂·conj(â)), fft-shifted."""
    correlation = np.fft.irfft(spectrum_ft * np.conj(absorption_ft), n=2 * (absorption_ft.shape[-1] - 1))
    return 1.0 - np.fft.fftshift(correlation, axes=-1)


def spectrum_transform_from_samples(density_sorted: np.ndarray, grid: EnergyGrid) -> np.ndarray:
    """Time transform ρ̂(t_j) of a spectrum sampled on ``grid.energies_sorted()`` (1/neV).

    Use it for spectra without a closed-form transform; :class:`SourceSpectrum` has one.
    Returns complex array (N/2 + 1,) normalised so that ρ̂(0) = ∫ρ dE (Riemann sum).
    """
    density_sorted = np.asarray(density_sorted, dtype=np.float64)
    if density_sorted.shape != (grid.n_points,):
        raise ValueError(
            f"density_sorted must have shape ({grid.n_points},) to match the EnergyGrid, got {density_sorted.shape}"
        )
    return np.fft.rfft(np.fft.ifftshift(density_sorted)) * grid.step_nev


def transmission_curve(
    spectrum_ft: np.ndarray, analyser: Analyser = Analyser(), grid: EnergyGrid = EnergyGrid()
) -> tuple[np.ndarray, np.ndarray]:
    """Transmission functional ``𝒯[ρ](δ) = ∫ρ(E)·T_A(E − δ) dE`` on the whole fine grid
    (docs/physics.md#forward-model).

    ``spectrum_ft``: ρ̂ at ``grid.times_ns()`` (shape (N/2+1,), or (..., N/2+1) for several
    spectra at once), e.g. ``source.time_transform(grid.times_ns())``.  Evaluated as
    1 − (ρ ⋆ a)(δ) by FFT correlation, which is exact up to the ±N·step/2 periodicity.
    Returns (δ ascending, shape (N,); 𝒯, shape (..., N)).
    """
    spectrum_ft = np.asarray(spectrum_ft)
    if spectrum_ft.shape[-1] != grid.n_points // 2 + 1:
        raise ValueError(
            f"spectrum_ft must have last axis {grid.n_points // 2 + 1} (grid.times_ns()), got {spectrum_ft.shape}"
        )
    return grid.energies_sorted(), _curve_from_transform(spectrum_ft, _absorption_rfft(analyser, grid))


def _check_in_window(delta: np.ndarray, grid: EnergyGrid) -> None:
    limit = grid.half_width_nev * 0.9
    worst = float(np.max(np.abs(delta))) if np.size(delta) else 0.0
    if worst > limit:
        raise ValueError(
            f"Doppler shifts up to {worst:.1f} neV exceed the energy grid window ±{limit:.1f} neV; "
            "use a larger EnergyGrid.n_points or step_nev"
        )


def transmission_functional(
    delta_nev: np.ndarray,
    source: SourceSpectrum = SourceSpectrum(),
    analyser: Analyser = Analyser(),
    grid: EnergyGrid = EnergyGrid(),
    isf: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """``𝒯[ρ_src ∗ S](δ)`` at the shifts ``delta_nev`` (any shape), interpolated from the fine grid.

    ``isf``: optional normalised intermediate scattering function φ(t) (φ(0) = 1, t in ns) of a
    unit-area line S(E) that broadens the source, e.g. ``relaxation_isf(100.0)``; ρ_src ∗ S has
    the transform ρ̂_src(t)·φ(t).  Without it, 𝒯[ρ_src].
    """
    delta = np.asarray(delta_nev, dtype=np.float64)
    _check_in_window(delta, grid)
    times = grid.times_ns()
    spectrum_ft = source.time_transform(times)
    if isf is not None:
        spectrum_ft = spectrum_ft * isf(times)
    energies, curve = transmission_curve(spectrum_ft, analyser, grid)
    return np.interp(delta, energies, curve)


def forward_transmission(
    velocity: np.ndarray,
    source: SourceSpectrum = SourceSpectrum(),
    analyser: Analyser = Analyser(),
    grid: EnergyGrid = EnergyGrid(),
    doppler: float | np.ndarray = 1.0,
) -> np.ndarray:
    """``T₀(f) = 𝒯[ρ_src](κ·v_f·g)``: transmission of the elastic (direct or air-scattered) beam.

    ``velocity`` (n_frames,) in mm/s; ``doppler`` g (scalar, or shape (n_nodes,) for several
    angles).  Returns (n_frames,) for scalar g, else (n_frames, n_nodes).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    g = np.asarray(doppler, dtype=np.float64)
    delta = KAPPA_NEV_PER_MM_S * (velocity[:, None] * g[None, :] if g.ndim else velocity * g)
    return transmission_functional(delta, source, analyser, grid)


def doppler_factor(two_theta: np.ndarray, model: str = "cos2theta") -> np.ndarray:
    """g(2θ): ``"cos2theta"`` → cos 2θ (analyser moves along the beam), ``"none"`` → 1 [I]."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    if model == "cos2theta":
        return np.cos(two_theta)
    if model == "none":
        return np.ones_like(two_theta)
    raise ValueError(f"doppler_angle_model must be 'cos2theta' or 'none', got {model!r}")


def linewidth_from_tau(tau_ns: np.ndarray) -> np.ndarray:
    """Quasi-elastic Lorentzian FWHM Γ_q = 2ħ/τ in neV (τ in ns)."""
    return 2.0 * HBAR_NEV_NS / np.asarray(tau_ns, dtype=np.float64)


def tau_power_law(q: np.ndarray, tau0_ns: float = 100.0, q0: float = 12.0, exponent: float = 2.0) -> np.ndarray:
    """τ_q = τ₀·(q/q₀)^−n in ns (q in nm⁻¹); n = 2 for diffusion."""
    q = np.asarray(q, dtype=np.float64)
    if np.any(q <= 0):
        raise ValueError("tau_power_law needs q > 0 nm⁻¹")
    return float(tau0_ns) * (q / float(q0)) ** (-float(exponent))


def isf_truth(t_ns: np.ndarray, f_q: float | np.ndarray, tau_ns: float | np.ndarray, beta: float = 1.0) -> np.ndarray:
    """Ground-truth ISF F(q,t)/S(q) = f_q·exp(−(t/τ)^β) for t ≥ 0 (broadcasts)."""
    t = np.abs(np.asarray(t_ns, dtype=np.float64))
    return np.asarray(f_q) * np.exp(-((t / np.asarray(tau_ns, dtype=np.float64)) ** float(beta)))


def relaxation_isf(tau_ns: float, beta: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """φ(t) = exp(−(|t|/τ)^β) as a callable of t (ns); β = 1 is the Lorentzian of FWHM 2ħ/τ."""
    if not tau_ns > 0:
        raise ValueError(f"tau must be > 0 ns, got {tau_ns!r}")
    if not 0 < beta <= 2:
        raise ValueError(f"beta (KWW stretching) must be in (0, 2], got {beta!r}")
    return lambda t: isf_truth(t, 1.0, tau_ns, beta)


def quasielastic_transmission(
    velocity: np.ndarray,
    f_q: float | np.ndarray,
    tau_ns: float | np.ndarray,
    beta: float = 1.0,
    doppler: float | np.ndarray = 1.0,
    source: SourceSpectrum = SourceSpectrum(),
    analyser: Analyser = Analyser(),
    grid: EnergyGrid = EnergyGrid(),
    path_factor: float | np.ndarray = 1.0,
) -> np.ndarray:
    """``T_q(f) = (1 − f_q) + f_q·𝒯[ρ_src ∗ S_q](κ·v_f·g)`` for one or several q nodes
    (docs/physics.md#forward-model).

    S_q is the quasi-elastic line with ISF exp(−(t/τ_q)^β) (β = 1: Lorentzian of FWHM 2ħ/τ_q;
    β ≠ 1: KWW, converted numerically through the time domain).  The inelastic part (1 − f_q)
    is not absorbed.  ``f_q``, ``tau_ns``, ``doppler`` (g), ``path_factor`` (t_A multiplier,
    e.g. 1/cos 2θ) broadcast to shape (n_nodes,).  ``velocity`` (n_frames,) mm/s.
    Returns (n_frames,) when every parameter is scalar, else (n_frames, n_nodes).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    scalar = all(np.ndim(x) == 0 for x in (f_q, tau_ns, doppler, path_factor))
    f_q, tau, g, path = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (f_q, tau_ns, doppler, path_factor))
    f_q, tau, g, path = np.broadcast_arrays(f_q, tau, g, path)
    if np.any(tau <= 0):
        raise ValueError("tau_ns must be > 0 for every q node")
    if np.any((f_q < 0) | (f_q > 1)):
        raise ValueError("f_q must lie in [0, 1] for every q node")
    deltas = KAPPA_NEV_PER_MM_S * velocity[:, None] * g[None, :]
    _check_in_window(deltas, grid)
    times = grid.times_ns()
    source_ft = source.time_transform(times)
    energies = grid.energies_sorted()
    absorption_ft = {}
    out = np.empty(deltas.shape)
    for node in range(tau.size):
        key = float(path[node])
        if key not in absorption_ft:
            absorption_ft[key] = _absorption_rfft(analyser.with_path_factor(key), grid)
        spectrum_ft = source_ft * isf_truth(times, 1.0, tau[node], beta)
        curve = _curve_from_transform(spectrum_ft, absorption_ft[key])
        out[:, node] = (1.0 - f_q[node]) + f_q[node] * np.interp(deltas[:, node], energies, curve)
    return out[:, 0] if scalar else out


# --------------------------------------------------------------------------------------------
# Spectral-only model (docs/physics.md#forward-model, docs/synthetic.md#the-physics-without-files)
# --------------------------------------------------------------------------------------------
def spectral_only_counts(
    velocity: np.ndarray,
    q: float | np.ndarray,
    f_q: float | np.ndarray = 0.7,
    tau_ns: float | np.ndarray = 100.0,
    beta: float = 1.0,
    forward_counts: float = 2e5,
    qe_counts: float | np.ndarray = 2e4,
    flat_background: float = 0.0,
    doppler_angle_model: str = "cos2theta",
    wavelength_nm: float = WAVELENGTH_NM,
    source: SourceSpectrum = SourceSpectrum(),
    analyser: Analyser = Analyser(),
    grid: EnergyGrid = EnergyGrid(),
) -> tuple[np.ndarray, np.ndarray]:
    """Expected per-frame counts without images: forward box and q bins directly.

    μ_fwd(f) = forward_counts·T₀(f);  μ_q(f) = qe_counts·T_q(f) + flat_background·qe_counts.
    ``forward_counts``/``qe_counts`` are the off-resonance counts per frame (photons);
    ``flat_background`` is a non-sample, non-absorbed level as a fraction of ``qe_counts``
    (it biases the apparent f_q by 1/(1 + flat_background),
    docs/physics.md#from-the-two-dips-to-the-isf).  ``q`` (nm⁻¹) sets g(2θ_q) through λ.
    Draw noise with ``rng.poisson(μ)``.
    Returns (μ_fwd (n_frames,), μ_q (n_frames,) or (n_frames, n_q) for array q).
    """
    q_arr = np.asarray(q, dtype=np.float64)
    g = doppler_factor(two_theta_from_q(q_arr, wavelength_nm=wavelength_nm), doppler_angle_model)
    forward = float(forward_counts) * forward_transmission(velocity, source, analyser, grid)
    t_q = quasielastic_transmission(velocity, f_q, tau_ns, beta, g, source, analyser, grid)
    scale = np.asarray(qe_counts, dtype=np.float64)
    return forward, scale * (t_q + float(flat_background))


