"""Forward model of an E-QEGS measurement (PHYSICS.md §2): pure functions, numpy in, numpy out.

Nothing here reads or writes files; :mod:`eqegs_repo.simulate.synthetic` turns these functions into trees
on disk.  The inverse kernels (``eqegs_repo.steps``) use them in tests as the known ground truth.

Units everywhere: energy E, δ in neV; velocity v in mm/s; time t in ns; q in nm⁻¹; lengths in mm;
angles in radians unless a name ends in ``_deg``; pixel coordinates x = column (right),
y = row (down).

Public names (stable; other modules import them):

Constants
    ``KAPPA_NEV_PER_MM_S`` (κ = 48.075), ``GAMMA0_NEV`` (Γ₀ = 4.665), ``H_NEV_NS``
    (h = 4135.667696), ``HBAR_NEV_NS`` (ħ), ``WAVELENGTH_NM`` (λ = 0.086025), ``ENERGY_KEV``,
    ``PIXEL_SIZE_MM`` (0.0726).
Drive waveform (§2.1)
    ``frame_phase``, ``triangle_wave``, ``band_limited_triangle_wave``, ``sine_wave``,
    ``drive_velocity``, ``measured_waveform``.
Source and analyser (§2.2, §2.3)
    ``lorentzian``, ``SourceSpectrum`` (``.single_line()``, ``.multi_line()``, ``.density``,
    ``.time_transform``), ``source_preset``, ``Analyser`` (``.transmission``, ``.absorption``),
    ``EnergyGrid``.
Transmission functional (§2.3, §2.4)
    ``transmission_curve`` (𝒯 on the fine δ grid), ``transmission_functional`` (𝒯 at given δ),
    ``spectrum_transform_from_samples`` (time transform of any sampled spectrum),
    ``forward_transmission`` (T₀(f)), ``quasielastic_transmission`` (T_q(f), exponential or KWW,
    Doppler factor g(2θ)), ``doppler_factor``, ``relaxation_isf``, ``isf_truth``, ``tau_power_law``,
    ``linewidth_from_tau``.
Sample dynamics and scatterers (§2.4, §2.5)
    ``Dynamics`` (τ(q), f_q(q), β; ``.isf``), ``Scatterers`` (S(q), C(q)).
Spectral-only model (§2.5, §2.7)
    ``spectral_only_counts``.
Pixel geometry and scattering (§2.5)
    ``two_theta_from_radius``, ``q_from_two_theta``, ``two_theta_from_q``, ``radius_from_q``,
    ``PixelGeometry`` / ``pixel_geometry``, ``solid_angle``, ``polarisation_factor``,
    ``structure_factor``, ``air_scattering``, ``direct_beam``.
Image model and noise (§2.5)
    ``ImageModel`` (expected counts μ(f, i) of a sample or background run, per block of frames),
    ``detector_counts`` (Poisson + optional read noise).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import sparse

# --------------------------------------------------------------------------------------------
# Constants [C]
# --------------------------------------------------------------------------------------------
ENERGY_KEV = 14.4125
"""57Fe resonance energy E₀ in keV."""
KAPPA_NEV_PER_MM_S = 48.075
"""Doppler factor κ = E₀/c in neV per (mm/s)."""
GAMMA0_NEV = 4.665
"""Natural linewidth Γ₀ (FWHM) of the 14.4 keV level in neV."""
H_NEV_NS = 4135.667696
"""Planck constant h in neV·ns."""
HBAR_NEV_NS = H_NEV_NS / (2.0 * np.pi)
"""Reduced Planck constant ħ in neV·ns (≈ 658.212)."""
WAVELENGTH_NM = 0.086025
"""Wavelength λ = hc/E₀ of 14.4125 keV photons, nm."""
PIXEL_SIZE_MM = 0.0726
"""CITIUS pixel pitch, mm."""

# --------------------------------------------------------------------------------------------
# Drive waveform (§2.1)
# --------------------------------------------------------------------------------------------
WAVEFORMS = ("triangle", "band_limited_triangle", "sine")


def frame_phase(n_frames: int, phase0: float = 0.0) -> np.ndarray:
    """Phase φ_f = (f + ½)/N_f + φ₀ of each frame inside the velocity cycle.

    Returns float64 array of shape (n_frames,), in cycles (not wrapped into [0, 1)).
    """
    if int(n_frames) < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames!r}")
    return (np.arange(int(n_frames), dtype=np.float64) + 0.5) / int(n_frames) + float(phase0)


def triangle_wave(phase: np.ndarray, v_max: float) -> np.ndarray:
    """Constant-acceleration drive: v(φ) = V_max·(4·|(φ mod 1) − ½| − 1), mm/s.

    +V_max at φ = 0, −V_max at φ = ½.  ``phase`` in cycles, any shape.
    """
    return float(v_max) * (4.0 * np.abs(np.mod(phase, 1.0) - 0.5) - 1.0)


def band_limited_triangle_wave(phase: np.ndarray, v_max: float, n_harmonics: int = 12) -> np.ndarray:
    """Triangle with rounded turn-arounds: the first ``n_harmonics`` odd harmonics, mm/s.

    v(φ) = V_max·(8/π²)·Σ_{k odd ≤ 2K−1} cos(2πkφ)/k².  This is the Fourier series of
    :func:`triangle_wave` (same sign: +V_max at φ = 0); PHYSICS.md §2.1 writes it with
    cos(2πk(φ−½)), which for odd k only flips the sign.  Because the series is truncated, the
    extremes are slightly below V_max (0.983·V_max for K = 12).
    """
    if int(n_harmonics) < 1:
        raise ValueError(f"n_harmonics must be >= 1, got {n_harmonics!r}")
    phase = np.asarray(phase, dtype=np.float64)
    total = np.zeros_like(phase)
    for k in range(1, 2 * int(n_harmonics), 2):
        total += np.cos(2.0 * np.pi * k * phase) / k**2
    return float(v_max) * (8.0 / np.pi**2) * total


def sine_wave(phase: np.ndarray, v_max: float) -> np.ndarray:
    """Sinusoidal drive v(φ) = V_max·cos(2πφ), mm/s (φ already includes the phase offset φ₀)."""
    return float(v_max) * np.cos(2.0 * np.pi * np.asarray(phase, dtype=np.float64))


def drive_velocity(
    n_frames: int,
    waveform: str = "band_limited_triangle",
    v_max: float = 10.0,
    n_harmonics: int = 12,
    phase0: float = 0.0,
    offset: float = 0.0,
    nonlinearity: float = 0.0,
) -> np.ndarray:
    """True Doppler velocity v_f of every frame, mm/s, shape (n_frames,).

    ``waveform`` is one of ``WAVEFORMS``.  The shape v is first distorted by the mild
    nonlinearity v → v·(1 + ε·v/V_max) (ε = ``nonlinearity``), then the zero offset v₀
    (``offset``, mm/s) is added.
    """
    if waveform not in WAVEFORMS:
        raise ValueError(f"waveform must be one of {WAVEFORMS}, got {waveform!r}")
    if not v_max > 0:
        raise ValueError(f"v_max must be > 0 mm/s, got {v_max!r}")
    phase = frame_phase(n_frames, phase0)
    if waveform == "triangle":
        v = triangle_wave(phase, v_max)
    elif waveform == "sine":
        v = sine_wave(phase, v_max)
    else:
        v = band_limited_triangle_wave(phase, v_max, n_harmonics)
    return v * (1.0 + float(nonlinearity) * v / float(v_max)) + float(offset)


def measured_waveform(
    velocity: np.ndarray, gain: float, noise_sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """The recorded drive signal ("input velocity waveform"): v_f·gain + N(0, noise_sigma²).

    ``velocity`` in mm/s, shape (n_frames,); result float64 of the same shape, in the units of
    the recorder (mm/s when gain = 1).  Consumes ``velocity.size`` normal deviates of ``rng``.
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    return velocity * float(gain) + float(noise_sigma) * rng.standard_normal(velocity.shape)


