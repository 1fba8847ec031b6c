"""Energy spectra from per-frame sums: the common energy grid, binning of frames onto it, and the
sum over the q range (docs/physics.md#energy-spectrum-and-isf).

Units: energy in neV, q in nm⁻¹. Per-frame inputs have the frames axis first: the forward
spectrum (frames,), the background-subtracted q-bin sums (frames, bins) and their variances.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import rules
from eqegs_repo.kernels.e_spectrum.velocity import (
    energy_from_velocity,
    frame_selection,
    sweep_labels,
)
from eqegs_repo.kernels.physics import H_NEV_NS

if TYPE_CHECKING:  # annotations only; scipy is imported on first use
    from scipy import sparse

BINNING_MODES = ("average", "interpolate", "local_linear")


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
    """A binned spectrum on a :class:`SpectrumGrid`: value ``y``, error ``sigma`` (the square
    root of the diagonal of the propagated covariance) and ``n`` values combined per bin
    (frames for ``average`` and ``local_linear``, sweeps for ``interpolate``); arrays (..., K)."""

    y: np.ndarray
    sigma: np.ndarray
    n: np.ndarray


@dataclass(frozen=True)
class Resampling:
    """The linear map of one series' per-frame values onto the grid: y = W·x.

    ``matrix`` W is a sparse (K, frames) matrix whose columns of cut frames are empty; ``n``
    (K,) counts the values combined in each bin. Because the per-frame values are independent,
    the binned spectrum has the exact covariance W·diag(V)·Wᵀ (:meth:`covariance`): neighbouring
    bins of an interpolated spectrum share frames and are correlated.
    """

    matrix: sparse.csr_matrix
    n: np.ndarray

    def spectrum(self, values: np.ndarray, variance: np.ndarray) -> Spectrum:
        """The binned spectrum of per-frame ``values`` with ``variance`` (both (frames,))."""
        return Spectrum(self.matrix @ values, np.sqrt(self.matrix.multiply(self.matrix) @ variance), self.n)

    def covariance(self, variance: np.ndarray) -> sparse.csr_matrix:
        """W·diag(V)·Wᵀ, sparse (K, K), for per-frame variances V (frames,)."""
        return (self.matrix.multiply(variance[None, :]) @ self.matrix.T).tocsr()


def resampling(energy: np.ndarray, keep: np.ndarray, sweeps: np.ndarray, *, grid: SpectrumGrid, binning: str,
               label: str) -> Resampling:
    """The :class:`Resampling` of one series with energies ``energy`` (frames,) neV onto ``grid``.

    ``"local_linear"`` (the default): a local linear fit at each centre to the kept frames within
    one grid step (:func:`_local_linear_triplets`): unbiased for a spectrum that is linear across
    the window, and every frame counts.  ``"interpolate"``: each sweep (``sweeps`` (frames,) from
    :func:`sweep_labels`) is interpolated linearly at the bin centres, y_k = (1 − w)·x_i +
    w·x_{i+1} between the kept frames around E_k, and the sweeps covering E_k are averaged.  A
    sweep is interpolated run by run of consecutive kept frames, so a gap of cut frames is never
    bridged; where frames are denser than the grid, the frames between two centres are not used
    (larger errors).  ``"average"`` (the app's binning): y_k is the mean of the kept frames
    falling in bin k.  Raises naming ``label`` when
    a bin receives no frame.
    """
    if binning not in BINNING_MODES:
        raise BadInput(f"binning must be one of {BINNING_MODES}, got {binning!r}")
    energy = np.asarray(energy, dtype=np.float64)
    if binning == "average":
        frames = np.flatnonzero(keep)
        index = np.floor((energy[frames] - grid.edges[0]) / grid.step_nev).astype(np.int64)
        inside = (index >= 0) & (index < grid.n_points)
        rows, cols, weights = index[inside], frames[inside], np.ones(int(inside.sum()))
    elif binning == "local_linear":
        rows, cols, weights = _local_linear_triplets(energy, keep, grid)  # normalised already
    else:
        rows, cols, weights = _interpolation_triplets(energy, keep, sweeps, grid.centres)
    counts = np.bincount(rows, minlength=grid.n_points)
    if binning == "interpolate":
        counts //= 2  # each covering sweep adds two entries (the frames around E_k)
    _check_populated(counts, grid, label)
    if binning != "local_linear":
        weights = weights / counts[rows]
    from scipy import sparse  # on first use: a listing imports no scipy
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(grid.n_points, energy.size))
    return Resampling(matrix, counts)


def _local_linear_triplets(energy, keep, grid):
    """(rows, cols, weights) of the local linear fit at every grid centre E_k to the kept frames
    within one grid step, tent-weighted: K_i = 1 − |d_i|/ΔE with d_i = E_i − E_k (each frame
    falls under the tents of the two centres around it).  The weights
    l_i = K_i·(S₂ − d_i·S₁)/(S₀·S₂ − S₁²), with S_m = Σ K_i·d_iᵐ, sum to 1 and give Σ l_i·d_i = 0,
    so a spectrum that is linear across the window is reproduced exactly (no binning bias,
    whatever the spacing of the frames) while every kept frame is used.  A window whose frames
    all sit at one energy falls back to the tent-weighted mean."""
    frames = np.flatnonzero(keep)
    position = (energy[frames] - grid.centres[0]) / grid.step_nev
    lower = np.floor(position).astype(np.int64)
    w = position - lower
    rows = np.concatenate([lower, lower + 1])
    cols = np.concatenate([frames, frames])
    tent = np.concatenate([1.0 - w, w])
    offset = np.concatenate([w, w - 1.0])  # d / ΔE
    inside = (rows >= 0) & (rows < grid.n_points) & (tent > 0)
    rows, cols, tent, offset = rows[inside], cols[inside], tent[inside], offset[inside]
    s0, s1, s2 = (np.bincount(rows, weights=tent * offset**m, minlength=grid.n_points) for m in range(3))
    det = s0 * s2 - s1**2
    linear = det > 1e-9 * np.maximum(s0 * s2, 1e-300)
    numerator = np.where(linear[rows], s2[rows] - offset * s1[rows], 1.0)
    denominator = np.where(linear, det, s0)[rows]
    return rows, cols, tent * numerator / denominator


def _interpolation_triplets(energy, keep, sweeps, centres):
    """(rows, cols, weights) of the linear interpolation of every run of consecutive kept frames
    of one sweep at the grid centres (so a gap of cut frames is never bridged)."""
    runs = np.cumsum(~keep)  # a new run starts after every cut frame
    rows, cols, weights = [], [], []
    for sweep, run in sorted({(int(a), int(b)) for a, b in zip(sweeps[keep], runs[keep])}):
        frames = np.flatnonzero(keep & (sweeps == sweep) & (runs == run))
        if frames.size < 2:
            continue
        frames = frames[np.argsort(energy[frames], kind="stable")]
        e = energy[frames]
        inside = np.flatnonzero((centres >= e[0]) & (centres <= e[-1]))
        upper = np.clip(np.searchsorted(e, centres[inside], side="right"), 1, e.size - 1)
        span = e[upper] - e[upper - 1]
        w = np.divide(centres[inside] - e[upper - 1], span, out=np.zeros(span.shape), where=span > 0)
        rows += [inside, inside]
        cols += [frames[upper - 1], frames[upper]]
        weights += [1.0 - w, w]
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)


def _check_populated(counts: np.ndarray, grid: SpectrumGrid, label: str) -> None:
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise BadInput(f"{label} spectrum: {empty.size} energy bins get no frame, first at "
                       f"E = {grid.centres[empty[0]]:.2f} neV (step {grid.step_nev:.3f} neV); raise rebin_factor")


@dataclass(frozen=True)
class FrameSeries:
    """Per-frame values (frames,), their independent variances (frames,) and their
    :class:`Resampling` onto the grid: what the Monte Carlo of :mod:`.isf` resamples."""

    values: np.ndarray
    variance: np.ndarray
    resampling: Resampling


@dataclass(frozen=True)
class EnergySpectra:
    """Output of :func:`energy_spectra`: the grid, the forward and QE spectra (K,), the per-q
    spectra (bins in range, K), which q bins were used and which frames were kept, and the
    per-frame series behind the forward spectrum and behind each q bin of the QE spectrum."""

    grid: SpectrumGrid
    forward: Spectrum
    quasielastic: Spectrum
    per_q: Spectrum
    q_bins: np.ndarray
    q: np.ndarray
    angle_factor: np.ndarray
    kept_frames: np.ndarray
    forward_energy: np.ndarray
    forward_series: FrameSeries
    qe_series: tuple[FrameSeries, ...]
    binning: str


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
    binning: str = "local_linear",
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
    scale E·g_b).  ``binning`` (:func:`resampling`) is ``"local_linear"`` (default: unbiased,
    every frame used), ``"interpolate"`` (unbiased, frames between two centres unused) or
    ``"average"`` (the app's rule, biased when a frame step is a sizeable part of the line width).
    """
    velocity = np.asarray(velocity, dtype=np.float64)
    n = velocity.size
    forward_counts, forward_variance = (np.asarray(a, dtype=np.float64) for a in (forward_counts, forward_variance))
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
    forward_series = FrameSeries(forward_counts, forward_variance,
                                 resampling(forward_energy, keep, sweeps, grid=grid, binning=binning, label="forward"))
    forward = forward_series.resampling.spectrum(forward_counts, forward_variance)
    qe_series = tuple(
        FrameSeries(qe_sums[:, b], qe_variance[:, b],
                    resampling(qe_energy[:, j], keep, sweeps, grid=grid, binning=binning,
                               label=f"quasi-elastic (q bin {j} of the range, q = {q[b]:.3f} nm^-1)"))
        for j, b in enumerate(selected))
    parts = [s.resampling.spectrum(s.values, s.variance) for s in qe_series]
    per_q = Spectrum(*(np.stack([getattr(p, name) for p in parts]) for name in ("y", "sigma", "n")))
    qe = Spectrum(per_q.y.sum(axis=0), np.sqrt((per_q.sigma**2).sum(axis=0)), per_q.n.mean(axis=0))
    return EnergySpectra(grid, forward, qe, per_q, selected, q[selected], angle_factors[selected], keep,
                         forward_energy, forward_series, qe_series, binning)


def select_q_bins(q: np.ndarray, *, q_min: float, q_max: float, bin_pixels: np.ndarray | None = None) -> np.ndarray:
    """Indices of the bins with q_min ≤ q_b ≤ q_max (and pixels, when ``bin_pixels`` is given).

    The range itself must pass :func:`eqegs_repo.kernels.rules.q_range_problems` (0 ≤ q_min < q_max,
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
