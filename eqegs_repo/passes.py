"""Streaming passes over a run's raw sensor files, block of frames by block of frames.

Nothing here holds more than one block: the reconstructed (frames, H, W) stack is never built.

* :func:`frame_sum_pass` -- pass 1: the frame-summed canvas image I_Σ and the counts per frame;
* :func:`integration_pass` -- pass 2: per frame, the radial sums of every bin, the forward
  (direct-beam box) counts and, optionally, the frame sum (for a background run).

Blocks are read with :meth:`eqegs_repo.raw.NpyFile.read_frames` into reused buffers (plain file
reads for local files, byte ranges through fsspec otherwise), so the resident memory stays at
one block. Float data are checked for NaN/inf.
"""
import numpy as np

from .errors import BadInput, BadSample
from .steps import q_integration as qi
from .steps.reconstruction import FrameSumAccumulator
from .steps.sensors import combine

BLOCK_BYTES = 32 << 20  # raw bytes read per block, all sensors together


def frames_per_block(stack, block_bytes=None):
    """Frames per block so that one block of every sensor is about ``block_bytes``
    (default :data:`BLOCK_BYTES`)."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    n_sensors, n_frames, rows, cols = stack.shape
    per_frame = n_sensors * rows * cols * np.dtype(stack.dtype).itemsize
    return int(max(1, min(n_frames, block_bytes // max(per_frame, 1))))


def check_layout(stack, layout, where):
    """Raise BadInput when the sensor files do not fit the sensor_layout record."""
    n_sensors, _, rows, cols = stack.shape
    if n_sensors != layout.n_sensors or (rows, cols) != tuple(layout.sensor_shape):
        raise BadInput(f"{where}: the raw data hold {n_sensors} sensors of {rows} x {cols} but "
                       f"sensor_layout says n_sensors = {layout.n_sensors}, sensor_shape = "
                       f"{list(layout.sensor_shape)}")


def iter_blocks(stack, block_frames=None):
    """Yield ``(start, stop, [block of each sensor])``, blocks of shape (frames, rows, cols).

    The block arrays are reused from one iteration to the next (so memory stays at one block
    whatever the file size): use them before asking for the next block.
    """
    n_frames = stack.shape[1]
    step = block_frames or frames_per_block(stack)
    buffers = None
    for start in range(0, n_frames, step):
        stop = min(start + step, n_frames)
        if buffers is None or buffers[0].shape[0] != stop - start:
            buffers = [np.empty((stop - start,) + f.shape[1:], f.dtype) for f in stack.files]
        blocks = [f.read_frames(start, stop, out=b) for f, b in zip(stack.files, buffers)]
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


def frame_sum_pass(stack, layout, block_frames=None):
    """Pass 1: ``(image (H, W) float64, counts per frame (frames,) float64, coverage (H, W))``."""
    accumulator = FrameSumAccumulator(layout)
    per_frame = np.zeros(stack.shape[1])
    for start, stop, blocks in iter_blocks(stack, block_frames):
        accumulator.add(blocks)
        per_frame[start:stop] = sum(b.sum(axis=(1, 2), dtype=np.float64) for b in blocks)
    return accumulator.image, per_frame, accumulator.coverage


def integration_pass(stack, layout, integrator, centre, forward_halfwidth, *, frame_sum=False,
                     workers=1, block_frames=None):
    """Pass 2 over one run with a built :class:`~eqegs_repo.steps.q_integration.RadialIntegrator`.

    Returns a dict: ``sums`` (frames, bins) float64, ``variance`` (frames, bins) (Poisson:
    equal to the sums for an unsplit matrix), ``forward`` (frames,) counts in the box of
    half-width ``forward_halfwidth`` px around ``centre`` (x, y), and ``image`` (H, W) the frame
    sum when ``frame_sum`` is true.
    """
    n_frames = stack.shape[1]
    sums = np.empty((n_frames, integrator.n_bins))
    variance = sums if integrator.is_binary else np.empty_like(sums)
    forward = np.empty(n_frames)
    accumulator = FrameSumAccumulator(layout) if frame_sum else None
    canvas = None
    for start, stop, blocks in iter_blocks(stack, block_frames):
        if canvas is None or canvas.shape[0] != stop - start:
            canvas = np.empty((stop - start,) + tuple(layout.canvas_shape), np.float32)
        combine(blocks, layout, out=canvas)
        sums[start:stop] = integrator.integrate(canvas, workers=workers)
        if not integrator.is_binary:
            variance[start:stop] = integrator.integrate_variance(canvas, workers=workers)
        forward[start:stop] = qi.forward_spectrum(canvas, centre, forward_halfwidth)
        if accumulator is not None:
            accumulator.add(blocks)
    return {"sums": sums, "variance": variance, "forward": forward,
            "image": accumulator.image if accumulator is not None else None}
