"""The per-frame bin sums behind :class:`~eqegs_repo.kernels.q_integration.integrator.RadialIntegrator`:
a compiled labelled-sum kernel (numba, exact int64 sums of integer frames) and a scipy sparse
fallback (docs/q-integration.md, "Engines").

Frames are (frames, pixels) blocks; sums are (frames, bins).
"""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from eqegs_repo.errors import BadInput
from eqegs_repo.kernels.compiled import compile_kernel

if TYPE_CHECKING:  # annotations only; scipy is imported on first use
    from scipy import sparse

ENGINES = ("auto", "numba", "scipy")
_INTERLEAVE = 4  # accumulators per bin in the scatter-add (speed only, see PixelBinSums._columns_for)
_NATIVE_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.uint32, np.int32, np.uint64, np.int64))


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

    def __init__(self, matrix: sparse.spmatrix, *, pixel_shape: tuple[int, int]):
        from scipy import sparse  # on first use: a listing imports no scipy
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

    def integrate(self, block: np.ndarray, *, workers: int = 1, engine: str = "auto") -> np.ndarray:
        """S[f, b] = Σ_i M[b, i]·block[f, i], (frames, n_bins) float64; ``block`` (frames,
        *pixel_shape) or (frames, pixels), any real dtype; ``workers`` threads share the frames."""
        return self._apply(False, block, workers, engine)

    def integrate_variance(self, variance_block: np.ndarray, *, workers: int = 1, engine: str = "auto") -> np.ndarray:
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
            from scipy import sparse  # on first use: a listing imports no scipy
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
            if labelled_sum_kernel() is None:
                raise BadInput("engine 'numba' needs numba: pip install 'eqegs_repo[fast]'")
            if not usable:
                raise BadInput("engine 'numba' sums a 0/1 matrix only (pixel_splitting 'none'); this "
                               "integrator has fractional weights, use engine 'scipy' or 'auto'")
            return "numba"
        return "numba" if usable and labelled_sum_kernel() is not None else "scipy"

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
    kernel = labelled_sum_kernel()
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
def labelled_sum_kernel():
    """:func:`_labelled_sum_pairs` compiled by numba (without the GIL, cached on disk), or None
    when numba is not installed.  Imported on first use, so importing this module stays light."""
    return compile_kernel(_labelled_sum_pairs)


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