# --------------------------------------------------------------------------------------------
# Lineshapes, source, analyser (§2.2, §2.3)
# --------------------------------------------------------------------------------------------
def lorentzian(energy: np.ndarray, fwhm: float, centre: float = 0.0) -> np.ndarray:
    """Unit-area Lorentzian 𝓛(E − centre; Γ) = (Γ/2π)/((E − centre)² + (Γ/2)²), 1/neV."""
    half = 0.5 * float(fwhm)
    return (half / np.pi) / ((np.asarray(energy, dtype=np.float64) - centre) ** 2 + half**2)


@dataclass(frozen=True)
class SourceSpectrum:
    """NBM source spectrum ρ_src(E) = Σ_j w_j 𝓛(E − κu_j; Γ_s), unit area (§2.2).

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
    """Single-line 57Fe analyser (§2.3): T_A(E) = exp(−t_A·ℓ(E)), ℓ peak-normalised Lorentzian.

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
    """Fine periodic energy grid used for the FFT correlation of §2.3.

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
    """Transmission functional 𝒯[ρ](δ) = ∫ρ(E)·T_A(E − δ) dE on the whole fine grid (§2.3).

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
    """𝒯[ρ_src ∗ S](δ) at the shifts ``delta_nev`` (any shape), interpolated from the fine grid.

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
    """T₀(f) = 𝒯[ρ_src](κ·v_f·g): transmission of the elastic (direct or air-scattered) beam.

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
    """T_q(f) = (1 − f_q) + f_q·𝒯[ρ_src ∗ S_q](κ·v_f·g) for one or several q nodes (§2.4).

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
# Spectral-only model (§2.5 "spectral-only" preset, §2.7)
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
    (it biases the apparent f_q by 1/(1 + flat_background), PHYSICS.md §1.4).  ``q`` (nm⁻¹)
    sets g(2θ_q) through λ.  Draw noise with ``rng.poisson(μ)``.
    Returns (μ_fwd (n_frames,), μ_q (n_frames,) or (n_frames, n_q) for array q).
    """
    q_arr = np.asarray(q, dtype=np.float64)
    g = doppler_factor(two_theta_from_q(q_arr, wavelength_nm), doppler_angle_model)
    forward = float(forward_counts) * forward_transmission(velocity, source, analyser, grid)
    t_q = quasielastic_transmission(velocity, f_q, tau_ns, beta, g, source, analyser, grid)
    scale = np.asarray(qe_counts, dtype=np.float64)
    return forward, scale * (t_q + float(flat_background))


