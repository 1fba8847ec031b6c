"""Radial bins and the sparse radial integrator of the q-integration step
(docs/physics.md#q-integration).

Integration is linear, so each run (sample, background) is integrated once, block by block,
and the background is subtracted in q space. :meth:`RadialIntegrator.for_sensors` applies the
canvas integrator to each sensor's block as read: no reconstructed stack is ever needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.q_integration.engines import PixelBinSums
from eqegs_repo.kernels.q_integration.pixels import (
    DetectorGeometry,
    pixel_offsets,
    pixel_radius,
)
from eqegs_repo.kernels.sensors import SensorLayout, sensor_pixels

if TYPE_CHECKING:  # annotations only; scipy is imported on first use
    from scipy import sparse

PIXEL_SPLITTING = ("none", "bbox")


@dataclass(frozen=True)
class RadialBins:
    """Radial bins as increasing edges in px from the beam centre, shape (n_bins + 1,)."""

    edges_px: np.ndarray

    def __post_init__(self):
        edges = np.asarray(self.edges_px, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0) or edges[0] < 0:
            raise BadInput(f"radial bin edges must be >= 0 and strictly increasing (at least 2), got {edges!r}")
        object.__setattr__(self, "edges_px", edges)

    @classmethod
    def uniform(cls, *, bin_px: float, r_max_px: float, r_min_px: float = 0.0) -> "RadialBins":
        """Bins of width Δr = ``bin_px`` (``radial_bin_px``) from r_min to at least r_max, px."""
        if not float(bin_px) > 0:
            raise BadInput(f"radial_bin_px must be > 0 px, got {bin_px!r}")
        if not float(r_max_px) > float(r_min_px) >= 0:
            raise BadInput(f"radial range must satisfy 0 <= r_min < r_max, got r_min={r_min_px!r}, r_max={r_max_px!r}")
        n = int(np.ceil((float(r_max_px) - float(r_min_px)) / float(bin_px)))
        return cls(float(r_min_px) + float(bin_px) * np.arange(n + 1))

    @classmethod
    def from_q_edges(cls, q_edges: np.ndarray, *, geometry: DetectorGeometry) -> "RadialBins":
        """Bins given directly in q (nm⁻¹, increasing edges), converted to radii through the geometry."""
        q_edges = np.asarray(q_edges, dtype=np.float64)
        if q_edges.ndim != 1 or q_edges.size < 2 or not np.all(np.diff(q_edges) > 0) or q_edges[0] < 0:
            raise BadInput(f"q bin edges must be >= 0 nm^-1 and strictly increasing, got {q_edges!r}")
        return cls(geometry.radius(q_edges))

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return self.edges_px.size - 1

    @property
    def centres_px(self) -> np.ndarray:
        """Bin centres in px, (n_bins,)."""
        return 0.5 * (self.edges_px[1:] + self.edges_px[:-1])


def _row_extremes(matrix: "sparse.csr_matrix", values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the CSR ``matrix``: the smallest and largest of ``values`` (one per column)
    over the columns with a positive entry, (rows,) each; NaN for a row without one."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    used = matrix.data > 0
    rows, picked = rows[used], values[matrix.indices[used]]
    low, high = np.full(matrix.shape[0], np.nan), np.full(matrix.shape[0], np.nan)
    if rows.size:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # rows are sorted in CSR order
        low[rows[starts]] = np.minimum.reduceat(picked, starts)
        high[rows[starts]] = np.maximum.reduceat(picked, starts)
    return low, high


class RadialIntegrator:
    """Radial integration as one sparse matrix M (bins × pixels), built once per geometry, centre,
    mask and bin set.

    M[b, i] = 1 when pixel i's centre falls in bin b (``pixel_splitting="none"``) or the fraction
    of pixel i's radial extent that falls in bin b (``"bbox"``).  Attributes (all per bin, shape
    (n_bins,)): ``npix`` = M·1 (effective pixels), ``normalisation`` = M·n (equals ``npix``
    without pixel weights), ``r_px``/``two_theta``/``q`` at the bin centres, ``q_mean`` the pixel
    mean of q, ``q_pixel_min``/``q_pixel_max`` the smallest and largest q of the centres of the
    bin's pixels (every pixel with M[b, i] > 0; NaN for a bin without pixels), all q in nm⁻¹.  ``matrix`` is the scipy CSR matrix (float32 without splitting, float64 with
    fractional bbox weights).  The integrator is the cache of everything derived from the matrix
    (the pixel → bin labels, the scatter copies, the per-sensor parts of
    :meth:`for_sensors`): build it once per run set and reuse it for every block of the sample
    and background runs.  The sums themselves are done by :class:`PixelBinSums` (two engines).
    """

    def __init__(self, matrix: sparse.csr_matrix, *, image_shape: tuple[int, int], bins: RadialBins,
                 geometry: DetectorGeometry, centre: tuple[float, float], pixel_weights: np.ndarray | None):
        self.matrix = matrix.tocsr()
        self.image_shape = tuple(int(n) for n in image_shape)
        self.bins = bins
        self.geometry = geometry
        self.centre = (float(centre[0]), float(centre[1]))
        self._sums = PixelBinSums(self.matrix, pixel_shape=self.image_shape)
        self._sensor_parts: dict = {}
        self.is_binary = self._sums.is_binary
        ones = np.ones(self.matrix.shape[1])
        self.npix = self.matrix @ ones
        self.normalisation = self.npix if pixel_weights is None else self.matrix @ np.ravel(pixel_weights).astype(np.float64)
        self.r_px = bins.centres_px
        self.two_theta = geometry.two_theta(self.r_px)
        self.q = geometry.q(self.r_px)
        q_pixels = geometry.q(pixel_radius(self.image_shape, centre=self.centre)).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.q_mean = (self.matrix @ q_pixels) / self.npix
        self.q_pixel_min, self.q_pixel_max = _row_extremes(self.matrix, q_pixels)

    @classmethod
    def build(
        cls,
        image_shape: tuple[int, int],
        *,
        centre: tuple[float, float],
        geometry: DetectorGeometry,
        bins: RadialBins,
        keep: np.ndarray | None = None,
        pixel_splitting: str = "none",
        pixel_weights: np.ndarray | None = None,
    ) -> "RadialIntegrator":
        """Build the matrix for an (H, W) image around ``centre`` (px) with mask ``keep`` (True =
        used).  ``pixel_splitting`` is ``"none"`` or ``"bbox"`` (a pixel's radial extent, from its
        nearest to its farthest point, is shared between bins in proportion to overlap).
        ``pixel_weights`` (H, W), e.g. from :func:`pixel_normalisation`, only change
        ``normalisation``.  Raises when no used pixel falls in any bin."""
        shape = tuple(int(n) for n in image_shape)
        keep = np.ones(shape, bool) if keep is None else np.asarray(keep, bool)
        if keep.shape != shape:
            raise BadInput(f"mask has shape {keep.shape}, expected the image shape {shape}")
        if pixel_weights is not None and np.shape(pixel_weights) != shape:
            raise BadInput(f"pixel_weights has shape {np.shape(pixel_weights)}, expected {shape}")
        dx, dy = pixel_offsets(shape, centre=centre)
        edges = bins.edges_px
        if pixel_splitting == "none":
            rows, cols, values = _unsplit_entries(np.hypot(dx, dy).ravel(), keep.ravel(), edges)
        elif pixel_splitting == "bbox":
            rows, cols, values = _bbox_entries(np.abs(dx).ravel(), np.abs(dy).ravel(), keep.ravel(), edges)
        else:
            raise BadInput(f"pixel_splitting must be one of {PIXEL_SPLITTING}, got {pixel_splitting!r}")
        if rows.size == 0:
            q_lo, q_hi = geometry.q(edges[[0, -1]])
            raise BadInput(f"no used pixel falls in the radial bins r = {edges[0]:.1f}..{edges[-1]:.1f} px "
                           f"(q = {q_lo:.3f}..{q_hi:.3f} nm^-1) after masking")
        dtype = np.float32 if pixel_splitting == "none" else np.float64
        from scipy import sparse  # on first use: a listing imports no scipy
        matrix = sparse.csr_matrix((values.astype(dtype), (rows, cols)), shape=(bins.n_bins, shape[0] * shape[1]))
        matrix.sum_duplicates()
        return cls(matrix, image_shape=shape, bins=bins, geometry=geometry, centre=centre, pixel_weights=pixel_weights)

    @property
    def n_bins(self) -> int:
        """Number of radial bins."""
        return self.matrix.shape[0]

    def integrate(self, block: np.ndarray, *, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """Sums per frame and bin: S[f, b] = Σ_i M[b, i]·block[f, i].

        ``block`` (frames, H, W) or (frames, H·W), any real dtype, read in place.  ``workers``
        threads share the frames (both engines run without the GIL).  ``engine`` is one of
        ``ENGINES`` (see :class:`PixelBinSums`; ``"numba"`` needs the ``fast`` extra and a 0/1
        matrix).  Returns (frames, n_bins) float64; integer counts give exact integer sums.
        Speed: ``python benchmarks/bench_q_integration.py``.
        """
        return self._sums.integrate(block, workers=workers, engine=engine)

    def integrate_variance(self, variance_block: np.ndarray, *, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """Variance of the sums: Σ_i M[b, i]²·V[f, i], (frames, n_bins) float64.

        For Poisson counts V = counts; when ``is_binary`` (no pixel splitting) M² = M, so the
        variance of a run equals :meth:`integrate` of its counts and needs no second pass.
        ``workers`` and ``engine`` as in :meth:`integrate`.
        """
        return self._sums.integrate_variance(variance_block, workers=workers, engine=engine)

    def for_sensors(self, layout: SensorLayout) -> list[PixelBinSums]:
        """One :class:`PixelBinSums` per sensor of ``layout``: M restricted to the canvas pixels
        where the sensor lands (:func:`~eqegs_repo.kernels.sensors.sensor_pixels`, flips
        included), taking that sensor's (frames, rows, cols) blocks as read.  Integration is
        linear, so the sum over sensors of their sums equals integrating the combined canvas, in
        tile and in sum mode.  Built once per layout and kept."""
        if tuple(layout.canvas_shape) != self.image_shape:
            raise BadInput(f"sensor layout places sensors on a {list(layout.canvas_shape)} canvas but the "
                           f"integrator was built for images of {list(self.image_shape)} px")
        if layout not in self._sensor_parts:
            self._sensor_parts[layout] = [
                PixelBinSums(self.matrix[:, sensor_pixels(layout, k).ravel()], pixel_shape=layout.sensor_shape)
                for k in range(layout.n_sensors)]
        return self._sensor_parts[layout]

    def profile(self, sums: np.ndarray) -> np.ndarray:
        """Intensity per (normalised) pixel: sums / normalisation, NaN in bins with no pixel.

        ``sums`` (..., n_bins), e.g. the frame total of :meth:`integrate`."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.normalisation > 0, np.asarray(sums, dtype=np.float64) / self.normalisation, np.nan)


