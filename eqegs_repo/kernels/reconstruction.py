"""Reconstruction kernels: frame-summed image and region of interest
(docs/physics.md#reconstruction).

Pure functions, numpy in, numpy out, no I/O.  Images are (H, W) = (rows, cols) arrays; x is the
column index (right), y the row index (down).  A region of interest (ROI) is given by inclusive
corners (x0, y0, x1, y1), as in the app: width = x1 − x0 + 1, height = y1 − y0 + 1.

Streaming: :class:`FrameSumAccumulator` takes blocks of frames (frames axis first) sensor by
sensor and never builds the reconstructed (frames, H, W) stack.  Because the sensor layout is a
linear map (copies, flips and overlays), the frame sum of the combined image equals the
combination of the per-sensor frame sums; the accumulator sums each sensor's pixels as read and
places them once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels import rules
from eqegs_repo.kernels.compiled import compile_kernel
from eqegs_repo.kernels.sensors import SensorLayout, combine_image, coverage


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

    ``layout`` is a :class:`~eqegs_repo.kernels.sensors.SensorLayout`.  Each call of :meth:`add`
    takes one block per sensor, shape (frames, rows, cols), with the same number of frames, and
    adds it to a running sum per sensor pixel: exact in 64-bit integers for integer counts (no
    overflow below 2⁶⁴), float64 for float counts.  The sensors are placed on the canvas only
    when :attr:`image` is read (the layout is linear, so this equals summing combined frames).
    :attr:`n_frames` is the number of frames added; :attr:`coverage` the layout's (H, W)
    coverage map (0 in gaps).  Accumulators filled from different frames (e.g. by threads)
    add up with :meth:`merge`.
    """

    def __init__(self, layout: SensorLayout):
        self._layout = layout
        self.coverage = coverage(layout)
        self._sums: np.ndarray | None = None  # (n_sensors, rows·cols) running sums per sensor pixel
        self.n_frames = 0

    @property
    def image(self) -> np.ndarray | None:
        """The frame sum on the canvas, (H, W) float64 (exact for integer sums below 2⁵³), or None
        before the first frame."""
        if self._sums is None:
            return None
        return combine_image(self._sums.reshape((-1,) + self._layout.sensor_shape), layout=self._layout)

    def add(self, sensor_blocks: Sequence[np.ndarray]) -> np.ndarray:
        """Add one block of frames (one (frames, rows, cols) array per sensor); returns the counts
        of each frame summed over all sensors, (frames,) float64."""
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
            return np.zeros(0)
        blocks = [np.asarray(b) for b in sensor_blocks]
        dtype = _sum_dtype(np.result_type(*blocks))
        if self._sums is None:
            self._sums = np.zeros((len(blocks), blocks[0].shape[1] * blocks[0].shape[2]), dtype)
        elif self._sums.dtype != dtype:
            self._sums = self._sums.astype(np.result_type(self._sums.dtype, dtype))
        totals = np.zeros(n, self._sums.dtype)
        for block, running in zip(blocks, self._sums):
            add_frame_sums(block.reshape(n, -1), running, totals)
        self.n_frames += n
        return totals.astype(np.float64)

    def merge(self, other: "FrameSumAccumulator") -> None:
        """Add the frames of another accumulator of the same layout."""
        if other._sums is None:
            return
        if self._sums is None:
            self._sums = other._sums.copy()
        else:
            self._sums = self._sums + other._sums
        self.n_frames += other.n_frames


def add_frame_sums(frames: np.ndarray, running: np.ndarray, totals: np.ndarray) -> None:
    """running[i] += Σ_f frames[f, i] and totals[f] += Σ_i frames[f, i], in place.

    ``frames`` (frames, pixels) any real dtype; ``running`` (pixels,) and ``totals`` (frames,) in
    the summing dtype (uint64/int64 for integer frames: exact; float64 for float frames).  One
    read of the frames does both sums: compiled by numba when it is installed, else two numpy
    reductions.
    """
    kernel = _frame_sum_kernel()
    if kernel is not None and frames.dtype in _COMPILED_DTYPES and frames.flags.c_contiguous:
        kernel(frames, running, totals)
    else:
        running += np.sum(frames, axis=0, dtype=running.dtype)
        totals += np.sum(frames, axis=1, dtype=totals.dtype)


_COMPILED_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16,
                                               np.int32, np.int64, np.float32, np.float64))


def _frame_sums(frames, running, totals):
    """Body of :func:`add_frame_sums` compiled by numba: one pass, each frame read once."""
    n_frames, n_pixels = frames.shape
    for f in range(n_frames):
        row = frames[f]
        total = totals[f]
        for i in range(n_pixels):
            value = row[i]
            running[i] += value
            total += value
        totals[f] = total


@functools.cache
def _frame_sum_kernel():
    """:func:`_frame_sums` compiled by numba (without the GIL, cached on disk), or None when numba
    is not installed (extra ``fast``)."""
    return compile_kernel(_frame_sums)


def _sum_dtype(dtype: np.dtype) -> type:
    if np.issubdtype(dtype, np.unsignedinteger):
        return np.uint64
    if np.issubdtype(dtype, np.integer):
        return np.int64
    return np.float64


def median_prefilter(image: np.ndarray, *, size: int = 3) -> np.ndarray:
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
    from scipy import ndimage  # on first use: a listing imports no scipy
    return ndimage.median_filter(image, size=size, mode="mirror")


def detect_roi(image: np.ndarray, *, half_size: tuple[int, int] = (37, 24), median_size: int = 3) -> RoiDetection:
    """Automatic ROI: box around the maximum of the median-filtered frame sum
    (docs/physics.md#reconstruction).

    ``image``: frame-summed image (H, W).  ``half_size`` = (hw_x, hw_y) in px (parameter
    ``roi_half_size``): the box spans x* ± hw_x, y* ± hw_y, i.e. (2hw_x + 1) × (2hw_y + 1) px
    (75 × 49 for the default), clipped to the image.  ``median_size``: odd median prefilter size
    (parameter ``median_prefilter``).  Ties of the maximum go to the first pixel in row-major order.
    """
    hw_x, hw_y = _half_size(half_size)
    filtered = median_prefilter(image, size=median_size)
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


def validate_roi(x0, y0, x1, y1, *, image_shape: tuple[int, int]) -> Roi:
    """Check a manual ROI (inclusive corners, px) against an image of shape (H, W) = (rows, cols).

    Raises :class:`~eqegs_repo.errors.BadInput` naming the field (``roi.x0`` …) when a corner is
    not an integer, lies outside the image, or the end is before the start (the rule is
    :func:`eqegs_repo.kernels.rules.roi_problems`, shared with the ``roi`` spice record).
    """
    problems = rules.roi_problems(x0, y0, x1, y1, image_shape=image_shape)
    if problems:
        raise BadInput("; ".join(problems))
    return Roi(*(int(float(v)) for v in (x0, y0, x1, y1)))


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
