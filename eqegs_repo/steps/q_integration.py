"""Q-integration kernels (PHYSICS.md §3.2): beam centre, forward spectrum, masks, pixel → q and a
sparse radial integrator.

Pure functions, numpy in, numpy out, no I/O.  Images are (H, W) = (rows, cols); x is the column
index (right), y the row index (down); a centre is (x_c, y_c) in px, measured from the centre of
pixel (0, 0).  Blocks of frames have the frames axis first: (frames, H, W) or (frames, H·W).
Masks are boolean (H, W) arrays with True = pixel used (the white part of the app's mask figure);
combine them with ``&``.

Streaming design: integration is linear, so each run (sample, background) is integrated once,
block by block, with one :class:`RadialIntegrator`, and the background is subtracted in q space
(:func:`subtract_background`).  No reconstructed stack is ever needed, not even a block's canvas:
:meth:`RadialIntegrator.for_sensors` and :func:`sensor_boxes` apply the canvas integrator and
forward box to each sensor's block as read.
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize, sparse

from eqegs_repo.errors import BadInput
from eqegs_repo.steps.physics import q_from_two_theta, radius_from_q, two_theta_from_radius
from eqegs_repo.steps.reconstruction import Roi
from eqegs_repo.steps.sensors import SensorLayout, sensor_pixels, sensor_window

CENTRE_METHODS = ("centroid", "gauss2d")
BG_SCALE_MODES = ("unity", "forward_ratio", "manual")
PIXEL_SPLITTING = ("none", "bbox")
ENGINES = ("auto", "numba", "scipy")
_INTERLEAVE = 4  # accumulators per bin in the scatter-add (speed only, see PixelBinSums._columns_for)
_NATIVE_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.uint32, np.int32, np.uint64, np.int64))


# ------------------------------------------------------------------------------------------------
# Beam centre (§3.2.1)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BeamCentre:
    """Direct-beam centre (x, y) in px, the ROI of the last centroid pass, and the ROI-border
    median that was subtracted (counts, frame-summed)."""

    x: float
    y: float
    roi: Roi
    border_median: float
    method: str

    def as_dict(self) -> dict:
        """JSON-ready record of the centre and how it was found."""
        return {"x": self.x, "y": self.y, "roi": self.roi.as_dict(), "border_median": self.border_median,
                "method": self.method}


def find_beam_centre(
    image: np.ndarray,
    roi: Roi,
    threshold_frac: float = 0.1,
    iterations: int = 2,
    method: str = "centroid",
    gauss_halfwidth: int = 5,
) -> BeamCentre:
    """Centre of the direct beam in the ROI of the frame-summed image (PHYSICS.md §3.2.1).

    Each pass subtracts the median b of the ROI border, takes weights w = I − b, zeroes weights
    below ``threshold_frac``·max(w) (``centroid_threshold_frac``) and computes the centroid
    Σwx/Σw, Σwy/Σw.  Between passes the ROI (same size) is re-centred on the centroid;
    ``iterations`` (``centre_iterations``, ≥ 1) passes are made.  ``method="gauss2d"`` refines
    the centroid with a least-squares 2D Gaussian + constant fitted on a (2·gauss_halfwidth + 1)²
    px window.  ``image`` (H, W); returns :class:`BeamCentre` in px.
    """
    image = _image2d(image, "image")
    if method not in CENTRE_METHODS:
        raise BadInput(f"centre_method must be one of {CENTRE_METHODS} for the kernel, got {method!r}")
    if not 0.0 <= float(threshold_frac) < 1.0:
        raise BadInput(f"centroid_threshold_frac must be in [0, 1), got {threshold_frac!r}")
    if int(iterations) < 1:
        raise BadInput(f"centre_iterations must be >= 1, got {iterations!r}")
    for _ in range(int(iterations)):
        x, y, border = _centroid(image, roi, float(threshold_frac))
        last_roi = roi
        roi = _recentred_roi(roi, x, y, image.shape)
    if method == "gauss2d":
        x, y = _gauss2d_refine(image, x, y, int(gauss_halfwidth))
    return BeamCentre(float(x), float(y), last_roi, float(border), method)


def _centroid(image: np.ndarray, roi: Roi, threshold_frac: float) -> tuple[float, float, float]:
    sub = image[roi.slices]
    border = np.concatenate([sub[0], sub[-1], sub[1:-1, 0], sub[1:-1, -1]])
    level = float(np.median(border))
    weights = sub - level
    peak = weights.max()
    if not peak > 0:
        raise BadInput(f"the ROI {roi.as_dict()} holds nothing above its border median {level:g}; "
                       "no direct beam to centre on (check the ROI)")
    weights = np.where(weights >= threshold_frac * peak, weights, 0.0)
    weights = np.clip(weights, 0.0, None)
    total = weights.sum()
    ys = np.arange(roi.y0, roi.y1 + 1, dtype=np.float64)
    xs = np.arange(roi.x0, roi.x1 + 1, dtype=np.float64)
    return float(weights.sum(axis=0) @ xs / total), float(weights.sum(axis=1) @ ys / total), level


def _recentred_roi(roi: Roi, x: float, y: float, shape: tuple[int, int]) -> Roi:
    """The ROI of the same size moved to be centred on (x, y), shifted back inside the image."""
    height, width = shape
    x0 = int(round(x)) - (roi.width - 1) // 2
    y0 = int(round(y)) - (roi.height - 1) // 2
    x0 = min(max(x0, 0), width - roi.width)
    y0 = min(max(y0, 0), height - roi.height)
    return Roi(x0, y0, x0 + roi.width - 1, y0 + roi.height - 1)


def _gauss2d_refine(image: np.ndarray, x: float, y: float, halfwidth: int) -> tuple[float, float]:
    if halfwidth < 1:
        raise BadInput(f"gauss_halfwidth must be >= 1 px, got {halfwidth!r}")
    y0, y1, x0, x1 = box_bounds((x, y), halfwidth, image.shape)
    window = image[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    offset0 = float(np.min(window))
    amp0 = float(window.max() - offset0)

    def residual(p):
        amp, xc, yc, sx, sy, offset = p
        model = amp * np.exp(-0.5 * (((xx - xc) / sx) ** 2 + ((yy - yc) / sy) ** 2)) + offset
        return (model - window).ravel()

    start = [amp0, x, y, 1.5, 1.5, offset0]
    lower = [0.0, x0 - 0.5, y0 - 0.5, 0.2, 0.2, -np.inf]
    upper = [np.inf, x1 - 0.5, y1 - 0.5, float(halfwidth) * 2, float(halfwidth) * 2, np.inf]
    fit = optimize.least_squares(residual, start, bounds=(lower, upper), x_scale="jac")
    if not fit.success:
        raise BadInput(f"2D Gaussian fit of the direct beam near ({x:.2f}, {y:.2f}) px failed: {fit.message}")
    return float(fit.x[1]), float(fit.x[2])


# ------------------------------------------------------------------------------------------------
# Boxes, forward spectrum, background (§3.2.2, §3.2.3)
# ------------------------------------------------------------------------------------------------
def box_bounds(centre: tuple[float, float], halfwidth: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Row and column bounds (y0, y1, x0, x1), half-open, of the pixels with |x − x_c| ≤ h and
    |y − y_c| ≤ h, clipped to an image of shape (H, W).  Raises if the box misses the image."""
    xc, yc = (float(c) for c in centre)
    h = float(halfwidth)
    height, width = shape
    x0, x1 = max(int(np.ceil(xc - h)), 0), min(int(np.floor(xc + h)) + 1, width)
    y0, y1 = max(int(np.ceil(yc - h)), 0), min(int(np.floor(yc + h)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        raise BadInput(f"the box of half-width {h:g} px around ({xc:.2f}, {yc:.2f}) holds no pixel of the "
                       f"{height}x{width} image")
    return y0, y1, x0, x1


def forward_spectrum(block: np.ndarray, centre: tuple[float, float], halfwidth: float = 20) -> np.ndarray:
    """Forward (direct-beam) counts per frame: Σ R[f] over |x − x_c|, |y − y_c| ≤ h.

    ``block`` (frames, H, W) any real dtype; ``halfwidth`` h in px (``forward_box_halfwidth``).
    Returns (frames,) float64.  Accumulate over blocks by concatenation.
    """
    block = np.asarray(block)
    if block.ndim != 3:
        raise BadInput(f"block must be (frames, H, W), got shape {block.shape}")
    y0, y1, x0, x1 = box_bounds(centre, halfwidth, block.shape[1:])
    return block[:, y0:y1, x0:x1].sum(axis=(1, 2), dtype=np.float64)


def sensor_boxes(layout: SensorLayout, centre: tuple[float, float], halfwidth: float = 20) -> list:
    """The forward box |x − x_c|, |y − y_c| ≤ h of the canvas (see :func:`forward_spectrum`) seen
    from each sensor of ``layout``: per sensor a (row slice, col slice) of its own (rows, cols)
    array, or None when the sensor does not reach the box.  For :func:`forward_spectrum_sensors`."""
    y0, y1, x0, x1 = box_bounds(centre, halfwidth, layout.canvas_shape)
    return [sensor_window(layout, k, slice(y0, y1), slice(x0, x1)) for k in range(layout.n_sensors)]


def forward_spectrum_sensors(sensor_blocks: Sequence[np.ndarray], boxes: list) -> np.ndarray:
    """Forward counts per frame from the sensor blocks as read, (frames,) float64: the sum over
    sensors of their part of the box (``boxes`` from :func:`sensor_boxes`).  Equals
    :func:`forward_spectrum` of the combined canvas, without building it."""
    total = np.zeros(np.shape(sensor_blocks[0])[0])
    for block, box in zip(sensor_blocks, boxes):
        if box is not None:
            total += np.asarray(block)[(slice(None),) + box].sum(axis=(1, 2), dtype=np.float64)
    return total


def background_scale(
    mode: str,
    forward_sample: np.ndarray | None = None,
    forward_background: np.ndarray | None = None,
    bg_scale: float = 1.0,
) -> float:
    """Scale k of the background run (``bg_scale_mode``): ``"unity"`` → 1; ``"forward_ratio"`` →
    Σ I_fwd,sample / Σ I_fwd,background (per-frame forward spectra, counts); ``"manual"`` →
    ``bg_scale`` (> 0)."""
    if mode == "unity":
        return 1.0
    if mode == "manual":
        if not float(bg_scale) > 0:
            raise BadInput(f"bg_scale must be > 0 for bg_scale_mode 'manual', got {bg_scale!r}")
        return float(bg_scale)
    if mode == "forward_ratio":
        if forward_sample is None or forward_background is None:
            raise BadInput("bg_scale_mode 'forward_ratio' needs the forward spectra of the sample and background runs")
        denominator = float(np.sum(forward_background, dtype=np.float64))
        if not denominator > 0:
            raise BadInput(f"the background run's forward spectrum sums to {denominator:g}; "
                           "bg_scale_mode 'forward_ratio' needs a positive sum")
        return float(np.sum(forward_sample, dtype=np.float64)) / denominator
    raise BadInput(f"bg_scale_mode must be one of {BG_SCALE_MODES}, got {mode!r}")


def subtract_background(
    sample: np.ndarray, sample_var: np.ndarray, background: np.ndarray, background_var: np.ndarray, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """D = I_s − k·I_b and V = V_s + k²·V_b for any arrays of equal shape (e.g. (frames, bins)).

    Because integration is linear this equals integrating R_s − k·R_b frame by frame.
    """
    sample, background = np.asarray(sample, dtype=np.float64), np.asarray(background, dtype=np.float64)
    if sample.shape != background.shape:
        raise BadInput(f"background run has shape {background.shape} (frames, bins) but the sample has "
                       f"{sample.shape}; runs must share the frame count and the integrator")
    k = float(k)
    return sample - k * background, np.asarray(sample_var, dtype=np.float64) + k * k * np.asarray(background_var, dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# Pixel coordinates and masks (§3.2.4)
# ------------------------------------------------------------------------------------------------
def pixel_offsets(shape: tuple[int, int], centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) = (x − x_c, y − y_c) in px for every pixel, each (H, W) float64."""
    height, width = shape
    xc, yc = (float(c) for c in centre)
    dx = np.broadcast_to(np.arange(width, dtype=np.float64) - xc, (height, width))
    dy = np.broadcast_to((np.arange(height, dtype=np.float64) - yc)[:, None], (height, width))
    return dx, dy


def pixel_radius(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """Distance r of each pixel centre from the beam centre, px, (H, W)."""
    dx, dy = pixel_offsets(shape, centre)
    return np.hypot(dx, dy)


def azimuth_deg(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """φ = atan2(y − y_c, x − x_c) in degrees mod 360: 0° = +x, increasing clockwise on screen
    (y down).  (H, W) float64."""
    dx, dy = pixel_offsets(shape, centre)
    return np.mod(np.degrees(np.arctan2(dy, dx)), 360.0)


def direct_beam_keep(shape: tuple[int, int], centre: tuple[float, float], halfwidth: float = 50) -> np.ndarray:
    """Mask without the direct-beam box |x − x_c|, |y − y_c| ≤ h (``direct_exclusion_halfwidth``)."""
    dx, dy = pixel_offsets(shape, centre)
    return ~((np.abs(dx) <= float(halfwidth)) & (np.abs(dy) <= float(halfwidth)))


def coverage_keep(coverage: np.ndarray) -> np.ndarray:
    """Mask of pixels covered by at least one sensor (``coverage`` > 0); drops the sensor gaps."""
    return np.asarray(coverage) > 0


def hot_pixel_keep(
    summed: np.ndarray,
    centre: tuple[float, float],
    n_mad: float | None = 10.0,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Mask without hot pixels of the frame-summed image (``hot_pixel_mad``; None switches it off).

    The scattering is isotropic, so each pixel is compared with the ring median m(r): the median of
    the ``valid`` pixels of each 1-px ring around ``centre``, interpolated linearly in r between
    the rings' mean radii (which follows radial gradients).  In Poisson units z = (I − m)/√max(m, 1), a pixel
    is hot when z exceeds the median of z by more than ``n_mad`` median absolute deviations of z
    (statistics over ``valid`` pixels).  Comparing along rings, not across neighbours, keeps steep
    radial gradients, image edges and sensor-gap edges from looking hot.
    """
    summed = _image2d(summed, "summed")
    if n_mad is None:
        return np.ones(summed.shape, bool)
    if not float(n_mad) > 0:
        raise BadInput(f"hot_pixel_mad must be > 0 or None, got {n_mad!r}")
    valid = np.ones(summed.shape, bool) if valid is None else np.asarray(valid, bool)
    if not valid.any():
        raise BadInput("no valid pixel to estimate hot pixels from")
    radius = pixel_radius(summed.shape, centre)[valid]
    ring = np.floor(radius).astype(np.int64)
    values = summed[valid]
    order = np.lexsort((values, ring))
    ring_sorted, values_sorted, radius_sorted = ring[order], values[order], radius[order]
    starts = np.flatnonzero(np.r_[True, ring_sorted[1:] != ring_sorted[:-1]])
    counts = np.diff(np.r_[starts, ring_sorted.size])
    medians = 0.5 * (values_sorted[starts + (counts - 1) // 2] + values_sorted[starts + counts // 2])
    ring_radius = np.add.reduceat(radius_sorted, starts) / counts
    level = np.interp(radius_sorted, ring_radius, medians)
    z_sorted = (values_sorted - level) / np.sqrt(np.maximum(level, 1.0))
    centre_z = float(np.median(z_sorted))
    mad = float(np.median(np.abs(z_sorted - centre_z)))
    hot_sorted = z_sorted > centre_z + float(n_mad) * mad
    hot_valid = np.empty_like(hot_sorted)
    hot_valid[order] = hot_sorted
    keep = np.ones(summed.shape, bool)
    keep[valid] = ~hot_valid
    return keep


def sector_keep(
    shape: tuple[int, int],
    centre: tuple[float, float],
    sectors: Sequence[tuple[float, float]],
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of the angle sectors (``sectors``, degrees): [a, b] keeps a ≤ φ ≤ b, wrapping through 0
    when a > b; several sectors are OR-ed; an empty list keeps every pixel (``angle_mode`` all).

    φ follows :func:`azimuth_deg` (0° = +x, clockwise).  Each sector must select at least one
    pixel (of ``valid`` when given), otherwise :class:`BadInput` names it.
    """
    phi = azimuth_deg(shape, centre)
    if len(sectors) == 0:
        return np.ones(shape, bool)
    usable = np.ones(shape, bool) if valid is None else np.asarray(valid, bool)
    keep = np.zeros(shape, bool)
    for index, sector in enumerate(sectors):
        try:
            a, b = (float(v) for v in sector)
        except (TypeError, ValueError):
            raise BadInput(f"sectors[{index}] must be a pair [start_deg, end_deg], got {sector!r}") from None
        if not (0.0 <= a <= 360.0 and 0.0 <= b <= 360.0):
            raise BadInput(f"sectors[{index}] = [{a:g}, {b:g}] must lie within [0, 360] degrees")
        selected = (phi >= a) & (phi <= b) if a <= b else (phi >= a) | (phi <= b)
        if not (selected & usable).any():
            raise BadInput(f"sectors[{index}] = [{a:g}, {b:g}] degrees selects no usable pixel around the "
                           f"centre ({centre[0]:.1f}, {centre[1]:.1f}) px")
        keep |= selected
    return keep


# ------------------------------------------------------------------------------------------------
# Geometry: pixel → q (§3.2.5)
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DetectorGeometry:
    """Flat detector normal to the beam: wavelength λ (nm), pixel pitch p (mm), distance L (mm)."""

    wavelength_nm: float
    pixel_size_mm: float
    distance_mm: float

    def __post_init__(self):
        for name in ("wavelength_nm", "pixel_size_mm", "distance_mm"):
            if not float(getattr(self, name)) > 0:
                raise BadInput(f"geometry.{name} must be > 0, got {getattr(self, name)!r}")

    def two_theta(self, r_px: np.ndarray) -> np.ndarray:
        """2θ = atan(r·p/L), rad."""
        return two_theta_from_radius(r_px, self.pixel_size_mm, self.distance_mm)

    def q(self, r_px: np.ndarray) -> np.ndarray:
        """q = (4π/λ) sin θ, nm⁻¹, at radius r (px)."""
        return q_from_two_theta(self.two_theta(r_px), self.wavelength_nm)

    def radius(self, q: np.ndarray) -> np.ndarray:
        """Radius (px) at which q (nm⁻¹) falls."""
        return radius_from_q(q, self.pixel_size_mm, self.distance_mm, self.wavelength_nm)


def pixel_normalisation(
    shape: tuple[int, int],
    centre: tuple[float, float],
    geometry: DetectorGeometry,
    solid_angle_correction: bool = False,
    polarisation_factor: float | None = None,
) -> np.ndarray | None:
    """Relative per-pixel normalisation n_i = [ΔΩ_i/ΔΩ_0]·P_i, or None when both are off.

    ΔΩ_i/ΔΩ_0 = cos³2θ_i (``solid_angle_correction``); P_i = ½(1 + cos²2θ − f·cos 2φ·sin²2θ)
    with f = ``polarisation_factor`` in [−1, 1] (pyFAI convention; f = 1: polarised along x).
    Pass it to :meth:`RadialIntegrator.build` as ``pixel_weights``; profiles then read
    Σ counts / Σ n_i per bin.
    """
    if not solid_angle_correction and polarisation_factor is None:
        return None
    tth = geometry.two_theta(pixel_radius(shape, centre))
    norm = np.ones(shape)
    if solid_angle_correction:
        norm *= np.cos(tth) ** 3
    if polarisation_factor is not None:
        f = float(polarisation_factor)
        if not -1.0 <= f <= 1.0:
            raise BadInput(f"polarisation_factor must be in [-1, 1] or None, got {polarisation_factor!r}")
        phi = np.radians(azimuth_deg(shape, centre))
        norm *= 0.5 * (1.0 + np.cos(tth) ** 2 - f * np.cos(2.0 * phi) * np.sin(tth) ** 2)
    return norm


# ------------------------------------------------------------------------------------------------
# Radial bins and the sparse integrator (§3.2.6)
# ------------------------------------------------------------------------------------------------
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
    def uniform(cls, bin_px: float, r_max_px: float, r_min_px: float = 0.0) -> "RadialBins":
        """Bins of width Δr = ``bin_px`` (``radial_bin_px``) from r_min to at least r_max, px."""
        if not float(bin_px) > 0:
            raise BadInput(f"radial_bin_px must be > 0 px, got {bin_px!r}")
        if not float(r_max_px) > float(r_min_px) >= 0:
            raise BadInput(f"radial range must satisfy 0 <= r_min < r_max, got r_min={r_min_px!r}, r_max={r_max_px!r}")
        n = int(np.ceil((float(r_max_px) - float(r_min_px)) / float(bin_px)))
        return cls(float(r_min_px) + float(bin_px) * np.arange(n + 1))

    @classmethod
    def from_q_edges(cls, q_edges: np.ndarray, geometry: DetectorGeometry) -> "RadialBins":
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


class RadialIntegrator:
    """Radial integration as one sparse matrix M (bins × pixels), built once per geometry, centre,
    mask and bin set.

    M[b, i] = 1 when pixel i's centre falls in bin b (``pixel_splitting="none"``) or the fraction
    of pixel i's radial extent that falls in bin b (``"bbox"``).  Attributes (all per bin, shape
    (n_bins,)): ``npix`` = M·1 (effective pixels), ``normalisation`` = M·n (equals ``npix``
    without pixel weights), ``r_px``/``two_theta``/``q`` at the bin centres, ``q_mean`` the pixel
    mean of q.  ``matrix`` is the scipy CSR matrix (float32 without splitting, float64 with
    fractional bbox weights).  The integrator is the cache of everything derived from the matrix
    (the pixel → bin labels, the scatter copies, the per-sensor parts of
    :meth:`for_sensors`): build it once per run set and reuse it for every block of the sample
    and background runs.  The sums themselves are done by :class:`PixelBinSums` (two engines).
    """

    def __init__(self, matrix: sparse.csr_matrix, image_shape: tuple[int, int], bins: RadialBins,
                 geometry: DetectorGeometry, centre: tuple[float, float], pixel_weights: np.ndarray | None):
        self.matrix = matrix.tocsr()
        self.image_shape = tuple(int(n) for n in image_shape)
        self.bins = bins
        self.geometry = geometry
        self.centre = (float(centre[0]), float(centre[1]))
        self._sums = PixelBinSums(self.matrix, self.image_shape)
        self._sensor_parts: dict = {}
        self.is_binary = self._sums.is_binary
        ones = np.ones(self.matrix.shape[1])
        self.npix = self.matrix @ ones
        self.normalisation = self.npix if pixel_weights is None else self.matrix @ np.ravel(pixel_weights).astype(np.float64)
        self.r_px = bins.centres_px
        self.two_theta = geometry.two_theta(self.r_px)
        self.q = geometry.q(self.r_px)
        q_pixels = geometry.q(pixel_radius(self.image_shape, self.centre)).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.q_mean = (self.matrix @ q_pixels) / self.npix

    @classmethod
    def build(
        cls,
        image_shape: tuple[int, int],
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
        dx, dy = pixel_offsets(shape, centre)
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
        matrix = sparse.csr_matrix((values.astype(dtype), (rows, cols)), shape=(bins.n_bins, shape[0] * shape[1]))
        matrix.sum_duplicates()
        return cls(matrix, shape, bins, geometry, centre, pixel_weights)

    @property
    def n_bins(self) -> int:
        """Number of radial bins."""
        return self.matrix.shape[0]

    def integrate(self, block: np.ndarray, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """Sums per frame and bin: S[f, b] = Σ_i M[b, i]·block[f, i].

        ``block`` (frames, H, W) or (frames, H·W), any real dtype, read in place.  ``workers``
        threads share the frames (both engines run without the GIL).  ``engine`` is one of
        ``ENGINES`` (see :class:`PixelBinSums`; ``"numba"`` needs the ``fast`` extra and a 0/1
        matrix).  Returns (frames, n_bins) float64; integer counts give exact integer sums.
        Speed: ``python benchmarks/bench_q_integration.py``.
        """
        return self._sums.integrate(block, workers, engine)

    def integrate_variance(self, variance_block: np.ndarray, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """Variance of the sums: Σ_i M[b, i]²·V[f, i], (frames, n_bins) float64.

        For Poisson counts V = counts; when ``is_binary`` (no pixel splitting) M² = M, so the
        variance of a run equals :meth:`integrate` of its counts and needs no second pass.
        ``workers`` and ``engine`` as in :meth:`integrate`.
        """
        return self._sums.integrate_variance(variance_block, workers, engine)

    def for_sensors(self, layout: SensorLayout) -> list[PixelBinSums]:
        """One :class:`PixelBinSums` per sensor of ``layout``: M restricted to the canvas pixels
        where the sensor lands (:func:`~eqegs_repo.steps.sensors.sensor_pixels`, flips
        included), taking that sensor's (frames, rows, cols) blocks as read.  Integration is
        linear, so the sum over sensors of their sums equals integrating the combined canvas, in
        tile and in sum mode.  Built once per layout and kept."""
        if tuple(layout.canvas_shape) != self.image_shape:
            raise BadInput(f"sensor layout places sensors on a {list(layout.canvas_shape)} canvas but the "
                           f"integrator was built for images of {list(self.image_shape)} px")
        if layout not in self._sensor_parts:
            self._sensor_parts[layout] = [
                PixelBinSums(self.matrix[:, sensor_pixels(layout, k).ravel()], layout.sensor_shape)
                for k in range(layout.n_sensors)]
        return self._sensor_parts[layout]

    def profile(self, sums: np.ndarray) -> np.ndarray:
        """Intensity per (normalised) pixel: sums / normalisation, NaN in bins with no pixel.

        ``sums`` (..., n_bins), e.g. the frame total of :meth:`integrate`."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.normalisation > 0, np.asarray(sums, dtype=np.float64) / self.normalisation, np.nan)


class PixelBinSums:
    """Sums of the pixels of frames into bins by a sparse (n_bins × pixels) matrix M:
    S[f, b] = Σ_i M[b, i]·x[f, i], for blocks of frames of ``pixel_shape`` ((H, W) for a canvas,
    (rows, cols) for one sensor).  It keeps what it derives from M (labels, scatter copies).

    Two engines sum the frames (``engine`` of :meth:`integrate`):

    - ``"numba"`` (optional extra ``fast``): for a 0/1 matrix the integration is a labelled sum,
      S[f, b] = Σ_{i: label_i = b} x[f, i].  A compiled loop reads each pixel's label once
      for two frames and adds into four independent accumulators per bin (two frames × even/odd
      pixels).  Integer frames are summed in int64 (exact, no overflow), float frames in float64.
    - ``"scipy"`` (no extra dependency; the only engine for fractional bbox weights): one
      compiled sparse product per frame, in the frames' own dtype when it is 32/64-bit (uint32
      counts: exact integer sums while a frame's bin sum fits in 32 bits), else in float32.

    ``"auto"`` (the default) takes numba when it is installed and the matrix is 0/1, else scipy.
    Both engines read the frames-first layout in place: no transposed copy of the block.
    """

    def __init__(self, matrix: sparse.spmatrix, pixel_shape: tuple[int, int]):
        self.matrix = sparse.csr_matrix(matrix)
        self.pixel_shape = tuple(int(n) for n in pixel_shape)
        if self.matrix.shape[1] != self.pixel_shape[0] * self.pixel_shape[1]:
            raise BadInput(f"matrix has {self.matrix.shape[1]} pixel columns, expected "
                           f"{self.pixel_shape[0]} x {self.pixel_shape[1]}")
        self.is_binary = bool(np.all(self.matrix.data == 1.0))
        self._columns_cache: dict = {}
        self._labels_cache: list = []

    @property
    def n_bins(self) -> int:
        """Number of bins (rows of M)."""
        return self.matrix.shape[0]

    def integrate(self, block: np.ndarray, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """S[f, b] = Σ_i M[b, i]·block[f, i], (frames, n_bins) float64; ``block`` (frames,
        *pixel_shape) or (frames, pixels), any real dtype; ``workers`` threads share the frames."""
        return self._apply(False, block, workers, engine)

    def integrate_variance(self, variance_block: np.ndarray, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """Σ_i M[b, i]²·V[f, i], (frames, n_bins) float64 (equals :meth:`integrate` for 0/1 M)."""
        return self._apply(not self.is_binary, variance_block, workers, engine)

    def _columns_for(self, dtype: np.dtype, squared: bool) -> sparse.csc_matrix:
        """Interleaved CSC copy of M (or M²) in the dtype the frames are summed in.

        A 0/1 matrix works in the frames' own dtype when it is 32/64-bit (no conversion; integer
        sums are exact), else in float32; a fractional matrix in float64.  Pixel i goes to row
        b + (i mod P)·n_bins (P = ``_INTERLEAVE``), so neighbouring pixels of one ring add into
        different accumulators (no serial dependency); :meth:`_apply` folds the P copies.
        """
        if not self.is_binary:
            target = np.dtype(np.float64)
        elif dtype in _NATIVE_DTYPES:
            target = np.dtype(dtype)
        else:
            target = np.dtype(np.float32)
        key = (target, squared)
        if key not in self._columns_cache:
            matrix = (self.matrix.multiply(self.matrix) if squared else self.matrix).tocoo()
            rows = matrix.row + (matrix.col % _INTERLEAVE) * self.n_bins
            self._columns_cache[key] = sparse.csc_matrix(
                (matrix.data.astype(target), (rows, matrix.col)), shape=(_INTERLEAVE * self.n_bins, matrix.shape[1]))
        return self._columns_cache[key]

    def _labels(self) -> np.ndarray | None:
        """Bin of each pixel, (H·W,) int16 (int32 for ≥ 32767 bins); unused pixels get the
        spare bin ``n_bins``.  None unless M is 0/1 with at most one bin per pixel."""
        if not self._labels_cache:
            columns = self.matrix.tocsc()
            labels = None
            if self.is_binary and np.all(np.diff(columns.indptr) <= 1):
                dtype = np.int16 if self.n_bins < np.iinfo(np.int16).max else np.int32
                labels = np.full(columns.shape[1], self.n_bins, dtype=dtype)
                labels[np.flatnonzero(np.diff(columns.indptr))] = columns.indices
            self._labels_cache.append(labels)
        return self._labels_cache[0]

    def _engine_for(self, engine: str, squared: bool) -> str:
        """The engine that runs: ``"numba"`` or ``"scipy"``; raises for an impossible choice."""
        if engine not in ENGINES:
            raise BadInput(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine == "scipy":
            return "scipy"
        usable = not squared and self._labels() is not None
        if engine == "numba":
            if _labelled_sum_kernel() is None:
                raise BadInput("engine 'numba' needs numba: pip install 'eqegs_repo[fast]'")
            if not usable:
                raise BadInput("engine 'numba' sums a 0/1 matrix only (pixel_splitting 'none'); this "
                               "integrator has fractional weights, use engine 'scipy' or 'auto'")
            return "numba"
        return "numba" if usable and _labelled_sum_kernel() is not None else "scipy"

    def _apply(self, squared: bool, block: np.ndarray, workers: int, engine: str) -> np.ndarray:
        frames = self._frames_view(block)
        sums = np.empty((frames.shape[0], self.n_bins), dtype=np.float64)
        if self._engine_for(engine, squared) == "numba":
            frames = _labelled_sum_input(frames)
            labels = self._labels()

            def run(a: int, b: int) -> None:
                _labelled_sums(labels, frames[a:b], sums[a:b])
        else:
            columns = self._columns_for(frames.dtype, squared)
            partial = np.empty((frames.shape[0], columns.shape[0]), dtype=np.float64)

            def run(a: int, b: int) -> None:
                _scatter_frames(columns, frames[a:b], partial[a:b])
                sums[a:b] = partial[a:b].reshape(b - a, _INTERLEAVE, self.n_bins).sum(axis=1)
        workers = max(1, min(int(workers), frames.shape[0]))
        bounds = np.linspace(0, frames.shape[0], workers + 1).astype(int)
        if workers == 1:
            run(0, frames.shape[0])
        else:
            with ThreadPoolExecutor(workers) as pool:
                for job in [pool.submit(run, a, b) for a, b in zip(bounds[:-1], bounds[1:])]:
                    job.result()
        return sums

    def _frames_view(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        n_pixels = self.pixel_shape[0] * self.pixel_shape[1]
        if block.ndim == 3 and block.shape[1:] == self.pixel_shape:
            return block.reshape(block.shape[0], n_pixels)
        if block.ndim == 2 and block.shape[1] == n_pixels:
            return block
        raise BadInput(f"block must be (frames, {self.pixel_shape[0]}, {self.pixel_shape[1]}) or "
                       f"(frames, {n_pixels}), got shape {block.shape}")


def _labelled_sums(labels: np.ndarray, frames: np.ndarray, out: np.ndarray) -> None:
    """out[f, b] = Σ_{i: labels[i] = b} frames[f, i], exactly (see :func:`_labelled_sum_accumulator`).

    ``labels`` (pixels,) ints in [0, n_bins], n_bins being the spare bin of unused pixels;
    ``frames`` (frames, pixels) integer or float32/float64; ``out`` (frames, n_bins) float64.
    The compiled kernel takes frames in pairs; an odd last frame is paired with a copy of itself.
    """
    kernel = _labelled_sum_kernel()
    scratch = np.empty((4, out.shape[1] + 1), _labelled_sum_accumulator(frames.dtype))
    paired = frames.shape[0] - frames.shape[0] % 2
    kernel(labels, frames[:paired], out[:paired], scratch)
    if paired < frames.shape[0]:
        last = np.empty((2, out.shape[1]))
        kernel(labels, np.repeat(frames[paired:], 2, axis=0), last, scratch)
        out[paired] = last[0]


def _labelled_sum_pairs(labels, frames, out, acc):
    """out[f, b] = Σ_{i: labels[i] = b} frames[f, i] for an even number of frames; compiled by numba.

    ``acc`` (4, n_bins + 1) is scratch in the summing dtype.  Frames go in pairs, so each label
    is read once for two frames, and even and odd pixels add into separate rows of ``acc``: four
    independent additions per pixel pair, so consecutive pixels of one ring do not wait for
    each other.
    """
    n_frames, n_pixels = frames.shape
    n_bins = out.shape[1]
    even = n_pixels - n_pixels % 2
    for first in range(0, n_frames - n_frames % 2, 2):
        second = first + 1
        a = frames[first]
        b = frames[second]
        acc[:] = 0
        for i in range(0, even, 2):
            label0 = labels[i]
            label1 = labels[i + 1]
            acc[0, label0] += a[i]
            acc[1, label1] += a[i + 1]
            acc[2, label0] += b[i]
            acc[3, label1] += b[i + 1]
        for i in range(even, n_pixels):
            acc[0, labels[i]] += a[i]
            acc[2, labels[i]] += b[i]
        for k in range(n_bins):
            out[first, k] = acc[0, k] + acc[1, k]
            out[second, k] = acc[2, k] + acc[3, k]


@functools.cache
def _labelled_sum_kernel():
    """:func:`_labelled_sum_pairs` compiled by numba (without the GIL, cached on disk), or None
    when numba is not installed.  Imported on first use, so importing this module stays light."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(nogil=True, cache=True)(_labelled_sum_pairs)


def _labelled_sum_input(frames: np.ndarray) -> np.ndarray:
    """Frames as the labelled sum reads them: integer and float32/float64 blocks unchanged,
    anything else (bool, float16, …) as float64."""
    if frames.dtype.kind in "iu" or frames.dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        return frames
    return frames.astype(np.float64)


def _labelled_sum_accumulator(dtype: np.dtype) -> np.dtype:
    """Exact summing dtype: uint64 for uint64 frames, int64 for other integers, float64 for floats."""
    if dtype == np.dtype(np.uint64):
        return np.dtype(np.uint64)
    return np.dtype(np.int64) if dtype.kind in "iu" else np.dtype(np.float64)


def _scatter_frames(columns: sparse.csc_matrix, frames: np.ndarray, out: np.ndarray) -> None:
    dtype = columns.dtype
    for index in range(frames.shape[0]):
        frame = frames[index]
        if frame.dtype != dtype:
            frame = frame.astype(dtype)
        out[index] = columns @ frame


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


def _image2d(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise BadInput(f"{name} must be a 2-D (H, W) image, got shape {image.shape}")
    return image
