"""Energy spectra from per-frame sums: the common energy grid, binning of frames onto it, and the
sum over the q range (docs/physics.md#energy-spectrum-and-isf).

Units: energy in neV, q in nm⁻¹. Per-frame inputs have the frames axis first: the forward
spectrum (frames,), the background-subtracted q-bin sums (frames, bins) and their variances.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.steps import rules
from eqegs_repo.steps.e_spectrum.velocity import (
    energy_from_velocity,
    frame_selection,
    sweep_labels,
)
from eqegs_repo.steps.physics import H_NEV_NS

BINNING_MODES = ("average", "interpolate")


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
    forward_energy: np.ndarray, qe_energy: np.ndarray, keep: np.ndarray, sweeps: np.ndarray, *, rebin_factor: int = 1
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


def bin_average(energy: np.ndarray, values: np.ndarray, variance: np.ndarray, keep: np.ndarray, *,
                grid: SpectrumGrid, label: str) -> Spectrum:
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
                    sweeps: np.ndarray, *, grid: SpectrumGrid, label: str) -> Spectrum:
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
    *,
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
    """Frame cuts, energy axes, common grid, binning, sum over the q range
    (docs/physics.md#energy-spectrum-and-isf).

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
    selected = select_q_bins(q, q_min=q_min, q_max=q_max, bin_pixels=bin_pixels)
    keep = frame_selection(velocity, start_cut_frames=start_cut_frames, turnaround_cut_frac=turnaround_cut_frac,
                           turnaround_guard_frames=turnaround_guard_frames)
    sweeps = sweep_labels(velocity)
    forward_energy = energy_from_velocity(velocity, v0_offset=v0_offset)
    qe_energy = energy_from_velocity(velocity, v0_offset=v0_offset, g=angle_factors[selected])
    grid = common_energy_grid(forward_energy, qe_energy, keep, sweeps, rebin_factor=rebin_factor)
    if binning == "average":
        forward = bin_average(forward_energy, forward_counts, forward_variance, keep, grid=grid, label="forward")
        per_q = bin_average(qe_energy, qe_sums[:, selected], qe_variance[:, selected], keep, grid=grid,
                            label="quasi-elastic")
    else:
        forward = bin_interpolate(forward_energy, forward_counts, forward_variance, keep, sweeps, grid=grid,
                                  label="forward")
        per_q = bin_interpolate(qe_energy, qe_sums[:, selected], qe_variance[:, selected], keep, sweeps, grid=grid,
                                label="quasi-elastic")
    qe = Spectrum(per_q.y.sum(axis=0), np.sqrt((per_q.sigma**2).sum(axis=0)), per_q.n.mean(axis=0))
    return EnergySpectra(grid, forward, qe, per_q, selected, q[selected], angle_factors[selected], keep, forward_energy)


def select_q_bins(q: np.ndarray, *, q_min: float, q_max: float, bin_pixels: np.ndarray | None = None) -> np.ndarray:
    """Indices of the bins with q_min ≤ q_b ≤ q_max (and pixels, when ``bin_pixels`` is given).

    The range itself must pass :func:`eqegs_repo.steps.rules.q_range_problems` (0 ≤ q_min < q_max,
    nm⁻¹); a range that holds no bin with pixels is refused here."""
    problems = rules.q_range_problems(q_min, q_max)
    if problems:
        raise BadInput("; ".join(problems))
    q = np.asarray(q, dtype=np.float64)
    inside = (q >= float(q_min)) & (q <= float(q_max))
    if bin_pixels is not None:
        inside &= np.asarray(bin_pixels) > 0
    if not inside.any():
        raise BadInput(f"q range [{q_min:g}, {q_max:g}] nm^-1 holds no q bin with pixels "
                       f"(bins span {q.min():.3f}..{q.max():.3f} nm^-1)")
    return np.flatnonzero(inside)