# --------------------------------------------------------------------------------------------
# Geometry and scattering (§2.5)
# --------------------------------------------------------------------------------------------
def two_theta_from_radius(r_px: np.ndarray, pixel_mm: float, distance_mm: float) -> np.ndarray:
    """Scattering angle 2θ = atan(r·p/L), rad (flat detector normal to the beam)."""
    return np.arctan(np.asarray(r_px, dtype=np.float64) * float(pixel_mm) / float(distance_mm))


def q_from_two_theta(two_theta: np.ndarray, wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """q = (4π/λ)·sin θ, nm⁻¹."""
    return 4.0 * np.pi / float(wavelength_nm) * np.sin(0.5 * np.asarray(two_theta, dtype=np.float64))


def two_theta_from_q(q: np.ndarray, wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """Inverse of :func:`q_from_two_theta`: 2θ = 2·asin(qλ/4π), rad."""
    s = np.asarray(q, dtype=np.float64) * float(wavelength_nm) / (4.0 * np.pi)
    if np.any(np.abs(s) > 1):
        raise ValueError(f"q beyond 4π/λ = {4 * np.pi / wavelength_nm:.1f} nm⁻¹ is not reachable")
    return 2.0 * np.arcsin(s)


def radius_from_q(q: np.ndarray, pixel_mm: float, distance_mm: float, wavelength_nm: float = WAVELENGTH_NM) -> np.ndarray:
    """Radius in pixels at which q (nm⁻¹) falls: r = L·tan 2θ / p."""
    return float(distance_mm) * np.tan(two_theta_from_q(q, wavelength_nm)) / float(pixel_mm)


def solid_angle(two_theta: np.ndarray, pixel_mm: float, distance_mm: float) -> np.ndarray:
    """Pixel solid angle ΔΩ = (p/L)²·cos³2θ, sr (flat detector normal to the beam)."""
    return (float(pixel_mm) / float(distance_mm)) ** 2 * np.cos(np.asarray(two_theta, dtype=np.float64)) ** 3


def polarisation_factor(two_theta: np.ndarray, phi_deg: np.ndarray, polarisation_deg: float | None) -> np.ndarray:
    """P = 1 − sin²2θ·cos²(φ − φ_pol) for a beam linearly polarised along φ_pol; 1 when None."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    if polarisation_deg is None:
        return np.ones_like(two_theta)
    return 1.0 - np.sin(two_theta) ** 2 * np.cos(np.deg2rad(np.asarray(phi_deg) - float(polarisation_deg))) ** 2


def structure_factor(q: np.ndarray, s0: float = 20.0, amplitude: float = 3.0, q_peak: float = 14.0, width: float = 2.0) -> np.ndarray:
    """S(q) = s₀·[1 + A·exp(−(q − q_p)²/2w²)] (molecular-liquid first peak), arbitrary units."""
    q = np.asarray(q, dtype=np.float64)
    return float(s0) * (1.0 + float(amplitude) * np.exp(-((q - float(q_peak)) ** 2) / (2.0 * float(width) ** 2)))


def air_scattering(q: np.ndarray, c0: float = 5.0, kappa_c: float = 1.0) -> np.ndarray:
    """Air/cell scattering C(q) = c₀/(q² + κ_c²), elastic, arbitrary units (same as S)."""
    q = np.asarray(q, dtype=np.float64)
    return float(c0) / (q**2 + float(kappa_c) ** 2)


def direct_beam(r_px: np.ndarray, n_db: float, sigma_px: float) -> np.ndarray:
    """Direct-beam spot D = N_db/(2πσ²)·exp(−r²/2σ²): N_db integrated over the image (per unit flux)."""
    r = np.asarray(r_px, dtype=np.float64)
    if not sigma_px > 0:
        raise ValueError(f"direct-beam sigma must be > 0 px, got {sigma_px!r}")
    return float(n_db) / (2.0 * np.pi * sigma_px**2) * np.exp(-(r**2) / (2.0 * sigma_px**2))


@dataclass(frozen=True)
class PixelGeometry:
    """Per-pixel geometry of a flat detector normal to the beam (§2.5); arrays of shape (H, W).

    ``x``/``y`` are column/row indices, ``r_px`` the distance to the beam centre (x_c, y_c) in
    pixels, ``two_theta`` in rad, ``q`` in nm⁻¹, ``phi_deg`` = atan2(y − y_c, x − x_c) mod 360
    (0° = +x, clockwise on screen), ``solid_angle`` ΔΩ in sr.
    """

    shape: tuple[int, int]
    centre_xy: tuple[float, float]
    distance_mm: float
    pixel_mm: float
    wavelength_nm: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    r_px: np.ndarray = field(repr=False)
    two_theta: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    phi_deg: np.ndarray = field(repr=False)
    solid_angle: np.ndarray = field(repr=False)


def pixel_geometry(
    shape: tuple[int, int],
    centre_xy: tuple[float, float],
    distance_mm: float = 100.0,
    pixel_mm: float = PIXEL_SIZE_MM,
    wavelength_nm: float = WAVELENGTH_NM,
) -> PixelGeometry:
    """Compute r, 2θ, q, φ and ΔΩ for every pixel of an image of ``shape`` = (rows H, cols W)."""
    rows, cols = (int(n) for n in shape)
    if rows < 1 or cols < 1:
        raise ValueError(f"image shape must be positive (rows, cols), got {shape!r}")
    if not (distance_mm > 0 and pixel_mm > 0 and wavelength_nm > 0):
        raise ValueError(
            f"distance_mm, pixel_mm and wavelength_nm must be > 0, got {distance_mm!r}, {pixel_mm!r}, {wavelength_nm!r}"
        )
    x_c, y_c = (float(c) for c in centre_xy)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    r = np.hypot(x - x_c, y - y_c)
    two_theta = two_theta_from_radius(r, pixel_mm, distance_mm)
    return PixelGeometry(
        shape=(rows, cols),
        centre_xy=(x_c, y_c),
        distance_mm=float(distance_mm),
        pixel_mm=float(pixel_mm),
        wavelength_nm=float(wavelength_nm),
        x=x,
        y=y,
        r_px=r,
        two_theta=two_theta,
        q=q_from_two_theta(two_theta, wavelength_nm),
        phi_deg=np.mod(np.rad2deg(np.arctan2(y - y_c, x - x_c)), 360.0),
        solid_angle=solid_angle(two_theta, pixel_mm, distance_mm),
    )


@dataclass(frozen=True)
class Dynamics:
    """Sample dynamics (§2.4): τ(q), f_q(q) and the KWW exponent β.

    τ_q = τ₀·(q/q₀)^−n (``tau0_ns``, ``q0``, ``exponent``) unless ``tau_table`` gives
    ((q, τ ns), ...) pairs, interpolated linearly in log q – log τ (held constant outside).
    f_q = ``f_q`` when ``f_q_width`` is None, else the Debye–Waller-like Gaussian
    f_q·exp(−q²/2w²).  ``beta`` = 1 is a simple exponential (Lorentzian in energy).
    """

    tau0_ns: float = 100.0
    q0: float = 12.0
    exponent: float = 2.0
    f_q: float = 0.7
    f_q_width: float | None = None
    beta: float = 1.0
    tau_table: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self):
        if not self.tau0_ns > 0 or not self.q0 > 0:
            raise ValueError(f"Dynamics.tau0_ns and q0 must be > 0, got {self.tau0_ns!r}, {self.q0!r}")
        if not 0 <= self.f_q <= 1:
            raise ValueError(f"Dynamics.f_q must lie in [0, 1], got {self.f_q!r}")
        if self.f_q_width is not None and not self.f_q_width > 0:
            raise ValueError(f"Dynamics.f_q_width must be > 0 nm⁻¹ or None, got {self.f_q_width!r}")
        if not 0 < self.beta <= 2:
            raise ValueError(f"Dynamics.beta must lie in (0, 2], got {self.beta!r}")
        if self.tau_table is not None:
            table = tuple((float(q), float(t)) for q, t in self.tau_table)
            qs = [q for q, _ in table]
            if len(table) < 2 or any(q <= 0 or t <= 0 for q, t in table) or qs != sorted(set(qs)):
                raise ValueError(
                    "Dynamics.tau_table must hold >= 2 (q > 0, tau > 0) pairs with strictly increasing q, "
                    f"got {self.tau_table!r}"
                )
            object.__setattr__(self, "tau_table", table)

    def tau(self, q: np.ndarray) -> np.ndarray:
        """τ(q) in ns (q in nm⁻¹, > 0)."""
        q = np.asarray(q, dtype=np.float64)
        if self.tau_table is None:
            return tau_power_law(q, self.tau0_ns, self.q0, self.exponent)
        table = np.array(self.tau_table)
        if np.any(q <= 0):
            raise ValueError("Dynamics.tau needs q > 0 nm⁻¹")
        return np.exp(np.interp(np.log(q), np.log(table[:, 0]), np.log(table[:, 1])))

    def nonergodicity(self, q: np.ndarray) -> np.ndarray:
        """f_q(q), dimensionless, same shape as q."""
        q = np.asarray(q, dtype=np.float64)
        if self.f_q_width is None:
            return np.full(q.shape, float(self.f_q))
        return float(self.f_q) * np.exp(-(q**2) / (2.0 * self.f_q_width**2))

    def isf(self, q: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Ground truth F(q,t)/S(q) = f_q·exp(−(t/τ_q)^β); broadcasts q against t."""
        return isf_truth(t_ns, self.nonergodicity(q), self.tau(q), self.beta)

    def to_mapping(self) -> dict:
        """JSON-friendly parameters."""
        return {
            "tau0_ns": self.tau0_ns,
            "q0": self.q0,
            "exponent": self.exponent,
            "f_q": self.f_q,
            "f_q_width": self.f_q_width,
            "beta": self.beta,
            "tau_table": None if self.tau_table is None else [list(p) for p in self.tau_table],
        }


@dataclass(frozen=True)
class Scatterers:
    """Static scattering strengths (§2.5): S(q) = s₀[1 + A·exp(−(q−q_p)²/2w²)] and the
    air/cell term C(q) = c₀/(q² + κ_c²), in the same arbitrary units (counts per unit flux
    per sr)."""

    s0: float = 20.0
    amplitude: float = 3.0
    q_peak: float = 14.0
    width: float = 2.0
    c0: float = 5.0
    kappa_c: float = 1.0

    def structure(self, q: np.ndarray) -> np.ndarray:
        """S(q)."""
        return structure_factor(q, self.s0, self.amplitude, self.q_peak, self.width)

    def air(self, q: np.ndarray) -> np.ndarray:
        """C(q)."""
        return air_scattering(q, self.c0, self.kappa_c)


RUN_KINDS = ("sample", "background")


class ImageModel:
    """Expected counts μ(f, i) of one run on the detector canvas (§2.5), evaluated per frame block.

    Sample run:      μ_s = Φ_f·[τ_s D T₀(f) + ΔΩ P S(q) T_q(f) + ΔΩ C(q) T₀(κ v_f g)] + d
    Background run:  μ_b = Φ_f·[D T₀(f) + ΔΩ C(q) T₀(κ v_f g)] + d      ("scattering noise")

    Φ_f = ``flux``·(1 + ``flux_drift``·(φ_f − ½)) with φ_f the frame phase (a linear change of the
    flux over the cycle; 0 = constant).  D is the direct beam with ``direct_beam_counts`` N_db
    (per unit flux) and width ``beam_sigma_px``; τ_s is ``sample_transmission``; d is ``dark``
    (counts per frame and pixel).  P is the polarisation factor (1 when ``polarisation_deg`` is
    None).  With ``thickness_path_factor`` the scattered photons see t_A/cos 2θ.

    T_q and the angle-dependent T₀ are tabulated on ``n_q_nodes`` q nodes spanning the image and
    interpolated linearly in q per pixel (error far below the Poisson noise for ≥ 128 nodes).
    """

    def __init__(
        self,
        velocity: np.ndarray,
        geometry: PixelGeometry,
        run: str = "sample",
        dynamics: Dynamics = Dynamics(),
        scatterers: Scatterers = Scatterers(),
        source: SourceSpectrum = SourceSpectrum(),
        analyser: Analyser = Analyser(),
        grid: EnergyGrid = EnergyGrid(),
        doppler_angle_model: str = "cos2theta",
        thickness_path_factor: bool = False,
        flux: float = 1.0e4,
        flux_drift: float = 0.0,
        direct_beam_counts: float = 20.0,
        beam_sigma_px: float = 1.2,
        sample_transmission: float = 1.0,
        dark: float = 0.5,
        polarisation_deg: float | None = None,
        n_q_nodes: int = 256,
    ):
        if run not in RUN_KINDS:
            raise ValueError(f"run must be one of {RUN_KINDS}, got {run!r}")
        if not flux > 0 or dark < 0 or direct_beam_counts < 0:
            raise ValueError(
                f"flux must be > 0, dark and direct_beam_counts >= 0; got {flux!r}, {dark!r}, {direct_beam_counts!r}"
            )
        if not 0 < sample_transmission <= 1:
            raise ValueError(f"sample_transmission must lie in (0, 1], got {sample_transmission!r}")
        if int(n_q_nodes) < 2:
            raise ValueError(f"n_q_nodes must be >= 2, got {n_q_nodes!r}")
        self.velocity = np.asarray(velocity, dtype=np.float64)
        if self.velocity.ndim != 1 or self.velocity.size < 1:
            raise ValueError(f"velocity must be a non-empty 1-D array (n_frames,), got shape {self.velocity.shape}")
        self.geometry = geometry
        self.run = run
        n_frames = self.velocity.size
        self.flux_per_frame = float(flux) * (1.0 + float(flux_drift) * (frame_phase(n_frames) - 0.5))
        self.dark = float(dark)

        q = geometry.q.ravel()
        q_lo = max(float(q.min()), 1e-3)
        q_hi = max(float(q.max()), q_lo * 1.001)
        self.q_nodes = np.linspace(q_lo, q_hi, int(n_q_nodes))
        n_nodes = self.q_nodes.size
        position = np.clip((q - q_lo) / (self.q_nodes[1] - q_lo), 0.0, n_nodes - 1.0)
        lower = np.minimum(position.astype(np.intp), n_nodes - 2)
        upper_weight = position - lower

        node_two_theta = two_theta_from_q(self.q_nodes, geometry.wavelength_nm)
        node_g = doppler_factor(node_two_theta, doppler_angle_model)
        self.t0 = forward_transmission(self.velocity, source, analyser, grid)
        self.t0_nodes = forward_transmission(self.velocity, source, analyser, grid, doppler=node_g)
        self._direct = direct_beam(geometry.r_px.ravel(), direct_beam_counts, beam_sigma_px)
        amplitudes = [(geometry.solid_angle * scatterers.air(geometry.q)).ravel()]
        if run == "sample":
            self._direct = self._direct * float(sample_transmission)
            path = 1.0 / np.cos(node_two_theta) if thickness_path_factor else 1.0
            self.tq_nodes = quasielastic_transmission(
                self.velocity,
                dynamics.nonergodicity(self.q_nodes),
                dynamics.tau(self.q_nodes),
                dynamics.beta,
                node_g,
                source,
                analyser,
                grid,
                path,
            )
            polar = polarisation_factor(geometry.two_theta, geometry.phi_deg, polarisation_deg)
            amplitudes.append((geometry.solid_angle * polar * scatterers.structure(geometry.q)).ravel())
            self._node_table = np.concatenate([self.t0_nodes, self.tq_nodes], axis=1)
        else:
            self.tq_nodes = None
            self._node_table = self.t0_nodes
        # Sparse (n_terms·n_nodes, n_pixels) matrix: amplitude × linear-interpolation weight, so
        # that node_table[frames] @ matrix gives the angle-dependent terms on every pixel.
        pixels = np.arange(q.size)
        rows, cols, values = [], [], []
        for term, amplitude in enumerate(amplitudes):
            offset = term * n_nodes
            rows += [offset + lower, offset + lower + 1]
            cols += [pixels, pixels]
            values += [amplitude * (1.0 - upper_weight), amplitude * upper_weight]
        self._interpolation = sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(amplitudes) * n_nodes, q.size),
        )

    @property
    def n_frames(self) -> int:
        return self.velocity.size

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (rows H, cols W)."""
        return self.geometry.shape

    def expected(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """μ for frames [start, stop): float64 array (stop − start, H, W), counts per frame."""
        stop = self.n_frames if stop is None else int(stop)
        if not 0 <= start < stop <= self.n_frames:
            raise ValueError(f"frame range [{start}, {stop}) outside 0..{self.n_frames}")
        frames = slice(int(start), stop)
        mu = np.asarray(self._interpolation.T @ self._node_table[frames].T).T
        mu += self._direct[None, :] * self.t0[frames, None]
        mu *= self.flux_per_frame[frames, None]
        mu += self.dark
        return mu.reshape((stop - start,) + self.shape)


def detector_counts(
    mu: np.ndarray, rng: np.random.Generator, read_noise: float = 0.0, n_trains: int = 1
) -> np.ndarray:
    """Noisy counts for expected counts ``mu`` (any shape): Poisson(μ) photons, plus optional
    Gaussian read noise of σ = read_noise·√n_trains, rounded and clipped at 0 (§2.5).

    Returns float64 integer-valued counts of the same shape.  Consumes ``rng`` in C order, so a
    stack drawn in consecutive frame blocks equals one draw of the whole stack.
    """
    counts = rng.poisson(mu).astype(np.float64)
    if read_noise > 0:
        counts += float(read_noise) * np.sqrt(float(n_trains)) * rng.standard_normal(counts.shape)
        np.clip(np.rint(counts, out=counts), 0.0, None, out=counts)
    return counts