def _unsplit_entries(radius: np.ndarray, keep: np.ndarray, edges: np.ndarray):
    index = np.searchsorted(edges, radius, side="right") - 1
    used = keep & (index >= 0) & (index < edges.size - 1)
    pixels = np.nonzero(used)[0]
    return index[pixels], pixels, np.ones(pixels.size)


def _bbox_entries(adx: np.ndarray, ady: np.ndarray, keep: np.ndarray, edges: np.ndarray):
    """Entries of a bbox-split matrix: each pixel's radial extent [r_near, r_far] is spread
    uniformly and cut by the bin edges."""
    r_near = np.hypot(np.clip(adx - 0.5, 0, None), np.clip(ady - 0.5, 0, None))
    r_far = np.hypot(adx + 0.5, ady + 0.5)
    first = np.clip(np.searchsorted(edges, r_near, side="right") - 1, 0, edges.size - 2)
    last = np.clip(np.searchsorted(edges, r_far, side="left") - 1, 0, edges.size - 2)
    extent = r_far - r_near
    rows, cols, values = [], [], []
    for step in range(int((last - first).max()) + 1):
        bin_index = first + step
        candidate = np.nonzero(keep & (bin_index <= last))[0]
        lo = np.maximum(r_near[candidate], edges[bin_index[candidate]])
        hi = np.minimum(r_far[candidate], edges[bin_index[candidate] + 1])
        fraction = (hi - lo) / extent[candidate]
        hit = fraction > 0
        rows.append(bin_index[candidate][hit])
        cols.append(candidate[hit])
        values.append(fraction[hit])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)


