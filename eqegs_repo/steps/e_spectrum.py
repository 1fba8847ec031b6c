"""E-spectrum and ISF kernels (PHYSICS.md §3.3): frames → energy spectra → ISF with errors and fit.

Pure functions, numpy in, numpy out, no I/O.  Units: velocity v in mm/s, energy E in neV, time t
in ns, q in nm⁻¹, angles 2θ in rad.  Per-frame inputs have the frames axis first: the forward
spectrum (frames,), the background-subtracted q-bin sums (frames, bins) of
:class:`~eqegs_repo.steps.q_integration.RadialIntegrator`, and their variances.

The chain, in two calls:

1. :func:`energy_spectra` drops the first ``start_cut_frames``, applies the turn-around cut,
   puts the forward spectrum (E = κ(v − v₀)) and every q bin of the range (E = κ(v − v₀)·g(2θ_b))
   on one common energy grid, by averaging frames in each bin (the app's way) or by interpolating
   each sweep onto the grid, and sums the q bins into the quasi-elastic (QE) spectrum.
2. :func:`isf_from_spectra` fits the wing background (flat or sloped; ``relax_bg_coeff`` on the
   QE only), normalises to absorption spectra a = y/b, inverts s = 1 − a, Fourier transforms
   ŝ(t_m) = ΔE·Σ_k s_k e^{−2πikm/K}, forms F = ŝ_q/ŝ₀, estimates its errors from ``n_mc``
   Monte-Carlo resamples (all at once, FFT along an axis), keeps t > 0 with σ ≤
   ``isf_error_threshold`` and fits f_q·exp(−(t/τ)^β).

The velocity and angle calibrations (:func:`calibrated_velocity`, :func:`angle_factor`) are the
built-in kinds of the ``velocity_calibration`` / ``angle_calibration`` records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import optimize

from eqegs_repo.errors import BadInput
from eqegs_repo.steps.physics import H_NEV_NS, KAPPA_NEV_PER_MM_S

VELOCITY_KINDS = ("triangle", "sine", "poly", "table")
ANGLE_KINDS = ("none", "cos2theta", "table")
BINNING_MODES = ("average", "interpolate")
MC_NOISE = ("poisson", "gaussian")
ISF_NORMALISATIONS = ("absolute", "unit")
FIT_MODELS = ("exp", "kww", "none")


# ------------------------------------------------------------------------------------------------
# Calibrations and frame selection (§3.3.1–4)
# ------------------------------------------------------------------------------------------------
def calibrated_velocity(
    kind: str,
    n_frames: int,
    measured: np.ndarray | None = None,
    v_max: float = 10.0,
    phase_frames: float = 0.0,
    period_frames: float | None = None,
    poly_coeffs: Sequence[float] = (),
    table_mm_s: Sequence[float] = (),
) -> np.ndarray:
    """Doppler velocity v_f of every frame, mm/s, shape (n_frames,) (built-in calibration kinds).

    With φ_f = (f + ½ − ``phase_frames``)/``period_frames`` (period None → ``n_frames``):
    ``"triangle"``: v = v_max·(4|(φ mod 1) − ½| − 1) (+v_max at φ = 0, −v_max at φ = ½);
    ``"sine"``: v = v_max·cos 2πφ; ``"poly"``: v = Σ_k c_k·w_f^k on the ``measured`` waveform w
    (``poly_coeffs`` lowest power first); ``"table"``: ``table_mm_s`` holds v_f for every frame.
    (The forward model's phase φ₀ corresponds to ``phase_frames`` = −φ₀·n_frames.)  The velocity
    offset v₀ is applied later, in :func:`energy_from_velocity`.
    """
    n_frames = int(n_frames)
    if kind in ("triangle", "sine"):
        if not float(v_max) > 0:
            raise BadInput(f"velocity calibration v_max must be > 0 mm/s, got {v_max!r}")
        period = float(n_frames if period_frames is None else period_frames)
        if not period > 0:
            raise BadInput(f"velocity calibration period_frames must be > 0, got {period_frames!r}")
        phase = (np.arange(n_frames) + 0.5 - float(phase_frames)) / period
        if kind == "triangle":
            return float(v_max) * (4.0 * np.abs(np.mod(phase, 1.0) - 0.5) - 1.0)
        return float(v_max) * np.cos(2.0 * np.pi * phase)
    if kind == "poly":
        if measured is None or np.shape(measured) != (n_frames,):
            raise BadInput(f"velocity calibration 'poly' needs the measured waveform of shape ({n_frames},), "
                           f"got {None if measured is None else np.shape(measured)}")
        if len(poly_coeffs) == 0:
            raise BadInput("velocity calibration 'poly' needs poly_coeffs (lowest power first), got none")
        return np.polynomial.polynomial.polyval(np.asarray(measured, dtype=np.float64), np.asarray(poly_coeffs, dtype=np.float64))
    if kind == "table":
        table = np.asarray(table_mm_s, dtype=np.float64)
        if table.shape != (n_frames,):
            raise BadInput(f"velocity calibration 'table' needs table_mm_s with one velocity per frame "
                           f"({n_frames}), got {table.size}")
        return table.copy()
    raise BadInput(f"velocity calibration kind must be one of {VELOCITY_KINDS}, got {kind!r}")


def angle_factor(kind: str, two_theta: np.ndarray, table: Sequence[Sequence[float]] = ()) -> np.ndarray:
    """Energy-scale factor g(2θ) per q bin (``angle_calibration``): ``"none"`` → 1,
    ``"cos2theta"`` → cos 2θ, ``"table"`` → linear interpolation of [2θ in deg, g] pairs.
    ``two_theta`` in rad, any shape."""
    two_theta = np.asarray(two_theta, dtype=np.float64)
    if kind == "none":
        return np.ones_like(two_theta)
    if kind == "cos2theta":
        return np.cos(two_theta)
    if kind == "table":
        pairs = np.asarray(table, dtype=np.float64)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.shape[0] < 1:
            raise BadInput(f"angle calibration 'table' needs [two_theta_deg, factor] pairs, got {table!r}")
        order = np.argsort(pairs[:, 0])
        return np.interp(np.degrees(two_theta), pairs[order, 0], pairs[order, 1])
    raise BadInput(f"angle calibration kind must be one of {ANGLE_KINDS}, got {kind!r}")


def energy_from_velocity(velocity: np.ndarray, v0_offset: float = 0.0, g: float | np.ndarray = 1.0) -> np.ndarray:
    """Linear transform to energy: E = κ·(v − v₀)·g in neV (κ = 48.075 neV per mm/s).

    ``velocity`` (frames,) mm/s; scalar g gives (frames,), g of shape (bins,) gives (frames, bins).
    """
    shifted = KAPPA_NEV_PER_MM_S * (np.asarray(velocity, dtype=np.float64) - float(v0_offset))
    g = np.asarray(g, dtype=np.float64)
    return shifted * g if g.ndim == 0 else shifted[:, None] * g[None, :]


def sweep_labels(velocity: np.ndarray) -> np.ndarray:
    """Index of the monotonic sweep each frame belongs to, (frames,) int.

    Turning points are the frames of largest |v| between successive crossings of +½·max|v| and
    −½·max|v| (a hysteresis), so noise on a measured waveform cannot create false sweeps.
    """
    return np.searchsorted(turning_points(velocity), np.arange(np.size(velocity)), side="right")


def turning_points(velocity: np.ndarray) -> np.ndarray:
    """Frame indices of the velocity extrema (see :func:`sweep_labels`), increasing."""
    v = np.asarray(velocity, dtype=np.float64)
    level = 0.5 * np.max(np.abs(v))
    side = np.where(v > level, 1, np.where(v < -level, -1, 0))
    marked = np.flatnonzero(side)
    # hysteresis: every frame belongs to the side (+ or −) it last crossed into
    state = side[marked][np.clip(np.searchsorted(marked, np.arange(v.size), side="right") - 1, 0, None)]
    bounds = np.r_[0, np.flatnonzero(np.diff(state)) + 1, v.size]
    return np.array([a + int(np.argmax(np.abs(v[a:b]))) for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.int64)


def frame_selection(
    velocity: np.ndarray, start_cut_frames: int = 5, turnaround_cut_frac: float = 0.9, turnaround_guard_frames: int = 0
) -> np.ndarray:
    """Frames used for the spectra, (frames,) bool: not among the first ``start_cut_frames``
    (START_CUT_FRAMES), |v| ≤ ``turnaround_cut_frac``·max|v|, and more than
    ``turnaround_guard_frames`` frames away from every velocity extremum."""
    v = np.asarray(velocity, dtype=np.float64)
    n = v.size
    if not 0 <= int(start_cut_frames) < n:
        raise BadInput(f"start_cut_frames must be in [0, {n}) for {n} frames, got {start_cut_frames!r}")
    if not 0.0 < float(turnaround_cut_frac) <= 1.0:
        raise BadInput(f"turnaround_cut_frac must be in (0, 1], got {turnaround_cut_frac!r}")
    if int(turnaround_guard_frames) < 0:
        raise BadInput(f"turnaround_guard_frames must be >= 0, got {turnaround_guard_frames!r}")
    keep = np.abs(v) <= float(turnaround_cut_frac) * np.max(np.abs(v))
    keep[: int(start_cut_frames)] = False
    guard = int(turnaround_guard_frames)
    for turn in turning_points(v) if guard else ():
        keep[max(turn - guard, 0): turn + guard + 1] = False
    return keep


# ------------------------------------------------------------------------------------------------
# Common grid and binning (§3.3.5–6)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpectrumGrid:
    """Common energy grid: K bin centres E_k = (k − (K−1)/2)·ΔE, symmetric about 0, neV."""

    step_nev: float
    n_points: int

    @property
    def centres(self) -> np.ndarray:
        """Bin centres E_k, neV, (K,)."""
        return (np.arange(self.n_points) - 0.5 * (self.n_points - 1)) * self.step_nev

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, neV, (K + 1,)."""
        return (np.arange(self.n_points + 1) - 0.5 * self.n_points) * self.step_nev

    @property
    def times_ns(self) -> np.ndarray:
        """FFT times t_m = m·h/(K·ΔE), m = 0…K//2, ns."""
        return np.arange(self.n_points // 2 + 1) * H_NEV_NS / (self.n_points * self.step_nev)


def common_energy_grid(
    forward_energy: np.ndarray, qe_energy: np.ndarray, keep: np.ndarray, sweeps: np.ndarray, rebin_factor: int = 1
) -> SpectrumGrid:
    """The grid shared by the forward and QE spectra.

    ΔE = ``rebin_factor``·max|E_{f+1} − E_f|·(1 + 10⁻⁶) over consecutive kept frames of one sweep
    (forward energies, the largest steps); the window is the widest one symmetric about 0 that
    every spectrum covers (forward (frames,), each q bin of ``qe_energy`` (frames, bins)).
    """
    if isinstance(rebin_factor, (bool, np.bool_)) or int(rebin_factor) != rebin_factor or int(rebin_factor) < 1:
        raise BadInput(f"rebin_factor must be an integer >= 1, got {rebin_factor!r}")
    consecutive = keep[1:] & keep[:-1] & (sweeps[1:] == sweeps[:-1])
    if not consecutive.any():
        raise BadInput("no two consecutive frames of one sweep survive the cuts; cannot set the energy step")
    step = int(rebin_factor) * float(np.max(np.abs(np.diff(forward_energy))[consecutive])) * (1.0 + 1e-6)
    kept = np.column_stack([forward_energy[keep], qe_energy[keep]])
    half = float(min(-kept.min(axis=0).max(), kept.max(axis=0).min()))
    if not half > 0:
        raise BadInput("the kept energies do not straddle E = 0 (check v0_offset and the velocity calibration)")
    n_points = int(np.floor(2.0 * half / step))
    if n_points < 4:
        raise BadInput(f"the energy window ±{half:.2f} neV holds only {n_points} bins of {step:.3f} neV; "
                       "lower rebin_factor or relax the turn-around cut")
    return SpectrumGrid(step, n_points)


@dataclass(frozen=True)
class Spectrum:
    """A binned spectrum on a :class:`SpectrumGrid`: mean ``y``, error ``sigma``
    (σ_k = √(Σ var)/n_k) and ``n`` values averaged per bin; arrays (..., K)."""

    y: np.ndarray
    sigma: np.ndarray
    n: np.ndarray


def bin_average(energy: np.ndarray, values: np.ndarray, variance: np.ndarray, keep: np.ndarray, grid: SpectrumGrid,
                label: str) -> Spectrum:
    """Average the kept frames falling in each grid bin (the app's binning).

    ``energy``, ``values``, ``variance``: (frames,) or (frames, bins) with the frames axis first.
    Returns arrays (K,) or (bins, K).  Raises naming ``label`` when a bin receives no frame.
    """
    energy2, values2, variance2 = (np.asarray(a, dtype=np.float64).reshape(len(keep), -1)[keep] for a in (energy, values, variance))
    n_series = energy2.shape[1]
    index = np.floor((energy2 - grid.edges[0]) / grid.step_nev).astype(np.int64)
    inside = (index >= 0) & (index < grid.n_points)
    flat = (index + grid.n_points * np.arange(n_series)[None, :])[inside]
    size = n_series * grid.n_points
    counts = np.bincount(flat, minlength=size).reshape(n_series, grid.n_points)
    _check_populated(counts, grid, label)
    sums = np.bincount(flat, weights=values2[inside], minlength=size).reshape(n_series, grid.n_points)
    var_sums = np.bincount(flat, weights=variance2[inside], minlength=size).reshape(n_series, grid.n_points)
    return _shaped(Spectrum(sums / counts, np.sqrt(var_sums) / counts, counts), np.ndim(values) == 1)


def bin_interpolate(energy: np.ndarray, values: np.ndarray, variance: np.ndarray, keep: np.ndarray,
                    sweeps: np.ndarray, grid: SpectrumGrid, label: str) -> Spectrum:
    """Interpolate each sweep linearly onto the grid centres and average over sweeps (bias-free
    alternative to :func:`bin_average`).  Variances propagate with the interpolation weights:
    (1 − w)²V_i + w²V_{i+1}; σ_k = √(Σ_sweeps var)/n_k with n_k the sweeps covering E_k."""
    energy2, values2, variance2 = (np.asarray(a, dtype=np.float64).reshape(len(keep), -1) for a in (energy, values, variance))
    n_series = energy2.shape[1]
    centres = grid.centres
    sums = np.zeros((n_series, grid.n_points))
    var_sums = np.zeros_like(sums)
    counts = np.zeros(sums.shape, dtype=np.int64)
    for sweep in np.unique(sweeps[keep]):
        frames = np.flatnonzero(keep & (sweeps == sweep))
        if frames.size < 2:
            continue
        for series in range(n_series):
            e = energy2[frames, series]
            order = np.argsort(e, kind="stable")
            e, y, v = e[order], values2[frames, series][order], variance2[frames, series][order]
            inside = (centres >= e[0]) & (centres <= e[-1])
            upper = np.clip(np.searchsorted(e, centres[inside], side="right"), 1, e.size - 1)
            span = e[upper] - e[upper - 1]
            w = np.divide(centres[inside] - e[upper - 1], span, out=np.zeros(span.shape), where=span > 0)
            sums[series, inside] += (1.0 - w) * y[upper - 1] + w * y[upper]
            var_sums[series, inside] += (1.0 - w) ** 2 * v[upper - 1] + w**2 * v[upper]
            counts[series, inside] += 1
    _check_populated(counts, grid, label)
    return _shaped(Spectrum(sums / counts, np.sqrt(var_sums) / counts, counts), np.ndim(values) == 1)


def _check_populated(counts: np.ndarray, grid: SpectrumGrid, label: str) -> None:
    empty = np.argwhere(counts == 0)
    if empty.size:
        series, k = empty[0]
        where = f" (q bin {series} of the range)" if counts.shape[0] > 1 else ""
        raise BadInput(f"{label} spectrum{where}: {len(empty)} energy bins get no frame, first at "
                       f"E = {grid.centres[k]:.2f} neV (step {grid.step_nev:.3f} neV); raise rebin_factor")


def _shaped(spectrum: Spectrum, one_series: bool) -> Spectrum:
    if one_series:
        return Spectrum(spectrum.y[0], spectrum.sigma[0], spectrum.n[0])
    return spectrum


@dataclass(frozen=True)
class EnergySpectra:
    """Output of :func:`energy_spectra`: the grid, the forward and QE spectra (K,), the per-q
    spectra (bins in range, K), which q bins were used and which frames were kept."""

    grid: SpectrumGrid
    forward: Spectrum
    quasielastic: Spectrum
    per_q: Spectrum
    q_bins: np.ndarray
    q: np.ndarray
    angle_factor: np.ndarray
    kept_frames: np.ndarray
    forward_energy: np.ndarray


def energy_spectra(
    forward_counts: np.ndarray,
    forward_variance: np.ndarray,
    qe_sums: np.ndarray,
    qe_variance: np.ndarray,
    q: np.ndarray,
    angle_factors: np.ndarray,
    velocity: np.ndarray,
    q_min: float,
    q_max: float,
    v0_offset: float = 0.0,
    start_cut_frames: int = 5,
    turnaround_cut_frac: float = 0.9,
    turnaround_guard_frames: int = 0,
    rebin_factor: int = 1,
    binning: str = "average",
    bin_pixels: np.ndarray | None = None,
) -> EnergySpectra:
    """Steps 1–6 of §3.3: frame cuts, energy axes, common grid, binning, sum over the q range.

    ``forward_counts``/``forward_variance`` (frames,): forward-box counts of the sample run.
    ``qe_sums``/``qe_variance`` (frames, bins): background-subtracted q-bin sums and variances.
    ``q`` (bins,) nm⁻¹ bin centres; ``angle_factors`` (bins,) g(2θ_b) from :func:`angle_factor`;
    ``velocity`` (frames,) mm/s from :func:`calibrated_velocity`; ``bin_pixels`` (bins,)
    optional pixel counts, bins without pixels are skipped.  The QE spectrum is the sum over the
    q bins with ``q_min`` ≤ q_b ≤ ``q_max`` of their per-bin spectra (each on its own energy
    scale E·g_b).  ``binning`` is ``"average"`` (the app) or ``"interpolate"``.
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    n = velocity.size
    qe_sums, qe_variance = np.asarray(qe_sums, dtype=np.float64), np.asarray(qe_variance, dtype=np.float64)
    q, angle_factors = np.asarray(q, dtype=np.float64), np.asarray(angle_factors, dtype=np.float64)
    for name, array, shape in (("forward_counts", forward_counts, (n,)), ("forward_variance", forward_variance, (n,)),
                               ("qe_sums", qe_sums, (n, q.size)), ("qe_variance", qe_variance, (n, q.size)),
                               ("angle_factors", angle_factors, q.shape)):
        if np.shape(array) != shape:
            raise BadInput(f"{name} must have shape {shape} (frames = velocity length, bins = q length), got {np.shape(array)}")
    if binning not in BINNING_MODES:
        raise BadInput(f"binning must be one of {BINNING_MODES}, got {binning!r}")
    selected = select_q_bins(q, q_min, q_max, bin_pixels)
    keep = frame_selection(velocity, start_cut_frames, turnaround_cut_frac, turnaround_guard_frames)
    sweeps = sweep_labels(velocity)
    forward_energy = energy_from_velocity(velocity, v0_offset)
    qe_energy = energy_from_velocity(velocity, v0_offset, angle_factors[selected])
    grid = common_energy_grid(forward_energy, qe_energy, keep, sweeps, rebin_factor)
    if binning == "average":
        forward = bin_average(forward_energy, forward_counts, forward_variance, keep, grid, "forward")
        per_q = bin_average(qe_energy, qe_sums[:, selected], qe_variance[:, selected], keep, grid, "quasi-elastic")
    else:
        forward = bin_interpolate(forward_energy, forward_counts, forward_variance, keep, sweeps, grid, "forward")
        per_q = bin_interpolate(qe_energy, qe_sums[:, selected], qe_variance[:, selected], keep, sweeps, grid,
                                "quasi-elastic")
    qe = Spectrum(per_q.y.sum(axis=0), np.sqrt((per_q.sigma**2).sum(axis=0)), per_q.n.mean(axis=0))
    return EnergySpectra(grid, forward, qe, per_q, selected, q[selected], angle_factors[selected], keep, forward_energy)


def select_q_bins(q: np.ndarray, q_min: float, q_max: float, bin_pixels: np.ndarray | None = None) -> np.ndarray:
    """Indices of the bins with q_min ≤ q_b ≤ q_max (and pixels, when ``bin_pixels`` is given)."""
    if q_min is None or q_max is None or not float(q_min) < float(q_max) or float(q_min) < 0:
        raise BadInput(f"q range must satisfy 0 <= q_min < q_max (nm^-1), got q_min={q_min!r}, q_max={q_max!r}")
    q = np.asarray(q, dtype=np.float64)
    inside = (q >= float(q_min)) & (q <= float(q_max))
    if bin_pixels is not None:
        inside &= np.asarray(bin_pixels) > 0
    if not inside.any():
        raise BadInput(f"q range [{q_min:g}, {q_max:g}] nm^-1 holds no q bin with pixels "
                       f"(bins span {q.min():.3f}..{q.max():.3f} nm^-1)")
    return np.flatnonzero(inside)


# ------------------------------------------------------------------------------------------------
# Background, normalisation, FFT, ISF (§3.3.7–10)
# ------------------------------------------------------------------------------------------------
def wing_background(energy: np.ndarray, y: np.ndarray, sigma: np.ndarray, n_points: int = 30,
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


def spectrum_transform(s: np.ndarray, step_nev: float) -> np.ndarray:
    """ŝ(t_m) = ΔE·Σ_k s_k e^{−2πikm/K} for m = 0…K//2 (times :attr:`SpectrumGrid.times_ns`);
    FFT along the last axis, complex (..., K//2 + 1)."""
    return float(step_nev) * np.fft.rfft(s, axis=-1)


def isf_ratio(qe_transform: np.ndarray, forward_transform: np.ndarray, normalisation: str = "absolute") -> np.ndarray:
    """F(t_m) = ŝ_q/ŝ₀ (complex; the grid-origin phase cancels).  ``normalisation``
    ``"absolute"`` keeps F(0) = A_q/A₀ ≈ f_q; ``"unit"`` divides by Re F(0)."""
    if normalisation not in ISF_NORMALISATIONS:
        raise BadInput(f"isf_normalisation must be one of {ISF_NORMALISATIONS}, got {normalisation!r}")
    ratio = qe_transform / forward_transform
    if normalisation == "unit":
        ratio = ratio / ratio[..., :1].real
    return ratio


def resample_spectrum(spectrum: Spectrum, n_mc: int, noise: str, rng: np.random.Generator) -> np.ndarray:
    """``n_mc`` Monte-Carlo copies of a binned spectrum, (n_mc, K).

    ``"gaussian"``: y + σ·ε.  ``"poisson"``: y* = (σ²/y)·Poisson(y²/σ²), i.e. Poisson counts with
    the spectrum's effective number of counts per bin; for unsubtracted counts (σ² = y/n) this is
    Poisson(n·y)/n.  Poisson needs y > 0 and σ > 0 everywhere.
    """
    y, sigma = spectrum.y, spectrum.sigma
    if noise == "gaussian":
        return y + sigma * rng.standard_normal((int(n_mc), y.size))
    if noise == "poisson":
        if np.any(y <= 0) or np.any(sigma <= 0):
            raise BadInput("mc_noise 'poisson' needs a positive spectrum with positive errors; "
                           "use mc_noise 'gaussian' for background-subtracted data that reach zero")
        effective_counts = (y / sigma) ** 2
        return rng.poisson(effective_counts, size=(int(n_mc), y.size)) / (effective_counts / y)
    raise BadInput(f"mc_noise must be one of {MC_NOISE}, got {noise!r}")


# ------------------------------------------------------------------------------------------------
# Fit (§3.3.13)
# ------------------------------------------------------------------------------------------------
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


def fit_relaxation(t_ns: np.ndarray, isf: np.ndarray, sigma: np.ndarray, model: str = "exp") -> RelaxationFit | None:
    """Fit f_q·exp(−(t/τ)^β) to ISF points (t > 0 ns, errors σ > 0) by weighted least squares.

    ``model`` (``fit_model``): ``"exp"`` (β = 1), ``"kww"`` (β free in (0.05, 3]), ``"none"``
    (returns None).  Raises when fewer points than parameters + 1 are given.
    """
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


# ------------------------------------------------------------------------------------------------
# The ISF chain (§3.3.7–13)
# ------------------------------------------------------------------------------------------------
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
    bg_fit_enabled: bool = False,
    bg_n_points: int = 30,
    relax_bg_coeff: float = 1.0,
    isf_error_threshold: float = 0.05,
    n_mc: int = 500,
    mc_noise: str = "poisson",
    seed: int = 0,
    isf_normalisation: str = "absolute",
    fit_model: str = "exp",
) -> IsfResult:
    """Steps 7–13 of §3.3 on the output of :func:`energy_spectra`.

    Background from ``bg_n_points`` wing points on each side (flat, or sloped when
    ``bg_fit_enabled``), QE background multiplied by ``relax_bg_coeff`` (which scales F(t > 0)
    by 1/c and adds a t = 0 artefact), normalisation a = y/b, s = 1 − a, FFT, F = ŝ_q/ŝ₀
    (``isf_normalisation``), ``n_mc`` resamples of both spectra (``mc_noise``, PCG64 seeded with
    ``seed``) through the same steps, all at once, for σ_F; points with t > 0 and
    σ_F ≤ ``isf_error_threshold`` are fitted with ``fit_model``.
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

    def convex(y, sigma, coeff):
        return convex_spectrum(y, coeff * wing_background(energy, y, sigma, bg_n_points, bg_fit_enabled))

    fwd, qe = spectra.forward, spectra.quasielastic
    coeff = float(relax_bg_coeff)
    forward_transform = spectrum_transform(convex(fwd.y, fwd.sigma, 1.0), grid.step_nev)
    qe_transform = spectrum_transform(convex(qe.y, qe.sigma, coeff), grid.step_nev)
    ratio = isf_ratio(qe_transform, forward_transform, isf_normalisation)

    rng = np.random.Generator(np.random.PCG64(int(seed)))
    fwd_mc = resample_spectrum(fwd, n_mc, mc_noise, rng)
    qe_mc = resample_spectrum(qe, n_mc, mc_noise, rng)
    mc_ratio = isf_ratio(spectrum_transform(convex(qe_mc, qe.sigma, coeff), grid.step_nev),
                         spectrum_transform(convex(fwd_mc, fwd.sigma, 1.0), grid.step_nev), isf_normalisation)
    mc_isf = mc_ratio.real
    error = mc_isf.std(axis=0, ddof=1)
    t = grid.times_ns
    accepted = (t > 0) & (error <= float(isf_error_threshold))
    fit = fit_relaxation(t[accepted], ratio.real[accepted], error[accepted], fit_model)
    parameters = {"bg_fit_enabled": bool(bg_fit_enabled), "bg_n_points": int(bg_n_points),
                  "relax_bg_coeff": coeff, "isf_error_threshold": float(isf_error_threshold),
                  "n_mc": int(n_mc), "mc_noise": mc_noise, "seed": int(seed),
                  "isf_normalisation": isf_normalisation, "fit_model": fit_model}
    return IsfResult(t, ratio.real, ratio.imag, error, accepted,
                     _normalised(fwd, energy, bg_n_points, bg_fit_enabled, 1.0),
                     _normalised(qe, energy, bg_n_points, bg_fit_enabled, coeff),
                     forward_transform, qe_transform, mc_isf, fit, int(seed), parameters)


def _normalised(spectrum: Spectrum, energy: np.ndarray, n_points: int, fit_slope: bool, coeff: float) -> NormalisedSpectrum:
    background = coeff * wing_background(energy, spectrum.y, spectrum.sigma, n_points, fit_slope)
    absorption = spectrum.y / background
    return NormalisedSpectrum(spectrum, background, absorption, spectrum.sigma / background, 1.0 - absorption)
