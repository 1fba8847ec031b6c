"""Streaming passes over a run's raw sensor files, block of frames by block of frames.

Nothing here holds more than a few blocks: the reconstructed (frames, H, W) stack is never built,
nor is a block's canvas: the kernels take each sensor's block as read (the sensor layout is
linear, so per-sensor sums add up to the sums over the combined image).

* :func:`frame_sum_pass` -- pass 1: the frame-summed canvas image I_Σ and the counts per frame;
* :func:`integration_pass` -- pass 2: per frame, the radial sums of every bin, the forward
  (direct-beam box) counts and, optionally, the frame sum (for a background run).

``workers`` threads ("lanes") each take the next block from :func:`iter_blocks` (plain file
reads into a ring of reused buffers; byte ranges through fsspec for other filesystems), one lane
reading at a time, and compute it while the others compute theirs: file reads and the compiled
kernels run without the GIL, and a block is computed on the core that read it. The resident
memory stays at a few blocks. Float data are checked for NaN/inf.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from eqegs_repo.errors import BadInput, BadSample
from eqegs_repo.steps import q_integration as qi
from eqegs_repo.steps.reconstruction import FrameSumAccumulator

BLOCK_BYTES = 16 << 20  # raw bytes read per block, all sensors together (speed: bench_full_chain.py)
BUFFER_SETS = 3  # blocks in memory: one being read, up to BUFFER_SETS - 1 being computed


def frames_per_block(stack, block_bytes=None):
    """Frames per block so that one block of every sensor is at most about ``block_bytes``
    (default :data:`BLOCK_BYTES`), rounded down to an even number (the compiled integration
    takes frames in pairs), at least 1."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    n_sensors, n_frames, rows, cols = stack.shape
    per_frame = n_sensors * rows * cols * np.dtype(stack.dtype).itemsize
    frames = block_bytes // max(per_frame, 1)
    return int(max(1, min(n_frames, frames - frames % 2)))


def check_layout(stack, layout, where):
    """Raise BadInput when the sensor files do not fit the sensor_layout record."""
    n_sensors, _, rows, cols = stack.shape
    if n_sensors != layout.n_sensors or (rows, cols) != tuple(layout.sensor_shape):
        raise BadInput(f"{where}: the raw data hold {n_sensors} sensors of {rows} x {cols} but "
                       f"sensor_layout says n_sensors = {layout.n_sensors}, sensor_shape = "
                       f"{list(layout.sensor_shape)}")


def iter_blocks(stack, block_frames=None):
    """Yield ``(start, stop, [block of each sensor])``, blocks of shape (frames, rows, cols).

    The block arrays come from a ring of :data:`BUFFER_SETS` buffer sets, so memory stays at a
    few blocks whatever the file size: a block may be used until ``BUFFER_SETS - 1`` further
    blocks have been asked for, then its arrays are overwritten.
    """
    n_frames = stack.shape[1]
    step = block_frames or frames_per_block(stack)
    ring = {}
    for index, start in enumerate(range(0, n_frames, step)):
        stop = min(start + step, n_frames)
        key = (index % BUFFER_SETS, stop - start)
        if key not in ring:
            ring[key] = [np.empty((stop - start,) + f.shape[1:], f.dtype) for f in stack.files]
        blocks = [f.read_frames(start, stop, out=b) for f, b in zip(stack.files, ring[key])]
        if np.dtype(stack.dtype).kind == "f":
            _check_finite(stack, blocks, start)
        yield start, stop, blocks


def _check_finite(stack, blocks, start):
    for k, block in enumerate(blocks):
        bad = ~np.isfinite(block)
        if bad.any():
            frame, row, col = np.argwhere(bad)[0]
            raise BadSample(f"{stack.files[k].path}: frame {start + frame}, pixel (row {row}, col {col}) "
                            f"holds {float(block[frame, row, col])}; counts must be finite numbers "
                            f"({int(bad.sum())} bad values in frames {start}..{start + len(block) - 1})")


