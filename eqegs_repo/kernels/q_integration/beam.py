"""Beam centre, forward-box spectrum and background scaling of the q-integration step
(docs/physics.md#q-integration).

Images are (H, W) = (rows, cols); a centre is (x_c, y_c) in px from the centre of pixel (0, 0),
x the column index (right), y the row index (down). Blocks of frames have the frames axis first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.q_integration.pixels import image_2d
from eqegs_repo.kernels.reconstruction import Roi
from eqegs_repo.kernels.sensors import SensorLayout, sensor_window

CENTRE_METHODS = ("centroid", "gauss2d")
THRESHOLD_MODES = ("subtract", "cut")
"""``centroid_threshold_mode``: the threshold subtracted from the weights (continuous), or the app's cut."""
BG_SCALE_MODES = ("unity", "forward_ratio", "manual")


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
    *,
    roi: Roi,
    threshold_frac: float = 0.1,
    iterations: int = 2,
    method: str = "centroid",
    gauss_halfwidth: int = 5,
    spike_factor: float | None = 10.0,
    threshold_mode: str = "subtract",
) -> BeamCentre:
    """Centre of the direct beam in the ROI of the frame-summed image
    (docs/physics.md#q-integration).

    Each pass subtracts the median b of the ROI border, takes weights w = I − b, thresholds them
    at t = ``threshold_frac``·max(w) (``centroid_threshold_frac``) and computes the centroid
    Σwx/Σw, Σwy/Σw of the thresholded weights. ``threshold_mode`` (``centroid_threshold_mode``):
    ``"subtract"`` takes max(w − t, 0), which changes continuously with the counts, so that a
    pixel whose counts cross the threshold moves the centre by next to nothing; ``"cut"`` (the
    app's) keeps w where w ≥ t and zeroes the rest, so that such a pixel moves the centre by its
    whole weight (about 0.03 px for a beam of σ = 1.3 px). Both are unbiased for a symmetric
    beam. Between passes the ROI (same size) is re-centred on the centroid;
    ``iterations`` (``centre_iterations``, ≥ 1) passes are made.  ``method="gauss2d"`` refines
    the centroid with a least-squares 2D Gaussian + constant fitted on a (2·gauss_halfwidth + 1)²
    px window.  ``image`` (H, W); returns :class:`BeamCentre` in px.

    Before all that, single-pixel spikes are clipped (``spike_factor``, ``centre_spike_factor``):
    a pixel above ``spike_factor`` times the largest of its 8 neighbours takes that bound instead
    (:func:`clip_spikes`). A hot pixel in the ROI, 1000 x the ring level, otherwise pulls the
    centroid by up to a pixel; a beam spot of σ ≥ 0.5 px stays below the bound of the default 10
    and is used as it is. ``None`` keeps every pixel (the app's centroid, with ``threshold_mode="cut"``).
    """
    image = image_2d(image, name="image")
    if spike_factor is not None:
        image = clip_spikes(image, factor=spike_factor)
    if method not in CENTRE_METHODS:
        raise BadInput(f"centre_method must be one of {CENTRE_METHODS} for the kernel, got {method!r}")
    if not 0.0 <= float(threshold_frac) < 1.0:
        raise BadInput(f"centroid_threshold_frac must be in [0, 1), got {threshold_frac!r}")
    if threshold_mode not in THRESHOLD_MODES:
        raise BadInput(f"centroid_threshold_mode must be one of {THRESHOLD_MODES}, got {threshold_mode!r}")
    if int(iterations) < 1:
        raise BadInput(f"centre_iterations must be >= 1, got {iterations!r}")
    for _ in range(int(iterations)):
        x, y, border = _centroid(image, roi, float(threshold_frac), threshold_mode)
        last_roi = roi
        roi = _recentred_roi(roi, x, y, image.shape)
    if method == "gauss2d":
        x, y = _gauss2d_refine(image, x, y, int(gauss_halfwidth))
    return BeamCentre(float(x), float(y), last_roi, float(border), method)


