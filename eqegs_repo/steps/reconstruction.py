"""Reconstruction kernels (PHYSICS.md §3.1): frame-summed image and region of interest.

Pure functions, numpy in, numpy out, no I/O.  Images are (H, W) = (rows, cols) arrays; x is the
column index (right), y the row index (down).  A region of interest (ROI) is given by inclusive
corners (x0, y0, x1, y1), as in the app: width = x1 − x0 + 1, height = y1 − y0 + 1.

Streaming: :class:`FrameSumAccumulator` takes blocks of frames (frames axis first) sensor by
sensor and never builds the reconstructed (frames, H, W) stack.  Because the sensor layout is a
linear map (copies, flips and overlays), the frame sum of the combined image equals the
combination of the per-sensor frame sums; the accumulator uses that to stay cheap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from eqegs_repo.errors import BadInput
from eqegs_repo.steps.sensors import SensorLayout, combine, coverage


@dataclass(frozen=True)
class Roi:
    """Region of interest with inclusive pixel corners: columns x0..x1, rows y0..y1."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Number of columns, x1 − x0 + 1."""
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        """Number of rows, y1 − y0 + 1."""
        return self.y1 - self.y0 + 1

    @property
    def slices(self) -> tuple[slice, slice]:
        """(row slice, column slice) selecting the ROI of an (H, W) image."""
        return slice(self.y0, self.y1 + 1), slice(self.x0, self.x1 + 1)

    def as_dict(self) -> dict:
        """{"x0", "y0", "x1", "y1", "width", "height"} as plain ints."""
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1,
                "width": self.width, "height": self.height}


@dataclass(frozen=True)
class RoiDetection:
    """Result of :func:`detect_roi`: the ROI and how it was found (``roi_detection.json``)."""

    roi: Roi
    peak_x: int
    peak_y: int
    peak_value: float
    half_size: tuple[int, int]
    median_prefilter: int

    def as_dict(self) -> dict:
        """JSON-ready record: ROI corners and size, the peak position/value and the settings."""
        record = self.roi.as_dict()
        record.update({
            "peak_x": self.peak_x,
            "peak_y": self.peak_y,
            "peak_value": self.peak_value,
            "roi_half_size": list(self.half_size),
            "median_prefilter": self.median_prefilter,
        })
        return record


class FrameSumAccumulator:
    """Accumulates the frame-summed image I_Σ = Σ_f R[f] over blocks of sensor frames.

    ``layout`` is a :class:`~eqegs_repo.steps.sensors.SensorLayout`.  Each call of :meth:`add`
    takes one block per sensor, shape (frames, rows, cols), with the same number of frames; the
    block is summed over frames per sensor (exactly in 64-bit integers for integer counts, else in
    float64) and only the (1, rows, cols) sums are placed on the canvas by
    :func:`~eqegs_repo.steps.sensors.combine`, which holds float32: a block's sum is exact up to
    2²⁴ counts per pixel, beyond that rounded to ~6e-8 relative.  :attr:`image` is the running (H, W) float64 sum, :attr:`n_frames` the
    number of frames added; :attr:`coverage` the layout's (H, W) coverage map (0 in gaps).
    """

    def __init__(self, layout: SensorLayout):
        self._layout = layout
        self.coverage = coverage(layout)
        self.image: np.ndarray | None = None
        self.n_frames = 0

    def add(self, sensor_blocks: Sequence[np.ndarray]) -> None:
        """Add one block of frames (one (frames, rows, cols) array per sensor)."""
        if len(sensor_blocks) == 0:
            raise BadInput("sensor_blocks is empty; expected one (frames, rows, cols) array per sensor")
        counts = {np.shape(b)[0] if np.ndim(b) == 3 else None for b in sensor_blocks}
        if None in counts:
            shapes = [np.shape(b) for b in sensor_blocks]
            raise BadInput(f"sensor_blocks must be (frames, rows, cols) arrays, got shapes {shapes}")
        if len(counts) != 1:
            raise BadInput(f"sensor_blocks disagree on the number of frames: {sorted(counts)}")
        n = counts.pop()
        if n == 0:
            return
        sums = [np.sum(b, axis=0, dtype=_sum_dtype(np.asarray(b).dtype))[None] for b in sensor_blocks]
        block_image = combine(sums, self._layout)[0].astype(np.float64)
        self.image = block_image if self.image is None else self.image + block_image
        self.n_frames += n