def _stream(stack, block_frames, workers, work, progress=None):
    """Call ``work(lane, start, stop, blocks)`` for every block of ``stack`` on ``lanes`` =
    min(workers, BUFFER_SETS - 1) threads; ``progress(n_frames)``, if given, after each block.

    Each lane takes the next block from :func:`iter_blocks` (one lane reads at a time) and
    computes it itself, while the data it just read are still in its core's cache; the other
    lanes compute meanwhile. A lane's calls never overlap, so per-lane state needs no lock, and a
    block is not read into a buffer set before the block that used the set has been computed.
    The first error of a lane (or of the reading) stops the pass and is raised.
    """
    lanes = max(1, min(int(workers), BUFFER_SETS - 1))
    blocks = iter_blocks(stack, block_frames)
    lock = threading.Lock()
    computed = []  # one Event per block taken
    failed = threading.Event()

    def lane(index):
        while not failed.is_set():
            try:
                with lock:
                    n = len(computed)
                    if n >= BUFFER_SETS:
                        computed[n - BUFFER_SETS].wait()
                    block = next(blocks, None)
                    if block is None or failed.is_set():
                        return
                    computed.append(threading.Event())
                try:
                    work(index, *block)
                finally:
                    computed[n].set()
                if progress is not None:
                    progress(block[1] - block[0])
            except BaseException:
                failed.set()
                raise

    with ThreadPoolExecutor(lanes) as pool:
        for job in [pool.submit(lane, index) for index in range(lanes)]:
            job.result()


def frame_sum_pass(stack, layout, block_frames=None, workers=1, progress=None):
    """Pass 1: ``(image (H, W) float64, counts per frame (frames,) float64, coverage (H, W))``.
    ``progress``: called with the number of frames of each block done (e.g. a bar's update)."""
    accumulators = [FrameSumAccumulator(layout) for _ in range(max(1, int(workers)))]
    per_frame = np.zeros(stack.shape[1])

    def work(lane, start, stop, blocks):
        per_frame[start:stop] = accumulators[lane].add(blocks)

    _stream(stack, block_frames, workers, work, progress)
    total = _merged(accumulators)
    return total.image, per_frame, total.coverage


def integration_pass(stack, layout, integrator, centre, forward_halfwidth, *, frame_sum=False,
                     workers=1, block_frames=None, progress=None):
    """Pass 2 over one run with a built :class:`~eqegs_repo.steps.q_integration.RadialIntegrator`.

    Each sensor's block is integrated as read (:meth:`RadialIntegrator.for_sensors`). Returns a
    dict: ``sums`` (frames, bins) float64, ``variance`` (frames, bins) (Poisson: equal to the
    sums for an unsplit matrix), ``forward`` (frames,) counts in the box of half-width
    ``forward_halfwidth`` px around ``centre`` (x, y), and ``image`` (H, W) the frame sum when
    ``frame_sum`` is true. ``progress``: as for :func:`frame_sum_pass`.
    """
    n_frames = stack.shape[1]
    parts = integrator.for_sensors(layout)
    boxes = qi.sensor_boxes(layout, centre, forward_halfwidth)
    sums = np.empty((n_frames, integrator.n_bins))
    variance = sums if integrator.is_binary else np.empty_like(sums)
    forward = np.empty(n_frames)
    accumulators = [FrameSumAccumulator(layout) if frame_sum else None for _ in range(max(1, int(workers)))]

    def work(lane, start, stop, blocks):
        sums[start:stop] = sum(part.integrate(block) for part, block in zip(parts, blocks))
        if not integrator.is_binary:
            variance[start:stop] = sum(part.integrate_variance(block) for part, block in zip(parts, blocks))
        forward[start:stop] = qi.forward_spectrum_sensors(blocks, boxes)
        if frame_sum:
            accumulators[lane].add(blocks)

    _stream(stack, block_frames, workers, work, progress)
    image = _merged(accumulators).image if frame_sum else None
    return {"sums": sums, "variance": variance, "forward": forward, "image": image}


def _merged(accumulators):
    """The lanes' :class:`FrameSumAccumulator` s added into the first one."""
    for other in accumulators[1:]:
        accumulators[0].merge(other)
    return accumulators[0]