def clip_spikes(image: np.ndarray, *, factor: float) -> np.ndarray:
    """``image`` (H, W) as float64 with every pixel limited to ``factor`` (> 1) times the
    largest of its 8 neighbours (edges mirrored; negative neighbours bound nothing below zero).
    A beam spot wider than a pixel keeps every value (the peak of a Gaussian of σ = 0.5 px is
    7.4 times its nearest neighbour); an isolated hot pixel drops to its surroundings' level."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
        raise BadInput(f"centre_spike_factor must be a number > 1 or null, got {factor!r}")
    from scipy import ndimage  # on first use: a listing imports no scipy

    image = np.asarray(image, dtype=np.float64)
    neighbours = np.ones((3, 3), bool)
    neighbours[1, 1] = False
    largest = ndimage.maximum_filter(image, footprint=neighbours, mode="mirror")
    return np.minimum(image, float(factor) * np.clip(largest, 0.0, None))


def _centroid(image: np.ndarray, roi: Roi, threshold_frac: float, mode: str) -> tuple[float, float, float]:
    sub = image[roi.slices]
    border = np.concatenate([sub[0], sub[-1], sub[1:-1, 0], sub[1:-1, -1]])
    level = float(np.median(border))
    weights = sub - level
    peak = weights.max()
    if not peak > 0:
        raise BadInput(f"the ROI {roi.as_dict()} holds nothing above its border median {level:g}; "
                       "no direct beam to centre on (check the ROI)")
    if mode == "subtract":
        weights = np.clip(weights - threshold_frac * peak, 0.0, None)
    else:
        weights = np.clip(np.where(weights >= threshold_frac * peak, weights, 0.0), 0.0, None)
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
    y0, y1, x0, x1 = box_bounds(image.shape, centre=(x, y), halfwidth=halfwidth)
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
    from scipy import optimize  # on first use: a listing imports no scipy
    fit = optimize.least_squares(residual, start, bounds=(lower, upper), x_scale="jac")
    if not fit.success:
        raise BadInput(f"2D Gaussian fit of the direct beam near ({x:.2f}, {y:.2f}) px failed: {fit.message}")
    return float(fit.x[1]), float(fit.x[2])


def box_bounds(shape: tuple[int, int], *, centre: tuple[float, float], halfwidth: float) -> tuple[int, int, int, int]:
    """Row and column bounds (y0, y1, x0, x1), half-open, of the pixels of an image of shape
    (H, W) with |x − x_c| ≤ h and |y − y_c| ≤ h (h = ``halfwidth``, px).  Raises if the box
    misses the image."""
    xc, yc = (float(c) for c in centre)
    h = float(halfwidth)
    height, width = shape
    x0, x1 = max(int(np.ceil(xc - h)), 0), min(int(np.floor(xc + h)) + 1, width)
    y0, y1 = max(int(np.ceil(yc - h)), 0), min(int(np.floor(yc + h)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        raise BadInput(f"the box of half-width {h:g} px around ({xc:.2f}, {yc:.2f}) holds no pixel of the "
                       f"{height}x{width} image")
    return y0, y1, x0, x1


def forward_spectrum(block: np.ndarray, *, centre: tuple[float, float], halfwidth: float = 20) -> np.ndarray:
    """Forward (direct-beam) counts per frame: Σ R[f] over |x − x_c|, |y − y_c| ≤ h.

    ``block`` (frames, H, W) any real dtype; ``halfwidth`` h in px (``forward_box_halfwidth``).
    Returns (frames,) float64.  Accumulate over blocks by concatenation.
    """
    block = np.asarray(block)
    if block.ndim != 3:
        raise BadInput(f"block must be (frames, H, W), got shape {block.shape}")
    y0, y1, x0, x1 = box_bounds(block.shape[1:], centre=centre, halfwidth=halfwidth)
    return block[:, y0:y1, x0:x1].sum(axis=(1, 2), dtype=np.float64)


def sensor_boxes(layout: SensorLayout, *, centre: tuple[float, float], halfwidth: float = 20) -> list:
    """The forward box |x − x_c|, |y − y_c| ≤ h of the canvas (see :func:`forward_spectrum`) seen
    from each sensor of ``layout``: per sensor a (row slice, col slice) of its own (rows, cols)
    array, or None when the sensor does not reach the box.  For :func:`forward_spectrum_sensors`."""
    y0, y1, x0, x1 = box_bounds(layout.canvas_shape, centre=centre, halfwidth=halfwidth)
    return [sensor_window(layout, k, rows=slice(y0, y1), cols=slice(x0, x1)) for k in range(layout.n_sensors)]


def forward_spectrum_sensors(sensor_blocks: Sequence[np.ndarray], *, boxes: list) -> np.ndarray:
    """Forward counts per frame from the sensor blocks as read, (frames,) float64: the sum over
    sensors of their part of the box (``boxes`` from :func:`sensor_boxes`).  Equals
    :func:`forward_spectrum` of the combined canvas, without building it."""
    total = np.zeros(np.shape(sensor_blocks[0])[0])
    for block, box in zip(sensor_blocks, boxes):
        if box is not None:
            total += np.asarray(block)[(slice(None),) + box].sum(axis=(1, 2), dtype=np.float64)
    return total


def background_scale(
    forward_sample: np.ndarray | None = None,
    forward_background: np.ndarray | None = None,
    *,
    mode: str,
    bg_scale: float = 1.0,
) -> float:
    """Scale k of the background run (``mode`` = ``bg_scale_mode``): ``"unity"`` → 1;
    ``"forward_ratio"`` → Σ I_fwd,sample / Σ I_fwd,background (the per-frame forward spectra
    ``forward_sample``, ``forward_background``, counts); ``"manual"`` → ``bg_scale`` (> 0)."""
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
    sample: np.ndarray, sample_var: np.ndarray, background: np.ndarray, background_var: np.ndarray, *, k: float
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