def _sum_dtype(dtype: np.dtype) -> type:
    if np.issubdtype(dtype, np.unsignedinteger):
        return np.uint64
    if np.issubdtype(dtype, np.integer):
        return np.int64
    return np.float64


def median_prefilter(image: np.ndarray, size: int = 3) -> np.ndarray:
    """Square median filter of odd ``size`` (px) with mirrored edges; size 1 returns a float copy.

    ``image`` (H, W); result (H, W) float64.  Used before the argmax of :func:`detect_roi` so that
    isolated hot pixels cannot win.
    """
    size = _odd_size(size, "median_prefilter")
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise BadInput(f"image must be 2-D (H, W), got shape {image.shape}")
    if size == 1:
        return image.copy()
    return ndimage.median_filter(image, size=size, mode="mirror")


def detect_roi(image: np.ndarray, half_size: tuple[int, int] = (37, 24), median_size: int = 3) -> RoiDetection:
    """Automatic ROI: box around the maximum of the median-filtered frame sum (PHYSICS.md §3.1.4).

    ``image``: frame-summed image (H, W).  ``half_size`` = (hw_x, hw_y) in px (parameter
    ``roi_half_size``): the box spans x* ± hw_x, y* ± hw_y, i.e. (2hw_x + 1) × (2hw_y + 1) px
    (75 × 49 for the default), clipped to the image.  ``median_size``: odd median prefilter size
    (parameter ``median_prefilter``).  Ties of the maximum go to the first pixel in row-major order.
    """
    hw_x, hw_y = _half_size(half_size)
    filtered = median_prefilter(image, median_size)
    if not np.isfinite(filtered).any():
        raise BadInput("image holds no finite value; cannot find its maximum for the automatic ROI")
    peak = int(np.nanargmax(filtered))
    peak_y, peak_x = np.unravel_index(peak, filtered.shape)
    height, width = filtered.shape
    roi = Roi(
        x0=max(int(peak_x) - hw_x, 0),
        y0=max(int(peak_y) - hw_y, 0),
        x1=min(int(peak_x) + hw_x, width - 1),
        y1=min(int(peak_y) + hw_y, height - 1),
    )
    return RoiDetection(roi, int(peak_x), int(peak_y), float(filtered[peak_y, peak_x]), (hw_x, hw_y),
                        int(median_size))


def validate_roi(x0, y0, x1, y1, image_shape: tuple[int, int]) -> Roi:
    """Check a manual ROI (inclusive corners, px) against an image of shape (H, W) = (rows, cols).

    Raises :class:`~eqegs_repo.errors.BadInput` naming the field (``roi.x0`` …) when a corner is
    not an integer, lies outside the image, or the end is before the start.
    """
    height, width = (int(n) for n in image_shape)
    values = {}
    for name, value, limit, axis in (("x0", x0, width, "columns"), ("y0", y0, height, "rows"),
                                     ("x1", x1, width, "columns"), ("y1", y1, height, "rows")):
        if isinstance(value, (bool, np.bool_)) or not float(value).is_integer():
            raise BadInput(f"roi.{name} must be an integer pixel index, got {value!r}")
        index = int(value)
        if not 0 <= index < limit:
            raise BadInput(f"roi.{name} = {index} is outside the image: {axis} run from 0 to {limit - 1}")
        values[name] = index
    for start, end in (("x0", "x1"), ("y0", "y1")):
        if values[end] < values[start]:
            raise BadInput(f"roi.{end} = {values[end]} must be >= roi.{start} = {values[start]} (end corners are inclusive)")
    return Roi(**values)


def _odd_size(size, name: str) -> int:
    if isinstance(size, (bool, np.bool_)) or not float(size).is_integer() or int(size) < 1 or int(size) % 2 == 0:
        raise BadInput(f"{name} must be an odd integer >= 1 (px), got {size!r}")
    return int(size)


def _half_size(half_size) -> tuple[int, int]:
    try:
        hw_x, hw_y = half_size
    except (TypeError, ValueError):
        raise BadInput(f"roi_half_size must be a pair (hw_x, hw_y) of integers >= 1 px, got {half_size!r}") from None
    for value in (hw_x, hw_y):
        if isinstance(value, (bool, np.bool_)) or not float(value).is_integer() or int(value) < 1:
            raise BadInput(f"roi_half_size must be a pair (hw_x, hw_y) of integers >= 1 px, got {half_size!r}")
    return int(hw_x), int(hw_y)
